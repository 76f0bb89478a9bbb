"""H3.1 — backpropagation through time by hand: one tanh step, then the whole sequence.

Oracles: the same RNN in torch float64 with autograd, and the kit's centred finite difference
(``compare.numerical_gradient``) on the handout's 4-step case.
"""

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close, call_leaving_unchanged, numerical_gradient
from hypothesis import given
from strategies import bptt_cases, rnn_step_cases

from grader.testprocess.deliverables import deliverable

bptt = deliverable("a2_seq2seq.bptt")
STEP = ("x", "prev_h", "U", "W", "b")
PARAMS = ("U", "W", "V", "b", "c", "h0")  # the order rnn_backward returns their gradients


def _step(x, prev_h, U, W, b):
    return torch.tanh(x @ U.T + prev_h @ W.T + b)


def _loss(x, y, h0, U, W, V, b, c):
    """L = 1/B Σ_b Σ_t CE(softmax(V h_t + c), y_t), the oracle's forward."""
    B, T, _ = x.shape
    h, loss = h0, 0.0
    for t in range(T):
        h = _step(x[:, t], h, U, W, b)
        loss = loss + F.cross_entropy(h @ V.T + c, y[:, t], reduction="sum")
    return loss / B


def _autograd(fn, case, names, **upstream):
    leaves = {k: v.clone().requires_grad_(k in names) for k, v in case.items()}
    out = fn(**leaves)
    out.backward(*upstream.values())
    return [leaves[k].grad for k in names]


def _describe(case) -> str:
    B, T, D = case["x"].shape
    return f"B={B}, T={T}, D={D}, H={case['h0'].shape[1]}, V={case['V'].shape[0]}"


@pytest.mark.points(1)
@pytest.mark.number("1.1")
@given(case=rnn_step_cases())
def test_step_forward(case):
    """rnn_step_forward gives next_h = tanh(x Uᵀ + prev_h Wᵀ + b)"""
    inputs = {k: case[k] for k in STEP}
    next_h, _ = bptt.rnn_step_forward(**inputs)
    assert_close(
        next_h,
        lambda: _step(**inputs),
        what=f"next_h for x {tuple(case['x'].shape)}, prev_h {tuple(case['prev_h'].shape)}",
        hint="a = x @ U.T + prev_h @ W.T + b, then torch.tanh(a)",
    )


STEP_HINTS = {
    "x": "dx = da @ U with da = dnext_h * (1 - next_h²)",
    "prev_h": "dprev_h = da @ W — the gradient that flows to the previous step",
    "U": "dU = daᵀ x (H, D)",
    "W": "dW = daᵀ prev_h (H, H)",
    "b": "db = da summed over the batch",
}


@pytest.mark.points(2)
@pytest.mark.number("1.2")
@given(case=rnn_step_cases())
def test_step_backward_matches_autograd(case):
    """rnn_step_backward's five gradients equal autograd's (float64)"""
    inputs = {k: case[k] for k in STEP}
    _, cache = bptt.rnn_step_forward(**inputs)
    grads = bptt.rnn_step_backward(case["dnext_h"], cache)
    shape = f"x {tuple(case['x'].shape)}, prev_h {tuple(case['prev_h'].shape)}"
    for i, name in enumerate(STEP):
        assert_close(
            grads[i],
            lambda i=i: _autograd(_step, inputs, STEP, g=case["dnext_h"])[i],
            what=f"d{name} of one step for {shape}",
            hint=f"{STEP_HINTS[name]}. tanh' is 1 - tanh² of the *output* next_h, not "
            "of the pre-activation a",
        )


@pytest.mark.points(1)
@pytest.mark.number("1.3")
@given(case=bptt_cases())
def test_forward_loss(case):
    """rnn_forward's loss is Σ_t CE(softmax(V h_t + c), y_t), averaged over the batch"""
    loss, _ = bptt.rnn_forward(**case)
    assert_close(
        loss,
        lambda: _loss(**case),
        what=f"the loss for {_describe(case)}",
        hint="h_t = tanh(x_t Uᵀ + h_{t-1} Wᵀ + b) from h_0; o_t = h_t Vᵀ + c; add the "
        "cross-entropies of every step and divide by B only",
    )


