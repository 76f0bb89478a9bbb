"""The whole contract of assignment 2's modules, against the reference twin (``tests/twin.py``).

Each module — the vanilla RNN unit, the LSTM, the Encoder, the Decoder (with and without
attention), Seq2Seq around the student's own Encoder and Decoder (teacher-forced and greedy), and
the Transformer translator method by method — is built with drawn sizes in train and eval mode
and run beside the instructor's implementation holding the student's weights: the same outputs,
the same gradient for every parameter and floating-point input, nothing changed by the call.
Dropout is 0 in train mode (its masks would depend on the order of random draws, which the
handout leaves open); in eval mode any dropout is off anyway.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import recurrent_cases, seq2seq_cases, translator_contract_cases
from twin import REFERENCE_ONLY, compare_call, reference, twin_of

from grader.testprocess.deliverables import deliverable

pytestmark = REFERENCE_ONLY

rnn = deliverable("a2_seq2seq.rnn")
lstm = deliverable("a2_seq2seq.lstm")
s2s = deliverable("a2_seq2seq.seq2seq")
tr = deliverable("a2_seq2seq.transformer")

# Each example builds modules in the student's process and crosses the boundary a few times.
CASES = settings(max_examples=10)
modes = st.booleans()  # train() when True


def _mode(module, train: bool):
    return module.train() if train else module.eval()


def _named(train: bool) -> str:
    return "train" if train else "eval"


@pytest.mark.points(1)
@pytest.mark.number("2.5")
@CASES
@given(case=recurrent_cases(init_states=True), train=modes)
def test_vanilla_rnn_against_the_reference(case, train):
    """VanillaRNN: a step's outputs, every parameter's gradient and the state after, as the reference's"""
    C, H, V = case["C"], case["H"], case["V"]
    torch.manual_seed(case["seed"])
    mine = _mode(rnn.VanillaRNN(C, H, V).double(), train)
    what = f"VanillaRNN(C={C}, H={H}, V={V}) in {_named(train)} mode"
    ref = reference("a2_seq2seq.rnn")
    twin = _mode(twin_of(mine, lambda: ref.VanillaRNN(C, H, V), what), train)
    compare_call(
        mine,
        twin,
        (case["x"][:, 0], case["h0"]),
        what=f"{what}, one step",
        seed=case["seed"],
        hint="combine [input ; hidden], i2h then tanh for the new "
        "hidden, i2o then log-softmax for the output",
    )


@pytest.mark.points(1)
@pytest.mark.number("3.6")
@CASES
@given(case=recurrent_cases(), train=modes)
def test_lstm_against_the_reference(case, train):
    """LSTM: final states, every parameter's gradient and the state after, as the reference's"""
    C, H = case["C"], case["H"]
    torch.manual_seed(case["seed"])
    mine = _mode(lstm.LSTM(C, H).double(), train)
    what = f"LSTM(C={C}, H={H}) in {_named(train)} mode"
    ref = reference("a2_seq2seq.lstm")
    twin = _mode(twin_of(mine, lambda: ref.LSTM(C, H), what), train)
    states = None if case["h0"] is None else (case["h0"], case["c0"])
    args = (case["x"],) if states is None else (case["x"], states)
    compare_call(
        mine,
        twin,
        args,
        what=f"{what} on x {tuple(case['x'].shape)}{'' if states is None else ' from (h_0, c_0)'}",
        seed=case["seed"],
        hint="the four gates of every step from x_t and h_{t-1}; c_t = f c_{t-1} + i g, "
        "h_t = o tanh(c_t)",
    )


def _sizes(case) -> str:
    return (
        f"V_src={case['V_src']}, V_tgt={case['V_tgt']}, C={case['C']}, H_enc={case['H_enc']}, "
        f"H_dec={case['H_dec']}, {case['model_type']}, attention={case['attention']}"
    )


def _dropout(train: bool, case) -> float:
    return 0.0 if train else 0.1 + (case["seed"] % 5) / 10  # any p: eval() turns dropout off


