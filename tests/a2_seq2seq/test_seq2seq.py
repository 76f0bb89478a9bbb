"""H3.4 — Seq2Seq: the encoder, one decoder step with cosine attention, and the decoding loop.

Oracles: ``torch.nn.RNN`` / ``torch.nn.LSTM`` holding the weights the test gave the module, with
``F.embedding``, ``F.linear`` and ``F.cosine_similarity`` for the rest. ``Seq2Seq`` is graded with
a small encoder and decoder of the kit (``coursekit.a2_seq2seq.builders``: so a mistake in your Encoder or
Decoder does not cost Seq2Seq's points twice) against a loop written here, which runs twins of
them built in the test's process. Every expected value comes from an oracle, never from your own
code run a second time.
"""

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close, assert_equal, assert_unchanged, snapshot
from hypothesis import given
from strategies import cosine_attention_cases, seq2seq_cases
from torch import nn

from coursekit.a2_seq2seq.builders import ToyDecoder, ToyEncoder
from grader.testprocess.deliverables import build, deliverable, mutable

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
    return (
        f"{case['model_type']}, attention={case['attention']}, B={case['B']}, T={case['T']}, "
        f"C={case['C']}, H_enc={case['H_enc']}, H_dec={case['H_dec']}"
    )


# --------------------------------------------------------------------------- the encoder


@pytest.mark.points(1)
@pytest.mark.number("4.1")
def test_encoder_layers(check, weights):
    """Encoder holds embedding, rnn (nn.RNN or nn.LSTM), linear1 and linear2"""
    for model_type, H_dec in (("RNN", 5), ("LSTM", 4)):
        with check(model_type):
            model = s2s.Encoder(7, 3, 4, H_dec, 0.2, model_type)
            expected = sorted(
                [
                    ["embedding.weight", [7, 3]],
                    *_rnn_layout("rnn", model_type, 3, 4),
                    ["linear1.weight", [4, 4]],
                    ["linear1.bias", [4]],
                    ["linear2.weight", [H_dec, 4]],
                    ["linear2.bias", [H_dec]],
                ]
            )
            assert_equal(
                weights.layout(model),
                expected,
                what=f"Encoder(7, 3, 4, {H_dec}, model_type={model_type!r})'s parameters",
                hint="nn.Embedding(V_src, C) as embedding; nn.RNN / nn.LSTM(C, H_enc, "
                "batch_first=True) as rnn; linear1 (H_enc → H_enc); linear2 "
                "(H_enc → H_dec)",
            )


def _encoder_oracle(w, case, source, drop_all: bool = False):
    """``drop_all``: dropout with p = 1 zeroes the embeddings (and nothing else)."""
    rnn = _torch_rnn(w.rnn, case["model_type"], case["C"], case["H_enc"])
    embedded = F.embedding(source, w.embedding.weight)  # (B, T, C)
    out, hidden = rnn(torch.zeros_like(embedded) if drop_all else embedded)
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

    assert_close(
        output,
        oracle(0),
        what=f"Encoder output for {_sizes(case)}",
        hint="embed, dropout, then the recurrent layer (batch_first=True) over the "
        "whole sentence; its per-position output",
    )
    hint = "project the recurrent layer's final hidden state: tanh(linear2(relu(linear1(h_T))))"
    if case["model_type"] == "LSTM":
        assert_equal(
            type(hidden).__name__ in ("tuple", "list") and len(hidden) == 2,
            True,
            what=f"the LSTM encoder returns hidden as a pair (h, c) for {_sizes(case)}",
        )
        assert_close(
            hidden[0],
            oracle(1),
            what=f"Encoder hidden h for {_sizes(case)}",
            hint=f"{hint}; for an LSTM only h, of the pair (h, c)",
        )
        assert_close(
            hidden[1],
            oracle(2),
            what=f"Encoder cell state c for {_sizes(case)}",
            hint="the LSTM's cell state passes to the decoder unchanged",
        )
    else:
        assert_close(hidden, oracle(1), what=f"Encoder hidden for {_sizes(case)}", hint=hint)


