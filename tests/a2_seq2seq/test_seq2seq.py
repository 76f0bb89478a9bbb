"""H3.4 — Seq2Seq: the encoder, one decoder step with cosine attention, and the decoding loop.

Oracles: ``torch.nn.RNN`` / ``torch.nn.LSTM`` holding the weights the test gave the module, with
``F.embedding``, ``F.linear`` and ``F.cosine_similarity`` for the rest. ``Seq2Seq`` is graded with
a small encoder and decoder of the kit (``coursekit.a2_builders``: so a mistake in your Encoder or
Decoder does not cost Seq2Seq's points twice) against a loop written here, which runs twins of
them built in the test's process. Every expected value comes from an oracle, never from your own
code run a second time.
"""

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close, assert_equal
from hypothesis import given
from strategies import cosine_attention_cases, seq2seq_cases
from torch import nn

from coursekit.a2_builders import ToyDecoder, ToyEncoder
from grader.deliverables import build, deliverable

s2s = deliverable("a2_seq2seq.seq2seq")
RNN_WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _rnn_layout(prefix: str, model_type: str, n_in: int, H: int) -> list[list]:
    G = 4 if model_type == "LSTM" else 1  # an LSTM stacks four gates
    shapes = ([G * H, n_in], [G * H, H], [G * H], [G * H])
    return [[f"{prefix}.{n}", s] for n, s in zip(RNN_WEIGHTS, shapes, strict=True)]


def _torch_rnn(w, model_type: str, n_in: int, H: int) -> nn.Module:
    """torch.nn.RNN / LSTM (n_in → H, batch first, float64) holding the four recurrent tensors
    ``w`` (the values the test wrote into the module's ``rnn``)."""
    layer = nn.LSTM if model_type == "LSTM" else nn.RNN
    ref = layer(n_in, H, batch_first=True, dtype=torch.float64)
    ref.load_state_dict({n: getattr(w, n) for n in RNN_WEIGHTS})
    return ref


def _sizes(case) -> str:
    return (f"{case['model_type']}, attention={case['attention']}, B={case['B']}, T={case['T']}, "
            f"C={case['C']}, H_enc={case['H_enc']}, H_dec={case['H_dec']}")  # fmt: skip


# --------------------------------------------------------------------------- the encoder


@pytest.mark.points(1)
@pytest.mark.number("4.1")
def test_encoder_layers(check, weights):
    """Encoder holds embedding, rnn (nn.RNN or nn.LSTM), linear1 and linear2"""
    for model_type, H_dec in (("RNN", 5), ("LSTM", 4)):
        with check(model_type):
            model = s2s.Encoder(7, 3, 4, H_dec, 0.2, model_type)
            expected = sorted([["embedding.weight", [7, 3]], *_rnn_layout("rnn", model_type, 3, 4),
                               ["linear1.weight", [4, 4]], ["linear1.bias", [4]],
                               ["linear2.weight", [H_dec, 4]], ["linear2.bias", [H_dec]]])  # fmt: skip
            assert_equal(weights.layout(model), expected,
                         what=f"Encoder(7, 3, 4, {H_dec}, model_type={model_type!r})'s parameters",
                         hint="nn.Embedding(V_src, C) as embedding; nn.RNN / nn.LSTM(C, H_enc, "
                              "batch_first=True) as rnn; linear1 (H_enc → H_enc); linear2 "
                              "(H_enc → H_dec)")  # fmt: skip


def _encoder_oracle(w, case, source):
    rnn = _torch_rnn(w.rnn, case["model_type"], case["C"], case["H_enc"])
    out, hidden = rnn(F.embedding(source, w.embedding.weight))
    h = hidden[0] if case["model_type"] == "LSTM" else hidden
    h = torch.relu(F.linear(h, w.linear1.weight, w.linear1.bias))
    h = torch.tanh(F.linear(h, w.linear2.weight, w.linear2.bias))
    return out, h, (hidden[1] if case["model_type"] == "LSTM" else None)


