"""H3.3 — an LSTM from ``nn.Parameter``s.

Oracle: ``torch.nn.LSTM`` / ``torch.nn.LSTMCell`` (float64) holding the same numbers. PyTorch
stacks the four gates in the order i, f, g, o and stores weights (out, in), so
``weight_ih_l0 = cat([W_ii, W_if, W_ig, W_io], dim=1).T``; the biases stack the same way.
"""

import pytest
import torch
from compare import assert_close, assert_equal, assert_unchanged, snapshot
from hypothesis import given
from strategies import recurrent_cases

from grader.testprocess.deliverables import deliverable, mutable

lstm = deliverable("a2_seq2seq.lstm")
GATES = "ifgo"  # torch.nn.LSTM's order: input, forget, cell (g), output
HINT = (
    "i, f, o = σ(x W_i* + b_i* + h W_h* + b_h*) each with its own gate's weights, "
    "g = tanh(...); c_t = f ∘ c_{t-1} + i ∘ g; h_t = o ∘ tanh(c_t)"
)


def _model(weights, case):
    """The LSTM with the test's weights, and those weights (the oracles' numbers)."""
    return weights.filled(lstm.LSTM(case["C"], case["H"]), case["seed"])


def _stacked(w) -> dict[str, torch.Tensor]:
    """The 16 parameters ``w`` in torch.nn.LSTM's layout."""

    def cat(prefix, dim):
        return torch.cat([getattr(w, f"{prefix}{k}") for k in GATES], dim=dim)

    return {
        "weight_ih": cat("W_i", 1).T,
        "weight_hh": cat("W_h", 1).T,
        "bias_ih": cat("b_i", 0),
        "bias_hh": cat("b_h", 0),
    }


