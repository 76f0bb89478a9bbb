"""H1.2 — a centred finite-difference gradient checker. Oracle: autograd in float64."""

from functools import partial

import pytest
import torch
from compare import assert_close, assert_equal, assert_unchanged, snapshot

from grader.testprocess.deliverables import deliverable, mutable

gc = deliverable("a1_lm_basics.gradcheck")

FUNCTIONS = {
    "sum(x³)": lambda x: (x**3).sum(),
    "sum(sin(x) · exp(x))": lambda x: (torch.sin(x) * torch.exp(x)).sum(),
    "logsumexp(x)": lambda x: torch.logsumexp(x.reshape(-1), dim=0),
}


def _x() -> torch.Tensor:
    return torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _quartic(x):
    """(Σx)⁴: every entry coupled to every other, so a perturbation left in place shows."""
    return x.sum() ** 4


def _quartic_centred(x, h):
    """The exact centred difference of (Σx)⁴ with step h: ((s+h)⁴ - (s-h)⁴) / 2h = 4s³ + 4sh²."""
    s = x.sum()
    return torch.full_like(x, float(4 * s**3 + 4 * s * h**2))


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
            before = snapshot(x)
            assert_close(
                gc.numerical_gradient(f, mutable(x)),  # changes to x come back: it must not change
                lambda f=f, x=before: _autograd(f, x),
                what=f"numerical gradient of {label}",
                rtol=1e-6,
                atol=1e-8,
                why="a centred difference with h=1e-6 is accurate to ~1e-9 on these functions",
                hint="use (f(x+h) - f(x-h)) / 2h — the one-sided difference is only O(h) accurate",
            )
            assert_unchanged(
                x,
                before,
                what="numerical_gradient's x",
                rtol=1e-12,
                atol=1e-12,
                why="restoring by arithmetic (x + h - 2h + h) may round in the last bits",
                hint="restore each element after moving it",
            )
    with check("uses the step h it is given, and restores each element (h = 0.01 on (Σx)⁴)"):
        x = _x()
        assert_close(
            gc.numerical_gradient(_quartic, x, h=0.01),
            lambda x=x: _quartic_centred(x, 0.01),
            what="numerical gradient of (Σx)⁴ with h = 0.01",
            rtol=1e-8,
            atol=1e-8,
            why="the exact centred difference 4s³ + 4sh²; rounding is ~1e-12 at this h",
            hint="move element i by +h and -h with the h argument (not a fixed step), and put it "
            "back before moving the next one: (Σx)⁴ couples every entry",
        )