@pytest.mark.points(2)
@pytest.mark.number("4.2")
@given(case=seq2seq_cases())
def test_encoder(weights, case):
    """the encoder's outputs (B, T, H_enc) and its hidden state tanh(linear2(relu(linear1(h_T))))"""
    model = s2s.Encoder(
        case["V_src"], case["C"], case["H_enc"], case["H_dec"], 0.3, case["model_type"]
    )
    model, w = weights.filled(model, case["seed"])
    model.eval()  # no dropout
    source = case["source"]
    with torch.no_grad():
        output, hidden = model(source)

    def oracle(i):
        def value():
            with torch.no_grad():
                return _encoder_oracle(w, case, source)[i]

        return value

    assert_close(output, oracle(0), what=f"Encoder output for {_sizes(case)}",
                 hint="embed, dropout, then the recurrent layer (batch_first=True) over the "
                      "whole sentence; its per-position output")  # fmt: skip
    hint = "project the recurrent layer's final hidden state: tanh(linear2(relu(linear1(h_T))))"
    if case["model_type"] == "LSTM":
        assert_equal(type(hidden).__name__ in ("tuple", "list") and len(hidden) == 2, True,
                     what=f"the LSTM encoder returns hidden as a pair (h, c) for {_sizes(case)}")  # fmt: skip
        assert_close(hidden[0], oracle(1), what=f"Encoder hidden h for {_sizes(case)}",
                     hint=f"{hint}; for an LSTM only h, of the pair (h, c)")  # fmt: skip
        assert_close(hidden[1], oracle(2), what=f"Encoder cell state c for {_sizes(case)}",
                     hint="the LSTM's cell state passes to the decoder unchanged")  # fmt: skip
    else:
        assert_close(hidden, oracle(1), what=f"Encoder hidden for {_sizes(case)}", hint=hint)


# --------------------------------------------------------------------------- cosine attention


def _cosine_oracle(hidden, encoder_outputs):
    q = hidden.transpose(0, 1)  # (B, 1, H)
    return torch.softmax(F.cosine_similarity(q, encoder_outputs, dim=-1), dim=-1).unsqueeze(1)


def _attention_decoder(H: int):
    return s2s.Decoder(2, H, H, 3, 0.0, "RNN", attention=True).double()


ATTENTION_HINT = ("cosine similarity q·k_t / (‖q‖ ‖k_t‖) between the decoder state q and each "
                  "encoder output k_t, then softmax over the source positions (the last dim)")  # fmt: skip


@pytest.mark.points(2)
@pytest.mark.number("4.3")
@given(case=cosine_attention_cases())
def test_compute_attention(case):
    """compute_attention: softmax over source positions of cosine similarities, shape (B, 1, T)"""
    hidden, enc = case["hidden"], case["encoder_outputs"]
    got = _attention_decoder(hidden.shape[-1]).compute_attention(hidden, enc)
    assert_close(got, lambda: _cosine_oracle(hidden, enc),
                 what=f"attention for hidden {tuple(hidden.shape)}, encoder_outputs {tuple(enc.shape)}",
                 hint=ATTENTION_HINT)  # fmt: skip


@pytest.mark.points(1)
@pytest.mark.number("4.4")
@given(case=cosine_attention_cases())
def test_attention_weights_sum_to_one_and_ignore_scale(case):
    """attention weights sum to 1 over the source, and scaling the query or a key changes nothing"""
    hidden, enc = case["hidden"], case["encoder_outputs"]
    B, T, H = enc.shape
    decoder = _attention_decoder(H)
    got = decoder.compute_attention(hidden, enc)
    assert_close(got.sum(dim=-1), torch.ones(B, 1, dtype=torch.float64),
                 what=f"attention summed over the source positions, encoder_outputs {(B, T, H)}",
                 hint="softmax over the last dimension: the T source positions")  # fmt: skip
    scaled = decoder.compute_attention(hidden * case["query_scale"][None, :, None],
                                       enc * case["key_scale"][..., None])  # fmt: skip
    assert_close(scaled, lambda: _cosine_oracle(hidden, enc),
                 what=f"attention after scaling the query and each key by positive factors, "
                      f"encoder_outputs {(B, T, H)}",
                 hint="a cosine similarity ignores the vectors' lengths: divide the dot product by "
                      "both norms (a plain dot product grows with the scale)")  # fmt: skip


# --------------------------------------------------------------------------- the decoder


