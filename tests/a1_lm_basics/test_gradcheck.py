"""H1.2 — a centred finite-difference gradient checker. Oracle: autograd in float64."""

import pytest
import torch
from compare import assert_close, assert_equal

from grader.deliverables import deliverable, mutable

gc = deliverable("a1_lm_basics.gradcheck")

FUNCTIONS = {
    "sum(x³)": lambda x: (x**3).sum(),
    "sum(sin(x) · exp(x))": lambda x: (torch.sin(x) * torch.exp(x)).sum(),
    "logsumexp(x)": lambda x: torch.logsumexp(x.reshape(-1), dim=0),
}


def _x() -> torch.Tensor:
    return torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _autograd(f, x):
    x = x.clone().requires_grad_(True)
    f(x).backward()
    return x.grad


@pytest.mark.points(2)
@pytest.mark.number("2.1")
def test_numerical_gradient_matches_autograd(check):
    """numerical_gradient agrees with autograd on smooth functions (float64)"""
    for label, f in FUNCTIONS.items():
        with check(label):
            x = _x()
            before = x.clone()
            assert_close(
                gc.numerical_gradient(f, mutable(x)),  # changes to x come back: it must not change
                lambda f=f, x=before: _autograd(f, x),
                what=f"numerical gradient of {label}",
                rtol=1e-6,
                atol=1e-8,
                why="a centred difference with h=1e-6 is accurate to ~1e-9 on these functions",
                hint="use (f(x+h) - f(x-h)) / 2h — the one-sided difference is only O(h) accurate",
            )
            assert_close(x, before, what="x after numerical_gradient (must be left unchanged)",
                         hint="restore each element after moving it")  # fmt: skip


@pytest.mark.points(1)
@pytest.mark.number("2.2")
def test_relative_error(check):
    """relative_error is max |a - b| / (|a| + |b|)"""
    a = torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)
    b = torch.tensor([1.1, -2.0, 0.0], dtype=torch.float64)
    with check("[1, -2, 0] vs [1.1, -2, 0]"):
        assert_close(torch.tensor(gc.relative_error(a, b), dtype=torch.float64),
                     lambda: (a - b).abs().max() / 2.1, what="relative_error(a, b)",
                     hint="divide |a - b| by |a| + |b| elementwise; zeros over zeros count as 0")  # fmt: skip
    with check("values of opposite signs: [0.5] vs [-0.5] is 1"):
        pos = torch.tensor([0.5], dtype=torch.float64)
        assert_close(torch.tensor(gc.relative_error(pos, -pos), dtype=torch.float64),
                     torch.tensor(1.0, dtype=torch.float64), what="relative_error([0.5], [-0.5])",
                     hint="the denominator is |a| + |b|, not |a + b|")  # fmt: skip
    with check("sign does not matter"):
        assert_close(torch.tensor(gc.relative_error(-a, -b), dtype=torch.float64),
                     lambda: (a - b).abs().max() / 2.1, what="relative_error(-a, -b)",
                     hint="take absolute values of a and b in the denominator")  # fmt: skip


@pytest.mark.points(2)
@pytest.mark.number("2.3")
def test_gradient_check_tells_right_from_wrong(check):
    """gradient_check accepts the true gradient and rejects a wrong one"""
    f = FUNCTIONS["sum(x³)"]
    x = _x()
    right = 3 * x**2
    with check("the true gradient passes"):
        ok, err = gc.gradient_check(f, x, right)
        assert_equal(bool(ok), True, what=f"gradient_check on the true gradient (error {err:.2e})")
    with check("a wrong gradient (2x²) fails"):
        ok, err = gc.gradient_check(f, x, 2 * x**2)
        assert_equal(bool(ok), False, what=f"gradient_check on 2x² (error {err:.2e})",
                     hint="compare the relative error with the tolerance")  # fmt: skip