def _torch_lstm(w, C, H):
    ref = torch.nn.LSTM(C, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, value in _stacked(w).items():
            getattr(ref, f"{name}_l0").copy_(value)
    return ref


def _sizes(case) -> str:
    return f"x of shape {tuple(case['x'].shape)}, H={case['H']}"


@pytest.mark.points(1)
@pytest.mark.number("3.1")
def test_parameters(check, weights):
    """LSTM(C, H) holds W_i*, W_h*, b_i*, b_h* for each gate i, f, g, o, drawn by init_hidden"""
    C, H = 3, 4
    expected = sorted(
        [name, shape]
        for k in GATES
        for name, shape in (
            (f"W_i{k}", [C, H]),
            (f"W_h{k}", [H, H]),
            (f"b_i{k}", [H]),
            (f"b_h{k}", [H]),
        )
    )
    with check("names and shapes"):
        assert_equal(
            weights.layout(lstm.LSTM(C, H)),
            expected,
            what="LSTM(3, 4)'s parameters [name, shape]",
            hint="nn.Parameter attributes W_ik (C, H), W_hk (H, H), b_ik (H,), b_hk (H,) "
            "for k in i, f, g, o — x multiplies from the left: x @ W_ii",
        )
    with check("the constructor draws them with init_hidden: uniform in ±1/√H"):
        C, H = 8, 16
        torch.manual_seed(0)  # the draw happens where your code runs, from this seed
        model = lstm.LSTM(C, H)
        values = torch.cat([p.detach().reshape(-1).double() for _, p in model.named_parameters()])
        bound = 1 / H**0.5
        # 4·(C·H + H·H + 2H) = 1,664 draws: a uniform's std is bound/√3 ± 2% (~1e-9 to miss 10%).
        got = torch.stack([values.abs().max(), values.std()])
        want = torch.tensor([bound, bound / 3**0.5], dtype=torch.float64)
        assert_close(
            got,
            want,
            what=f"[largest |value|, std] of LSTM({C}, {H})'s 1,664 parameters",
            rtol=0.1,
            atol=0.0,
            why="uniform draws: the largest is within 0.5% of the bound, the std within "
            "~2% of bound/√3",
            hint="call self.init_hidden() at the end of __init__: torch.empty leaves the "
            "parameters uninitialised (zeros or garbage)",
        )


@pytest.mark.points(3)
@pytest.mark.number("3.2")
@given(case=recurrent_cases(init_states=False))
def test_matches_torch_lstm(weights, case):
    """from zero states, the final (h_t, c_t) equal torch.nn.LSTM's with the weights copied"""
    model, w = _model(weights, case)
    with torch.no_grad():
        h_t, c_t = model(case["x"])

    def expected():
        with torch.no_grad():
            return _torch_lstm(w, case["C"], case["H"])(case["x"])[1]  # (h_n, c_n)

    assert_close(h_t, lambda: expected()[0][0], what=f"h_t for {_sizes(case)}", hint=HINT)
    assert_close(c_t, lambda: expected()[1][0], what=f"c_t for {_sizes(case)}", hint=HINT)


@pytest.mark.points(2)
@pytest.mark.number("3.3")
@given(case=recurrent_cases(init_states=True))
def test_initial_states_match_lstmcell(weights, case):
    """from given (h_0, c_0), the final states equal torch.nn.LSTMCell stepped over the sequence"""
    model, w = _model(weights, case)
    with torch.no_grad():
        h_t, c_t = model(case["x"], (case["h0"], case["c0"]))

    def expected():
        cell = torch.nn.LSTMCell(case["C"], case["H"], dtype=torch.float64)
        state = (case["h0"], case["c0"])
        with torch.no_grad():
            for name, value in _stacked(w).items():
                getattr(cell, name).copy_(value)
            for t in range(case["T"]):
                state = cell(case["x"][:, t], state)
        return state

    hint = f"start from init_states = (h_0, c_0), not zeros. {HINT}"
    assert_close(
        h_t, lambda: expected()[0], what=f"h_t from (h_0, c_0) for {_sizes(case)}", hint=hint
    )
    assert_close(
        c_t, lambda: expected()[1], what=f"c_t from (h_0, c_0) for {_sizes(case)}", hint=hint
    )


@pytest.mark.points(1)
@pytest.mark.number("3.4")
@given(case=recurrent_cases(init_states=True))
def test_gradients_match_torch_lstm(weights, case):
    """gradients of the final states reach x and the forget gate's weights as in torch.nn.LSTM"""
    H = case["H"]
    model, w = _model(weights, case)
    x = case["x"].clone().requires_grad_(True)
    h_t, c_t = model(x, (case["h0"], case["c0"]))
    (h_t.sum() + 0.5 * c_t.sum()).backward()

    def expected():
        ref = _torch_lstm(w, case["C"], H)
        x_ref = case["x"].clone().requires_grad_(True)
        _, (h_n, c_n) = ref(x_ref, (case["h0"][None], case["c0"][None]))
        (h_n.sum() + 0.5 * c_n.sum()).backward()
        return x_ref.grad, ref.weight_ih_l0.grad[H : 2 * H].T  # the forget gate's rows

    assert_close(
        x.grad,
        lambda: expected()[0],
        what=f"∂(Σh_t + ½Σc_t)/∂x for {_sizes(case)}",
        hint=f"compute with tensor operations only (no .item(), .data or .detach()). {HINT}",
    )
    assert_close(
        model.W_if.grad,
        lambda: expected()[1],
        what=f"∂(Σh_t + ½Σc_t)/∂W_if for {_sizes(case)}",
        hint=f"the forget gate must use W_if and W_hf. {HINT}",
    )


@pytest.mark.points(1)
@pytest.mark.number("3.5")
def test_arguments_left_unchanged(weights):
    """forward leaves x and init_states as it found them"""
    case = {"B": 2, "T": 3, "C": 3, "H": 4, "seed": 5}
    model, _ = _model(weights, case)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 3, generator=g, dtype=torch.float64)
    h0, c0 = (torch.randn(2, 4, generator=g, dtype=torch.float64) for _ in range(2))
    before = snapshot((x, h0, c0))
    with torch.no_grad():
        model(mutable(x), mutable((h0, c0)))
    assert_unchanged(
        (x, h0, c0),
        before,
        what="LSTM.forward's x, h_0 and c_0 (x (2, 3, 3), H=4)",
        hint="compute each new state as a new tensor (c_t = f_t * c_t + i_t * g_t): "
        "c_t.mul_(...) or h_t[:] = ... writes into the caller's init_states",
    )
