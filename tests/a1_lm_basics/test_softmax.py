"""H1.1 — stable softmax, cross-entropy and its gradient.

Oracles: ``torch.softmax`` / ``torch.nn.functional.cross_entropy`` and autograd, in float64, plus
a centred finite difference of the oracle loss.
"""

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close, assert_unchanged, numerical_gradient, snapshot
from hypothesis import given
from strategies import logits_and_targets, tensor_and_dim

from grader.testprocess.deliverables import deliverable, mutable

sm = deliverable("a1_lm_basics.softmax")

ROWS = {
    "[1, 2]": [[1.0, 2.0]],
    "[1001, 1002] (exp overflows without the max shift)": [[1001.0, 1002.0]],
    "[-1001, -1002] (exp underflows to 0/0 without it)": [[-1001.0, -1002.0]],
    "three rows at once": [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-5.0, 10.0, 2.5]],
}


@pytest.mark.points(3)
@pytest.mark.number("1.1")
def test_softmax_rows(check):
    """softmax of the handout's rows, including [1001, 1002] and [-1001, -1002]"""
    for label, rows in ROWS.items():
        with check(label):
            x = torch.tensor(rows, dtype=torch.float64)
            assert_close(sm.softmax(x), torch.softmax(x, dim=-1), what=f"softmax({rows})")
    with check("float32 input stays float32"):
        x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float32)
        assert_close(sm.softmax(x), torch.softmax(x, dim=-1), what="softmax of a float32 row")
    with check("the input is left unchanged (and the rows right)"):
        x = torch.tensor(ROWS["three rows at once"], dtype=torch.float64)
        before = snapshot(x)
        got = sm.softmax(mutable(x))  # changes to x come back: there must be none
        assert_close(got, torch.softmax(before, dim=-1), what="softmax of three rows")
        assert_unchanged(
            x,
            before,
            what="softmax's x",
            hint="x - max makes a new tensor; x -= max (or x.sub_) overwrites the caller's",
        )


@pytest.mark.points(2)
@pytest.mark.number("1.2")
@given(case=tensor_and_dim())
def test_softmax_any_shape_and_dim(case):
    """softmax agrees with torch.softmax over drawn shapes, dims and values up to ±800"""
    x, dim = case
    assert_close(
        sm.softmax(x, dim=dim),
        torch.softmax(x, dim=dim),
        what=f"softmax(x, dim={dim}) for x of shape {tuple(x.shape)}",
        hint="normalise along the dim argument, not always the last one",
    )


@pytest.mark.points(2)
@pytest.mark.number("1.3")
def test_cross_entropy_values(check):
    """cross-entropy equals torch.nn.functional.cross_entropy (mean over the batch)"""
    cases = {
        "two classes": ([[1.0, 2.0]], [1]),
        "large logits": ([[1001.0, 1002.0], [-1001.0, -1002.0]], [0, 1]),
        "batch of three": ([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-5.0, 10.0, 2.5]], [2, 0, 1]),
    }
    for label, (rows, targets) in cases.items():
        with check(label):
            logits = torch.tensor(rows, dtype=torch.float64)
            y = torch.tensor(targets)
            assert_close(
                sm.cross_entropy(logits, y),
                F.cross_entropy(logits, y),
                what=f"cross_entropy({rows}, {targets})",
            )
    with check("the logits are left unchanged (and the loss right)"):
        logits = torch.tensor(cases["batch of three"][0], dtype=torch.float64)
        before = snapshot(logits)
        y = torch.tensor([2, 0, 1])
        got = sm.cross_entropy(mutable(logits), y)
        assert_close(got, F.cross_entropy(before, y), what="cross_entropy of a batch of three")
        assert_unchanged(
            logits,
            before,
            what="cross_entropy's logits",
            hint="logits - max makes a new tensor; an in-place shift overwrites the caller's",
        )


@pytest.mark.points(2)
@pytest.mark.number("1.4")
@given(case=logits_and_targets())
def test_cross_entropy_drawn(case):
    """cross-entropy agrees with PyTorch over drawn batches and vocabularies"""
    logits, targets = case
    assert_close(
        sm.cross_entropy(logits, targets),
        F.cross_entropy(logits, targets),
        what=f"cross_entropy of logits {tuple(logits.shape)}",
    )


@pytest.mark.points(2)
@pytest.mark.number("1.5")
@given(case=logits_and_targets())
def test_gradient_matches_autograd(case):
    """∂CE/∂logits = (softmax - onehot) / B, checked against autograd in float64"""
    logits, targets = case
    logits = logits.clone().requires_grad_(True)
    F.cross_entropy(logits, targets).backward()
    assert_close(
        sm.cross_entropy_backward(logits.detach(), targets),
        logits.grad,
        what=f"cross_entropy_backward for logits {tuple(logits.shape)}",
    )


@pytest.mark.points(1)
@pytest.mark.number("1.6")
def test_gradient_matches_finite_difference():
    """the gradient agrees with a centred finite difference of the loss (float64)"""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, generator=gen, dtype=torch.float64) * 3
    targets = torch.tensor([0, 4, 2, 2])
    numeric = numerical_gradient(lambda z: F.cross_entropy(z, targets), logits)
    assert_close(
        sm.cross_entropy_backward(logits, targets),
        numeric,
        what="cross_entropy_backward vs a centred finite difference",
        rtol=1e-6,
        atol=1e-9,
        why="finite differences with eps=1e-6 carry ~1e-10 absolute error",
    )