@pytest.mark.points(1)
@pytest.mark.number("2.2")
def test_relative_error(check):
    """relative_error is max |a - b| / max(1, |a|, |b|), elementwise"""
    a = torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)
    b = torch.tensor([1.1, -2.0, 0.0], dtype=torch.float64)
    t = partial(torch.tensor, dtype=torch.float64)
    cases = {
        "[1, -2, 0] vs [1.1, -2, 0]: 0.1 / 1.1": (
            a,
            b,
            0.1 / 1.1,
            "divide |a - b| by the larger of |a| and |b| elementwise",
        ),
        "[-3] vs [1]: 4 / 3": (
            t([-3.0]),
            t([1.0]),
            4 / 3,
            "take absolute values before the larger one: max(|a|, |b|), not |max(a, b)|",
        ),
        "[0.5] vs [-0.5]: below 1 the error is absolute, 1": (
            t([0.5]),
            t([-0.5]),
            1.0,
            "the denominator is max(1, |a|, |b|): below 1 it is 1",
        ),
        "[1e-7] vs [2e-7]: 1e-7 (absolute), not 1/3": (
            t([1e-7]),
            t([2e-7]),
            1e-7,
            "floor the denominator at 1, else near-zero entries of a right gradient fail",
        ),
        "[5, 0.01] vs [5, 0.5]: the largest error, 0.49": (
            t([5.0, 0.01]),
            t([5.0, 0.5]),
            0.49,
            "take the largest elementwise error, not the mean",
        ),
    }
    for label, (u, v, want, hint) in cases.items():
        with check(label):
            assert_close(
                torch.tensor(gc.relative_error(u, v), dtype=torch.float64),
                torch.tensor(want, dtype=torch.float64),
                what="relative_error(a, b)",
                rtol=1e-9,
                atol=0.0,
                why="one division in float64",
                hint=hint,
            )


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
        assert_equal(
            bool(ok),
            False,
            what=f"gradient_check on 2x² (error {err:.2e})",
            hint="compare the relative error with the tolerance",
        )
    with check("passes h on: 3x² + h² is the exact centred difference with h = 0.1"):
        ok, err = gc.gradient_check(f, x, right + 0.01, h=0.1, tol=1e-8)
        assert_equal(
            bool(ok),
            True,
            what=f"gradient_check(..., h=0.1, tol=1e-8) on 3x² + 0.01 (error {err:.2e})",
            hint="pass h on to numerical_gradient",
        )
    with check("the bound is inclusive: an error of exactly tol passes (0 at tol=0)"):
        # A constant function: the centred difference is exactly 0, and so is the gradient.
        ok, err = gc.gradient_check(lambda z: (z * 0).sum(), x, torch.zeros_like(x), tol=0.0)
        assert_equal(
            bool(ok),
            True,
            what=f"gradient_check of a constant function at tol=0 (error {err:.2e})",
            hint="the check passes when relative_error <= tol, as the docstring says (not <)",
        )
    with check("honours tol: a 1e-4 error passes at tol=1e-3 and fails at the default 1e-5"):
        off = right + 1e-4
        ok_loose, err = gc.gradient_check(f, x, off, tol=1e-3)
        ok_strict, _ = gc.gradient_check(f, x, off)
        assert_equal(
            (bool(ok_loose), bool(ok_strict)),
            (True, False),
            what=f"gradient_check at tol=1e-3 and at the default (error {err:.2e})",
            hint="compare the error with the tol argument, default 1e-5",
        )


def _sigmoid_network_seed_19():
    """The case that rejected a right gradient under |a - b| / (|a| + |b|): ∂J/∂x has an entry of
    7.8e-7, where the finite difference's ~1e-10 absolute error is 1.1e-5 relative."""
    g = torch.Generator().manual_seed(19)
    x = torch.randn(20, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=g)
    W1, b1 = (
        torch.randn(2, 4, generator=g, dtype=torch.float64),
        torch.randn(4, generator=g, dtype=torch.float64),
    )
    W2, b2 = (
        torch.randn(4, 3, generator=g, dtype=torch.float64),
        torch.randn(3, generator=g, dtype=torch.float64),
    )
    return (lambda x: torch.nn.functional.cross_entropy(torch.sigmoid(x @ W1 + b1) @ W2 + b2, y)), x


@pytest.mark.points(1)
@pytest.mark.number("2.4")
def test_gradient_check_accepts_near_zero_entries(check):
    """gradient_check accepts a right gradient with near-zero entries (sigmoid network, seed 19)"""
    loss, x = _sigmoid_network_seed_19()
    right = _autograd(loss, x)
    with check(f"∂J/∂x (smallest entry {float(right.abs().min()):.1e}) passes"):
        ok, err = gc.gradient_check(loss, x, right)
        assert_equal(
            bool(ok),
            True,
            what=f"gradient_check on autograd's ∂J/∂x (error {err:.2e})",
            hint="divide by max(1, |a|, |b|): |a| + |b| alone makes the finite difference's "
            "1e-10 absolute error look large next to an entry of 1e-6",
        )
    with check("the same gradient with one entry off by 1e-3 fails"):
        wrong = right.clone()
        wrong[0, 0] += 1e-3
        ok, err = gc.gradient_check(loss, x, wrong)
        assert_equal(
            bool(ok),
            False,
            what=f"gradient_check on a gradient off by 1e-3 (error {err:.2e})",
            hint="the floor is 1, not larger: an absolute error of 1e-3 must fail",
        )