HINTS = {
    "U": "dU sums daᵀ x_t over all steps",
    "W": "W is shared by every step: dW must accumulate (+=) daᵀ h_{t-1} over all T steps",
    "V": "dV sums doᵀ h_t over the steps, with do = (ŷ_t - onehot(y_t)) / B",
    "b": "db sums da over the batch and the steps",
    "c": "dc sums do over the batch and the steps",
    "h0": "dh0 is the dprev_h of the first step; each step's dh is do V plus the dprev_h "
    "carried back from the step after it",
}


def _check_backward(case, names):
    _, cache = bptt.rnn_forward(**case)
    grads = dict(zip(PARAMS, bptt.rnn_backward(cache), strict=True))
    for name in names:
        i = PARAMS.index(name)
        assert_close(
            grads[name],
            lambda i=i: _autograd(_loss, case, PARAMS)[i],
            what=f"d{name} for {_describe(case)}",
            hint=HINTS[name],
        )


@pytest.mark.points(1)
@pytest.mark.number("1.4")
@given(case=bptt_cases())
def test_backward_output_layer(case):
    """rnn_backward's dV and dc equal autograd's (float64)"""
    _check_backward(case, ("V", "c"))


@pytest.mark.points(2)
@pytest.mark.number("1.5")
@given(case=bptt_cases())
def test_backward_through_time(case):
    """rnn_backward's dU, dW and db equal autograd's for any sequence length (float64)"""
    _check_backward(case, ("U", "W", "b"))


@pytest.mark.points(1)
@pytest.mark.number("1.6")
@given(case=bptt_cases())
def test_backward_initial_state(case):
    """rnn_backward's dh0 equals autograd's (float64)"""
    _check_backward(case, ("h0",))


def _handout_case() -> dict[str, torch.Tensor]:
    """The handout's 4-step RNN: one sequence, D = 3, H = 4, V = 5."""
    g = torch.Generator().manual_seed(4)

    def t(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * 0.8

    return {
        "x": t(1, 4, 3),
        "y": torch.tensor([[1, 4, 0, 2]]),
        "h0": t(1, 4),
        "U": t(4, 3),
        "W": t(4, 4),
        "V": t(5, 4),
        "b": t(4),
        "c": t(5),
    }


@pytest.mark.points(2)
@pytest.mark.number("1.7")
def test_backward_matches_finite_differences(check):
    """on the handout's T = 4 RNN every gradient agrees with a centred finite difference"""
    case = _handout_case()
    _, cache = bptt.rnn_forward(**case)
    grads = bptt.rnn_backward(cache)
    for i, name in enumerate(PARAMS):
        with check(f"d{name}"):

            def loss_of(value, name=name):
                return _loss(**{**case, name: value})

            assert_close(
                grads[i],
                lambda name=name, f=loss_of: numerical_gradient(f, case[name]),
                what=f"d{name} vs a centred finite difference (T=4, B=1, D=3, H=4, V=5)",
                rtol=1e-6,
                atol=1e-9,
                why="finite differences with h=1e-6 carry ~1e-10 error",
                hint=HINTS[name],
            )


IN_PLACE_HINT = (
    "work on new tensors (da = dnext_h * (1 - next_h**2), do = (y_hat - onehot) / B): "
    "an in-place operation (*=, -=, mul_, sub_, x[...] = ...) on an argument or on the "
    "cache changes the caller's tensors"
)


@pytest.mark.points(1)
@pytest.mark.number("1.8")
def test_arguments_left_unchanged(check):
    """the four functions leave their arguments, and the cache, as they found them"""
    case = _handout_case()
    step = {
        "x": case["x"][:, 0],
        "prev_h": case["h0"],
        "U": case["U"],
        "W": case["W"],
        "b": case["b"],
    }
    with check("rnn_step_forward"):
        call_leaving_unchanged(
            bptt.rnn_step_forward, **step, what="rnn_step_forward's arguments", hint=IN_PLACE_HINT
        )
    with check("rnn_step_backward: dnext_h and the cache"):
        _, cache = bptt.rnn_step_forward(**step)
        call_leaving_unchanged(
            bptt.rnn_step_backward,
            torch.ones_like(case["h0"]),
            cache,
            what="rnn_step_backward's dnext_h and cache",
            hint=IN_PLACE_HINT,
        )
    with check("rnn_forward"):
        call_leaving_unchanged(
            bptt.rnn_forward, **case, what="rnn_forward's arguments", hint=IN_PLACE_HINT
        )
    with check("rnn_backward: the cache"):
        _, cache = bptt.rnn_forward(**case)
        call_leaving_unchanged(
            bptt.rnn_backward, cache, what="rnn_backward's cache", hint=IN_PLACE_HINT
        )