# --------------------------------------------------------------------------- cosine attention


def _cosine_oracle(hidden, encoder_outputs):
    q = hidden.transpose(0, 1)  # (B, 1, H)
    return torch.softmax(F.cosine_similarity(q, encoder_outputs, dim=-1), dim=-1).unsqueeze(1)


def _attention_decoder(H: int):
    return s2s.Decoder(2, H, H, 3, 0.0, "RNN", attention=True).double()


ATTENTION_HINT = (
    "cosine similarity q·k_t / max(‖q‖ ‖k_t‖, 1e-8) between the decoder state q and "
    "each encoder output k_t (a zero vector gets 0, not 0/0 = nan), then softmax over "
    "the source positions (the last dim)"
)


@pytest.mark.points(2)
@pytest.mark.number("4.3")
@given(case=cosine_attention_cases())
def test_compute_attention(case):
    """compute_attention: softmax over source positions of cosine similarities, shape (B, 1, T)"""
    hidden, enc = case["hidden"], case["encoder_outputs"]
    got = _attention_decoder(hidden.shape[-1]).compute_attention(hidden, enc)
    assert_close(
        got,
        lambda: _cosine_oracle(hidden, enc),
        what=f"attention for hidden {tuple(hidden.shape)}, encoder_outputs {tuple(enc.shape)}",
        hint=ATTENTION_HINT,
    )


@pytest.mark.points(1)
@pytest.mark.number("4.4")
@given(case=cosine_attention_cases())
def test_attention_weights_sum_to_one_and_ignore_scale(case):
    """attention weights sum to 1 over the source, and scaling the query or a key changes nothing"""
    hidden, enc = case["hidden"], case["encoder_outputs"]
    B, T, H = enc.shape
    decoder = _attention_decoder(H)
    got = decoder.compute_attention(hidden, enc)
    assert_close(
        got.sum(dim=-1),
        torch.ones(B, 1, dtype=torch.float64),
        what=f"attention summed over the source positions, encoder_outputs {(B, T, H)}",
        hint="softmax over the last dimension: the T source positions",
    )
    scaled = decoder.compute_attention(
        hidden * case["query_scale"][None, :, None], enc * case["key_scale"][..., None]
    )
    assert_close(
        scaled,
        lambda: _cosine_oracle(hidden, enc),
        what=f"attention after scaling the query and each key by positive factors, "
        f"encoder_outputs {(B, T, H)}",
        hint="a cosine similarity ignores the vectors' lengths: divide the dot product by "
        "both norms (a plain dot product grows with the scale)",
    )


# --------------------------------------------------------------------------- the decoder


@pytest.mark.points(1)
@pytest.mark.number("4.5")
def test_decoder_layers(check, weights):
    """Decoder holds embedding, rnn, linear, and with attention attn (C + H_enc → C)"""
    for model_type, attention in (("RNN", False), ("LSTM", True)):
        with check(f"{model_type}, attention={attention}"):
            model = s2s.Decoder(3, 4, 4, 7, 0.2, model_type, attention)
            expected = [
                ["embedding.weight", [7, 3]],
                *_rnn_layout("rnn", model_type, 3, 4),
                ["linear.weight", [7, 4]],
                ["linear.bias", [7]],
            ]
            if attention:
                expected += [["attn.weight", [3, 7]], ["attn.bias", [3]]]
            assert_equal(
                weights.layout(model),
                sorted(expected),
                what=f"Decoder(3, 4, 4, 7, model_type={model_type!r}, "
                f"attention={attention})'s parameters",
                hint="nn.Embedding(V_tgt, C) as embedding; nn.RNN / nn.LSTM(C, H_dec, "
                "batch_first=True) as rnn; linear (H_dec → V_tgt); with attention "
                "attn (C + H_enc → C)",
            )


