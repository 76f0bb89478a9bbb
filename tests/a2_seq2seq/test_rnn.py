"""H3.2 — the vanilla RNN unit from ``nn.Linear`` layers.

Oracles: the formula with ``F.linear`` on the unit's own weights, and ``torch.nn.RNN`` holding
the same numbers (``i2h``'s weight is ``[W_ih | W_hh]`` side by side) for a whole sequence.
"""

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close, assert_equal, assert_unchanged, snapshot
from hypothesis import given
from strategies import recurrent_cases

from grader.testprocess.deliverables import deliverable, mutable

rnn = deliverable("a2_seq2seq.rnn")


def _model(weights, case):
    """The unit with the test's weights, and those weights (the oracles' numbers)."""
    return weights.filled(rnn.VanillaRNN(case["C"], case["H"], case["V"]), case["seed"])


def _sizes(case) -> str:
    return f"B={case['B']}, C={case['C']}, H={case['H']}, V={case['V']}"


@pytest.mark.points(1)
@pytest.mark.number("2.1")
def test_layers(weights):
    """VanillaRNN(C, H, V) holds i2h (C + H → H) and i2o (C + H → V)"""
    model = rnn.VanillaRNN(3, 4, 5)
    assert_equal(
        weights.layout(model),
        [["i2h.bias", [4]], ["i2h.weight", [4, 7]], ["i2o.bias", [5]], ["i2o.weight", [5, 7]]],
        what="VanillaRNN(3, 4, 5)'s parameters [name, shape]",
        hint="two nn.Linear layers named i2h and i2o, each reading the input and the "
        "hidden state side by side (C + H features)",
    )


@pytest.mark.points(2)
@pytest.mark.number("2.2")
@given(case=recurrent_cases(init_states=True))
def test_step(weights, case):
    """one step: hidden = tanh(i2h([x ; h])), output = log_softmax(i2o([x ; h]))"""
    model, w = _model(weights, case)
    x, h = case["x"][:, 0], case["h0"]
    with torch.no_grad():
        output, hidden = model(x, h)

    def combined():
        return torch.cat((x, h), dim=1)

    assert_close(
        hidden,
        lambda: torch.tanh(F.linear(combined(), w.i2h.weight, w.i2h.bias)),
        what=f"the new hidden state for {_sizes(case)}",
        hint="tanh(i2h(torch.cat((input, hidden), dim=1))) — input first",
    )
    assert_close(
        output,
        lambda: torch.log_softmax(F.linear(combined(), w.i2o.weight, w.i2o.bias), dim=1),
        what=f"the output for {_sizes(case)}",
        hint="log_softmax over the classes of i2o applied to the same concatenation of "
        "input and *previous* hidden state",
    )


def _torch_rnn(w, C, H):
    """torch.nn.RNN holding the unit's weights ``w``: i2h's weight is [W_ih | W_hh] side by side."""
    ref = torch.nn.RNN(C, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(w.i2h.weight[:, :C])
        ref.weight_hh_l0.copy_(w.i2h.weight[:, C:])
        ref.bias_ih_l0.copy_(w.i2h.bias)
        ref.bias_hh_l0.zero_()
    return ref


@pytest.mark.points(1)
@pytest.mark.number("2.3")
@given(case=recurrent_cases(init_states=True))
def test_unrolled_equals_torch_rnn(weights, case):
    """fed back its hidden state for T steps, the unit equals torch.nn.RNN (tanh) with the same weights"""
    model, w = _model(weights, case)
    x, h = case["x"], case["h0"]
    states = []
    with torch.no_grad():
        for t in range(case["T"]):
            _, h = model(x[:, t], h)
            states.append(h)

    def expected():
        with torch.no_grad():
            return _torch_rnn(w, case["C"], case["H"])(x, case["h0"][None])[0]

    assert_close(
        torch.stack(states, dim=1),
        expected,
        what=f"the hidden states of {case['T']} steps for {_sizes(case)}",
        hint="the returned hidden state must be the one the next step reads: "
        "tanh(i2h([x_t ; h_{t-1}]))",
    )


@pytest.mark.points(1)
@pytest.mark.number("2.4")
def test_arguments_left_unchanged(weights):
    """forward leaves its input and hidden tensors as it found them"""
    case = {"B": 2, "C": 3, "H": 4, "V": 5, "seed": 7}
    model, _ = _model(weights, case)
    g = torch.Generator().manual_seed(7)
    x, h = (torch.randn(2, n, generator=g, dtype=torch.float64) for n in (3, 4))
    before = snapshot((x, h))
    with torch.no_grad():
        model(mutable(x), mutable(h))
    assert_unchanged(
        (x, h),
        before,
        what=f"VanillaRNN.forward's input and hidden, {_sizes(case)}",
        hint="return the new hidden state as a new tensor: writing it into the hidden "
        "tensor given (hidden.copy_(...), hidden[:] = ...) changes the caller's "
        "state",
    )