@pytest.mark.points(1)
@pytest.mark.number("4.14")
@CASES
@given(case=seq2seq_cases(), train=modes)
def test_encoder_and_decoder_against_the_reference(case, train):
    """Encoder and Decoder: outputs and hidden states, every parameter's gradient, as the reference's"""
    V_src, V_tgt, C, H_enc, H_dec = (case[k] for k in ("V_src", "V_tgt", "C", "H_enc", "H_dec"))
    kind, attention, p = case["model_type"], case["attention"], _dropout(train, case)
    ref = reference("a2_seq2seq.seq2seq")
    torch.manual_seed(case["seed"])
    encoder = _mode(s2s.Encoder(V_src, C, H_enc, H_dec, p, kind).double(), train)
    what = f"Encoder({_sizes(case)}, dropout={p:g}) in {_named(train)} mode"
    twin = _mode(
        twin_of(encoder, lambda: ref.Encoder(V_src, C, H_enc, H_dec, p, kind), what), train
    )
    compare_call(
        encoder,
        twin,
        (case["source"],),
        what=f"{what} on {case['source'].tolist()}",
        seed=case["seed"],
        hint="embedding, dropout, the recurrent layer; the hidden "
        "state through linear1, ReLU, linear2 and tanh",
    )
    decoder = _mode(s2s.Decoder(C, H_enc, H_dec, V_tgt, p, kind, attention).double(), train)
    what = f"Decoder({_sizes(case)}, dropout={p:g}) in {_named(train)} mode"
    twin = _mode(
        twin_of(decoder, lambda: ref.Decoder(C, H_enc, H_dec, V_tgt, p, kind, attention), what),
        train,
    )
    g = torch.Generator().manual_seed(case["seed"])
    B, T = case["B"], case["T"]
    h = torch.randn(1, B, H_dec, generator=g, dtype=torch.float64)
    hidden = (
        (h, torch.randn(1, B, H_dec, generator=g, dtype=torch.float64)) if kind == "LSTM" else h
    )
    enc = torch.randn(B, T, H_enc, generator=g, dtype=torch.float64)
    compare_call(
        decoder,
        twin,
        (case["target"][:, :1], hidden, enc),
        what=f"{what}, one step",
        seed=case["seed"],
        hint="embedding and dropout; with attention, the cosine "
        "context and attn; the recurrent layer; linear and log-softmax",
    )


@pytest.mark.points(2)
@pytest.mark.number("4.15")
@CASES
@given(case=seq2seq_cases(), train=modes, forced=st.booleans())
def test_seq2seq_against_the_reference(case, train, forced):
    """Seq2Seq (its own Encoder and Decoder): outputs and every parameter's gradient, as the reference's"""
    V_src, V_tgt, C, H_enc, H_dec = (case[k] for k in ("V_src", "V_tgt", "C", "H_enc", "H_dec"))
    kind, attention, p = case["model_type"], case["attention"], _dropout(train, case)
    ref = reference("a2_seq2seq.seq2seq")
    torch.manual_seed(case["seed"])
    mine = s2s.Seq2Seq(
        s2s.Encoder(V_src, C, H_enc, H_dec, p, kind),
        s2s.Decoder(C, H_enc, H_dec, V_tgt, p, kind, attention),
        "cpu",
        attention,
    )
    mine = _mode(mine.double(), train)
    how = "teacher-forced" if forced else "greedy"
    what = f"Seq2Seq({_sizes(case)}, dropout={p:g}) in {_named(train)} mode, {how}"

    def build():
        return ref.Seq2Seq(
            ref.Encoder(V_src, C, H_enc, H_dec, p, kind),
            ref.Decoder(C, H_enc, H_dec, V_tgt, p, kind, attention),
            "cpu",
            attention,
        )

    twin = _mode(twin_of(mine, build, what), train)
    source, target = case["source"].clone(), case["target"].clone()
    source[:, 0] = target[:, 0] = case["sos"]  # the same <sos> id in both vocabularies
    kwargs = {"target": target} if forced else {}
    compare_call(
        mine,
        twin,
        (source,),
        kwargs,
        what=f"{what} on {source.tolist()}",
        seed=case["seed"],
        hint="encode once; decode step by step from <sos>, feeding the "
        "gold word (teacher forcing) or the previous argmax (greedy)",
    )


METHODS = ("forward", "embed", "multi_head_attention", "feedforward_layer", "final_layer")


@pytest.mark.points(2)
@pytest.mark.number("5.13")
@CASES
@given(case=translator_contract_cases(), method=st.sampled_from(METHODS))
def test_translator_against_the_reference(case, method):
    """TransformerTranslator, method by method: outputs and every parameter's gradient, as the reference's"""
    d, train = case["d_k"], case["train"]
    options = {
        "hidden_dim": case["H"],
        "num_heads": case["nh"],
        "dim_feedforward": case["F"],
        "dim_k": d,
        "dim_v": case["d_v"],
        "dim_q": d,
        "max_length": case["max_length"],
    }
    ref = reference("a2_seq2seq.transformer")
    torch.manual_seed(case["seed"])
    mine = _mode(
        tr.TransformerTranslator(case["V_src"], case["V_tgt"], "cpu", **options).double(), train
    )
    what = (
        f"TransformerTranslator(V_src={case['V_src']}, V_tgt={case['V_tgt']}, "
        + ", ".join(f"{k}={v}" for k, v in options.items())
        + f") in {_named(train)} mode"
    )
    twin = _mode(
        twin_of(
            mine,
            lambda: ref.TransformerTranslator(case["V_src"], case["V_tgt"], "cpu", **options),
            what,
        ),
        train,
    )
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["B"], case["T"], case["H"], generator=g, dtype=torch.float64)
    args = {
        "forward": (case["inputs"], case["padding_mask"]),
        "embed": (case["inputs"],),
        "multi_head_attention": (x, case["padding_mask"]),
        "feedforward_layer": (x,),
        "final_layer": (x,),
    }[method]
    compare_call(
        mine,
        twin,
        args,
        what=f"{what}: {method}",
        method=None if method == "forward" else method,
        seed=case["seed"],
        hint="the formula of the method's docstring, every layer on the way from input to output",
    )