def _decoder_oracle(w, case, input, hidden, enc, drop_all: bool = False):
    """``drop_all``: dropout with p = 1 zeroes the word's embedding (and nothing else)."""
    x = F.embedding(input, w.embedding.weight)  # (B, 1, C)
    if drop_all:
        x = torch.zeros_like(x)
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
    model = s2s.Decoder(
        case["C"],
        case["H_enc"],
        case["H_dec"],
        case["V_tgt"],
        0.3,
        case["model_type"],
        case["attention"],
    )
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

    hint = (
        "embed and dropout the word (B, 1, C); with attention, weights from compute_attention "
        "with the decoder state (an LSTM's h), context = weights @ encoder_outputs, input = "
        "attn(cat([embedded, context], dim=-1)); the recurrent layer from hidden; "
        "log_softmax(linear(output))"
    )
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
    encoder = build("coursekit.a2_seq2seq.builders.ToyEncoder", *encoder_args)
    decoder = build("coursekit.a2_seq2seq.builders.ToyDecoder", *decoder_args)
    model = s2s.Seq2Seq(encoder, decoder, "cpu", case["attention"])
    return model, ToyEncoder(*encoder_args), ToyDecoder(*decoder_args)


def _sos(case):
    """Source and target starting with the same <sos> id (drawn: not always 0)."""
    source, target = case["source"].clone(), case["target"].clone()
    source[:, 0] = target[:, 0] = case["sos"]
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
    assert_close(
        got,
        lambda: _loop(encoder, decoder, source, target.shape[1] - 1, target),
        what=f"Seq2Seq(source {tuple(source.shape)}, target={tuple(target.shape)}) "
        f"({case['model_type']}, attention={case['attention']})",
        hint="encode once; feed the decoder target[:, t:t+1] at step t for t = 0 .. "
        "T_tgt - 2, carrying its hidden state (and passing encoder_outputs); stack "
        "the outputs along dim 1",
    )


@pytest.mark.points(2)
@pytest.mark.number("4.8")
@given(case=seq2seq_cases())
def test_seq2seq_greedy(case):
    """without a target, greedy decoding from source[:, 0] for out_seq_len steps (default T)"""
    model, encoder, decoder = _toy_seq2seq(case)
    source, _ = _sos(case)
    T = source.shape[1]
    hint = (
        "step 0 feeds source[:, :1] (<sos>), step t the argmax of step t - 1's output (B, 1); "
        "carry the hidden state; out_seq_len defaults to the source length"
    )
    for steps in (None, T + 1):
        with torch.no_grad():
            got = model(source) if steps is None else model(source, out_seq_len=steps)
        assert_close(
            got,
            lambda steps=steps: _loop(encoder, decoder, source, steps or T),
            what=f"Seq2Seq(source {tuple(source.shape)}, out_seq_len={steps}) greedy "
            f"({case['model_type']}, attention={case['attention']})",
            hint=hint,
        )


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
    assert_close(
        got,
        lambda: _loop(encoder, decoder, source, T),
        what=f"Seq2Seq teacher-forced on its greedy words, source {tuple(source.shape)} "
        f"({case['model_type']}, attention={case['attention']})",
        hint="the two paths differ only in the word fed at each step: the gold "
        "target[:, t] or the previous step's argmax",
    )


# --------------------------------------------------------------------------- training mode
# Dropout acts on the embeddings only (README: e = dropout(embedding(input)), in the encoder and
# in the decoder). Exact properties, whatever order a correct solution draws its masks in: with
# p = 0 train() equals eval(); with p = 1 the embeddings are zeroed and nothing else; with the
# default p = 0.2 each embedding entry is either dropped (0) or kept and scaled by 1 / (1 - p),
# read back through a recurrent layer set to h_t = tanh(S e_t) (weight_ih = S·I, the rest 0).

S = 0.2  # small enough that atanh reads tanh(S e) back accurately
IDENTITY_RNN = f"weight_ih_l0 = {S}·I, weight_hh_l0 = 0, biases 0, so that h_t = tanh({S}·e_t)"
DROPOUT_HINT = (
    "dropout (nn.Dropout(dropout), the constructor's p) on the embedded words only — "
    "e = dropout(embedding(input)) — before the recurrent layer (and, in the decoder, "
    "before attn); nn.Dropout is active in train() and off in eval()"
)