@pytest.mark.points(1)
@pytest.mark.number("4.5")
def test_decoder_layers(check, weights):
    """Decoder holds embedding, rnn, linear, and with attention attn (C + H_enc → C)"""
    for model_type, attention in (("RNN", False), ("LSTM", True)):
        with check(f"{model_type}, attention={attention}"):
            model = s2s.Decoder(3, 4, 4, 7, 0.2, model_type, attention)
            expected = [["embedding.weight", [7, 3]], *_rnn_layout("rnn", model_type, 3, 4),
                        ["linear.weight", [7, 4]], ["linear.bias", [7]]]  # fmt: skip
            if attention:
                expected += [["attn.weight", [3, 7]], ["attn.bias", [3]]]
            assert_equal(weights.layout(model), sorted(expected),
                         what=f"Decoder(3, 4, 4, 7, model_type={model_type!r}, "
                              f"attention={attention})'s parameters",
                         hint="nn.Embedding(V_tgt, C) as embedding; nn.RNN / nn.LSTM(C, H_dec, "
                              "batch_first=True) as rnn; linear (H_dec → V_tgt); with attention "
                              "attn (C + H_enc → C)")  # fmt: skip


def _decoder_oracle(w, case, input, hidden, enc):
    x = F.embedding(input, w.embedding.weight)  # (B, 1, C)
    if case["attention"]:
        query = hidden[0] if case["model_type"] == "LSTM" else hidden
        context = _cosine_oracle(query, enc) @ enc  # (B, 1, H_enc)
        x = F.linear(torch.cat((x, context), dim=-1), w.attn.weight, w.attn.bias)
    out, hidden = _torch_rnn(w.rnn, case["model_type"], case["C"], case["H_dec"])(x, hidden)
    return torch.log_softmax(F.linear(out[:, 0], w.linear.weight, w.linear.bias), dim=1), hidden


def _decoder_inputs(case):
    g = torch.Generator().manual_seed(case["seed"])
    B, H = case["B"], case["H_dec"]
    h = torch.randn(1, B, H, generator=g, dtype=torch.float64)
    hidden = (
        (h, torch.randn(1, B, H, generator=g, dtype=torch.float64))
        if case["model_type"] == "LSTM"
        else h
    )
    enc = torch.randn(B, case["T"], case["H_enc"], generator=g, dtype=torch.float64)
    return case["target"][:, :1], hidden, enc


@pytest.mark.points(3)
@pytest.mark.number("4.6")
@given(case=seq2seq_cases())
def test_decoder_step(weights, case):
    """one decoder step: log-probabilities (B, V_tgt) and the new state, with or without attention"""
    model = s2s.Decoder(case["C"], case["H_enc"], case["H_dec"], case["V_tgt"], 0.3,
                        case["model_type"], case["attention"])  # fmt: skip
    model, w = weights.filled(model, case["seed"])
    model.eval()  # no dropout
    input, hidden, enc = _decoder_inputs(case)
    with torch.no_grad():
        output, new_hidden = model(input, hidden, enc)

    def oracle(*index):
        def value():
            with torch.no_grad():
                v = _decoder_oracle(w, case, input, hidden, enc)
            for i in index:
                v = v[i]
            return v

        return value

    hint = ("embed and dropout the word (B, 1, C); with attention, weights from compute_attention "
            "with the decoder state (an LSTM's h), context = weights @ encoder_outputs, input = "
            "attn(cat([embedded, context], dim=-1)); the recurrent layer from hidden; "
            "log_softmax(linear(output))")  # fmt: skip
    assert_close(output, oracle(0), what=f"Decoder output for {_sizes(case)}", hint=hint)
    if case["model_type"] == "LSTM":
        assert_close(
            new_hidden[0], oracle(1, 0), what=f"Decoder new h for {_sizes(case)}", hint=hint
        )
        assert_close(
            new_hidden[1], oracle(1, 1), what=f"Decoder new c for {_sizes(case)}", hint=hint
        )
    else:
        assert_close(
            new_hidden, oracle(1), what=f"Decoder new hidden for {_sizes(case)}", hint=hint
        )


# --------------------------------------------------------------------------- Seq2Seq