def _identity_rnn(model, C: int) -> None:
    """Set the module's ``rnn`` (an nn.RNN, C → C) to h_t = tanh(S e_t)."""
    eye, zeros = torch.eye(C, dtype=torch.float64) * S, torch.zeros(C, dtype=torch.float64)
    model.load_state_dict(
        {
            "rnn.weight_ih_l0": eye,
            "rnn.weight_hh_l0": torch.zeros(C, C, dtype=torch.float64),
            "rnn.bias_ih_l0": zeros,
            "rnn.bias_hh_l0": zeros,
        },
        strict=False,
    )


def _dropped_or_scaled(got_h, embedded, p: float, what: str) -> None:
    """``got_h`` = tanh(S · dropout(embedded)): each entry of the dropout's output is 0 or the
    entry of ``embedded`` times 1 / (1 - p) (whichever is nearer is what it should equal)."""
    e = torch.atanh(got_h) / S  # the recurrent layer's input, read back
    kept = embedded / (1 - p)
    nearest = torch.where((e - kept).abs() < e.abs(), kept, torch.zeros_like(kept))
    assert_close(
        e,
        nearest,
        what=what,
        rtol=1e-9,
        atol=1e-9,
        why="atanh of a float64 tanh gives its argument back to ~1e-14",
        hint=f"{DROPOUT_HINT}; kept entries are scaled by 1 / (1 - p), p = 0.2 by "
        "default (nn.Dropout does both)",
    )


def _dropout_case(model_type: str, attention: bool) -> dict:
    g = torch.Generator().manual_seed(11)
    B, T, H = 2, 4, 3
    H_dec = H if model_type == "LSTM" or attention else 2
    return {
        "model_type": model_type,
        "attention": attention,
        "B": B,
        "T": T,
        "T_tgt": 3,
        "V_src": 6,
        "V_tgt": 5,
        "C": 3,
        "H_enc": H,
        "H_dec": H_dec,
        "seed": 3,
        "sos": 2,
        "source": torch.randint(0, 6, (B, T), generator=g),
        "target": torch.randint(0, 5, (B, 3), generator=g),
    }


@pytest.mark.points(1)
@pytest.mark.number("4.10")
def test_encoder_dropout(check, weights):
    """in train() mode the Encoder drops embedding entries only, with the p it is given (default 0.2)"""
    for model_type in ("RNN", "LSTM"):
        case = _dropout_case(model_type, False)
        source = case["source"]
        for p in (0.0, 1.0):
            with check(f"{model_type}, dropout={p}"):
                model = s2s.Encoder(
                    case["V_src"], case["C"], case["H_enc"], case["H_dec"], p, model_type
                )
                model, w = weights.filled(model, case["seed"])
                model.train()
                torch.manual_seed(0)  # the draws happen where your code runs, from this seed
                with torch.no_grad():
                    output, hidden = model(source)
                hidden = hidden[0] if model_type == "LSTM" else hidden

                def oracle(i, p=p, w=w, case=case, source=source):
                    def value():
                        with torch.no_grad():
                            return _encoder_oracle(w, case, source, drop_all=p == 1.0)[i]

                    return value

                meaning = (
                    "train() must equal eval()"
                    if p == 0.0
                    else "every embedding entry dropped: the RNN reads zeros"
                )
                for got, i, name in ((output, 0, "output"), (hidden, 1, "hidden")):
                    assert_close(
                        got,
                        oracle(i),
                        what=f"Encoder {name} in train() with dropout={p} ({meaning}), "
                        f"{_sizes(case)}",
                        hint=DROPOUT_HINT,
                    )
    with check("default dropout (0.2): each embedding entry is 0 or scaled by 1 / 0.8"):
        case = _dropout_case("RNN", False)
        C = case["C"]
        model, w = weights.filled(s2s.Encoder(case["V_src"], C, C, case["H_dec"]), case["seed"])
        _identity_rnn(model, C)
        model.train()
        torch.manual_seed(0)
        with torch.no_grad():
            output, _ = model(case["source"])
        _dropped_or_scaled(
            output,
            F.embedding(case["source"], w.embedding.weight),
            0.2,
            what=f"the dropped-out embeddings, read back through an RNN with "
            f"{IDENTITY_RNN}, Encoder({case['V_src']}, {C}, {C}, "
            f"{case['H_dec']}) with the default dropout, train()",
        )


@pytest.mark.points(1)
@pytest.mark.number("4.11")
def test_decoder_dropout(check, weights):
    """in train() mode the Decoder drops entries of the word's embedding only, with the p it is given (default 0.2)"""
    for model_type, attention in (("RNN", False), ("RNN", True), ("LSTM", True)):
        case = _dropout_case(model_type, attention)
        for p in (0.0, 1.0):
            with check(f"{model_type}, attention={attention}, dropout={p}"):
                model = s2s.Decoder(
                    case["C"], case["H_enc"], case["H_dec"], case["V_tgt"], p, model_type, attention
                )
                model, w = weights.filled(model, case["seed"])
                model.train()
                input, hidden, enc = _decoder_inputs(case)
                torch.manual_seed(0)
                with torch.no_grad():
                    output, new_hidden = model(input, hidden, enc)
                new_h = new_hidden[0] if model_type == "LSTM" else new_hidden

                def oracle(*index, p=p, w=w, case=case, input=input, hidden=hidden, enc=enc):
                    def value():
                        with torch.no_grad():
                            v = _decoder_oracle(w, case, input, hidden, enc, drop_all=p == 1.0)
                        for i in index:
                            v = v[i]
                        return v

                    return value

                meaning = (
                    "train() must equal eval()"
                    if p == 0.0
                    else "the word's embedding dropped: zeros, before attn"
                )
                h_index = (1, 0) if model_type == "LSTM" else (1,)
                for got, index, name in ((output, (0,), "output"), (new_h, h_index, "new h")):
                    assert_close(
                        got,
                        oracle(*index),
                        what=f"Decoder {name} in train() with dropout={p} ({meaning}), "
                        f"{_sizes(case)}",
                        hint=DROPOUT_HINT,
                    )
    with check("default dropout (0.2): each embedding entry is 0 or scaled by 1 / 0.8"):
        case = _dropout_case("RNN", False)
        C = case["C"]
        model, w = weights.filled(s2s.Decoder(C, C, C, case["V_tgt"]), case["seed"])
        _identity_rnn(model, C)
        model.train()
        input = case["target"][:, :1]  # (B, 1)
        hidden = torch.zeros(1, case["B"], C, dtype=torch.float64)
        enc = torch.ones(case["B"], case["T"], C, dtype=torch.float64)  # unused: no attention
        torch.manual_seed(0)
        with torch.no_grad():
            _, new_hidden = model(input, hidden, enc)
        _dropped_or_scaled(
            new_hidden[0],
            F.embedding(input[:, 0], w.embedding.weight),
            0.2,
            what=f"the dropped-out embedding, read back through an RNN with "
            f"{IDENTITY_RNN}, Decoder({C}, {C}, {C}, {case['V_tgt']}) with the "
            f"default dropout, train()",
        )


# --------------------------------------------------------------------------- modes and defaults