def _toy_seq2seq(case):
    """The student's Seq2Seq around the kit's toy encoder and decoder (built where the student's
    code runs, to be handed to it), and twins of the toys here, for the oracle's loop: a toy's
    weights depend on its arguments only."""
    lstm, H = case["model_type"] == "LSTM", case["H_dec"]
    encoder_args = (case["V_src"], H, lstm, case["seed"])
    decoder_args = (case["V_tgt"], H, lstm, case["attention"], case["seed"])
    encoder = build("coursekit.a2_builders.ToyEncoder", *encoder_args)
    decoder = build("coursekit.a2_builders.ToyDecoder", *decoder_args)
    model = s2s.Seq2Seq(encoder, decoder, "cpu", case["attention"])
    return model, ToyEncoder(*encoder_args), ToyDecoder(*decoder_args)


def _sos(case):
    """Source and target starting with the same <sos> id (0 in both vocabularies here)."""
    source, target = case["source"].clone(), case["target"].clone()
    source[:, 0] = target[:, 0] = 0
    return source, target


def _loop(encoder, decoder, source, steps: int, target=None):
    """The oracle: teacher forcing feeds target[:, t], greedy feeds the previous argmax."""
    with torch.no_grad():
        enc, hidden = encoder(source)
        input, outputs = source[:, :1], []
        for t in range(steps):
            if target is not None:
                input = target[:, t : t + 1]
            output, hidden = decoder(input, hidden, enc)
            outputs.append(output)
            input = output.argmax(dim=1, keepdim=True)
        return torch.stack(outputs, dim=1)


@pytest.mark.points(2)
@pytest.mark.number("4.7")
@given(case=seq2seq_cases())
def test_seq2seq_teacher_forcing(case):
    """with a target, step t feeds the gold word target[:, t]: outputs (B, T_tgt - 1, V_tgt)"""
    model, encoder, decoder = _toy_seq2seq(case)
    source, target = _sos(case)
    with torch.no_grad():
        got = model(source, target=target)
    assert_close(got, lambda: _loop(encoder, decoder, source, target.shape[1] - 1, target),
                 what=f"Seq2Seq(source {tuple(source.shape)}, target={tuple(target.shape)}) "
                      f"({case['model_type']}, attention={case['attention']})",
                 hint="encode once; feed the decoder target[:, t:t+1] at step t for t = 0 .. "
                      "T_tgt - 2, carrying its hidden state (and passing encoder_outputs); stack "
                      "the outputs along dim 1")  # fmt: skip


@pytest.mark.points(2)
@pytest.mark.number("4.8")
@given(case=seq2seq_cases())
def test_seq2seq_greedy(case):
    """without a target, greedy decoding from source[:, 0] for out_seq_len steps (default T)"""
    model, encoder, decoder = _toy_seq2seq(case)
    source, _ = _sos(case)
    T = source.shape[1]
    hint = ("step 0 feeds source[:, :1] (<sos>), step t the argmax of step t - 1's output (B, 1); "
            "carry the hidden state; out_seq_len defaults to the source length")  # fmt: skip
    for steps in (None, T + 1):
        with torch.no_grad():
            got = model(source) if steps is None else model(source, out_seq_len=steps)
        assert_close(got, lambda steps=steps: _loop(encoder, decoder, source, steps or T),
                     what=f"Seq2Seq(source {tuple(source.shape)}, out_seq_len={steps}) greedy "
                          f"({case['model_type']}, attention={case['attention']})",
                     hint=hint)  # fmt: skip


@pytest.mark.points(1)
@pytest.mark.number("4.9")
@given(case=seq2seq_cases())
def test_teacher_forcing_on_greedy_words_is_greedy(case):
    """teacher-forcing the words greedy decoding chose reproduces the greedy outputs"""
    model, encoder, decoder = _toy_seq2seq(case)
    source, _ = _sos(case)
    T = source.shape[1]
    words = _loop(encoder, decoder, source, T).argmax(dim=-1)  # (B, T): the oracle's greedy words
    target = torch.cat((source[:, :1], words), dim=1)  # (B, T + 1)
    with torch.no_grad():
        got = model(source, target=target)
    assert_close(got, lambda: _loop(encoder, decoder, source, T),
                 what=f"Seq2Seq teacher-forced on its greedy words, source {tuple(source.shape)} "
                      f"({case['model_type']}, attention={case['attention']})",
                 hint="the two paths differ only in the word fed at each step: the gold "
                      "target[:, t] or the previous step's argmax")  # fmt: skip