@pytest.mark.points(1)
@pytest.mark.number("4.12")
def test_seq2seq_modes_and_defaults(check, weights):
    """Seq2Seq decodes the same in eval() as in train(); out_seq_len with a target; a decoder without attention needs no encoder_outputs"""
    case = _dropout_case("LSTM", True)
    model, encoder, decoder = _toy_seq2seq(case)
    source, target = _sos(case)
    steps = target.shape[1] - 1
    tf_hint = (
        "with a target, step t feeds target[:, t] whatever the mode: train() and eval() "
        "change dropout, never the decoding"
    )
    with check("eval(): teacher forcing"):
        model.eval()
        with torch.no_grad():
            got = model(source, target=target)
        assert_close(
            got,
            lambda: _loop(encoder, decoder, source, steps, target),
            what=f"Seq2Seq.eval()(source {tuple(source.shape)}, target={tuple(target.shape)})",
            hint=tf_hint,
        )
    with check("eval(): greedy"):
        model.eval()
        with torch.no_grad():
            got = model(source)
        assert_close(
            got,
            lambda: _loop(encoder, decoder, source, source.shape[1]),
            what=f"Seq2Seq.eval()(source {tuple(source.shape)}) greedy",
            hint="without a target, greedy decoding in every mode",
        )
    with check("out_seq_len = T_tgt - 1 given with a target: teacher forcing"):
        model.train()
        with torch.no_grad():
            got = model(source, out_seq_len=steps, target=target)
        assert_close(
            got,
            lambda: _loop(encoder, decoder, source, steps, target),
            what=f"Seq2Seq(source {tuple(source.shape)}, out_seq_len={steps}, "
            f"target={tuple(target.shape)})",
            hint="a target means teacher forcing, also when out_seq_len (its length "
            "minus 1) is given as well",
        )
    with check("Decoder(attention=False) called without encoder_outputs"):
        case = _dropout_case("RNN", False)
        model = s2s.Decoder(case["C"], case["H_enc"], case["H_dec"], case["V_tgt"], 0.2, "RNN")
        model, w = weights.filled(model, case["seed"])
        model.eval()
        input, hidden, enc = _decoder_inputs(case)
        with torch.no_grad():
            output, _ = model(input, hidden)

        def expected():
            with torch.no_grad():
                return _decoder_oracle(w, case, input, hidden, enc)[0]

        assert_close(
            output,
            expected,
            what=f"Decoder(..., attention=False)(input, hidden) without encoder_outputs, "
            f"{_sizes(case)}",
            hint="encoder_outputs defaults to None: only a decoder built with attention "
            "reads (or asks for) them",
        )


# --------------------------------------------------------------------------- in place


IN_PLACE_HINT = (
    "compute on new tensors: an in-place operation (x /= ..., x.div_(...), "
    "x[...] = ...) on an argument changes the caller's tensor"
)


@pytest.mark.points(1)
@pytest.mark.number("4.13")
def test_arguments_left_unchanged(check, weights):
    """Encoder, compute_attention, Decoder and Seq2Seq leave their input tensors as they found them"""
    case = _dropout_case("LSTM", True)
    source, target = _sos(case)
    input, hidden, enc = _decoder_inputs(case)
    with check("Encoder.forward(input)"):
        model = weights.fill(
            s2s.Encoder(case["V_src"], case["C"], case["H_enc"], case["H_dec"], 0.0, "LSTM"),
            case["seed"],
        )
        before = snapshot(source)
        with torch.no_grad():
            model(mutable(source))
        assert_unchanged(source, before, what="Encoder.forward's input", hint=IN_PLACE_HINT)
    decoder = weights.fill(
        s2s.Decoder(case["C"], case["H_enc"], case["H_dec"], case["V_tgt"], 0.0, "LSTM", True),
        case["seed"],
    )
    with check("Decoder.compute_attention(hidden, encoder_outputs)"):
        before = snapshot((hidden[0], enc))
        with torch.no_grad():
            decoder.compute_attention(mutable(hidden[0]), mutable(enc))
        assert_unchanged(
            (hidden[0], enc),
            before,
            what="compute_attention's hidden and encoder_outputs",
            hint=f"{IN_PLACE_HINT} (divide by the norms out of place)",
        )
    with check("Decoder.forward(input, (h, c), encoder_outputs)"):
        before = snapshot((input, hidden, enc))
        with torch.no_grad():
            decoder(mutable(input), mutable(hidden), mutable(enc))
        assert_unchanged(
            (input, hidden, enc),
            before,
            what="Decoder.forward's input, hidden (h, c) and encoder_outputs",
            hint=IN_PLACE_HINT,
        )
    with check("Seq2Seq.forward(source, target=...) and greedy"):
        model, _, _ = _toy_seq2seq(case)
        before = snapshot((source, target))
        with torch.no_grad():
            model(mutable(source), target=mutable(target))
            model(mutable(source))
        assert_unchanged(
            (source, target),
            before,
            what="Seq2Seq.forward's source and target",
            hint=f"{IN_PLACE_HINT}: keep the words to feed in a new tensor",
        )
