"""Gradient checking by centred finite differences (handout H1.2).

    ∂f/∂x_i ≈ (f(x + h e_i) - f(x - h e_i)) / 2h

The truncation error is O(h²) and the rounding error O(ε / h) with ε ≈ 1e-16 in float64, so
h = 1e-6 gives about 1e-9 relative accuracy on smooth functions: enough to tell a right analytic
gradient (relative error ~1e-9) from a wrong one (~1e-1).
"""

from collections.abc import Callable

import torch
from torch import Tensor


def numerical_gradient(f: Callable[[Tensor], Tensor], x: Tensor, h: float = 1e-6) -> Tensor:
    """Centred finite-difference gradient of a scalar function.

    Inputs:
        f: maps a tensor shaped like ``x`` to a scalar tensor; must not modify its input.
        x: float64 tensor, any shape. Left unchanged.
        h: the step.
    Returns:
        Tensor shaped like ``x`` (float64): the estimate of ∂f/∂x.
    """
    # BEGIN SOLUTION
    # TODO: for every element i (x.view(-1)), evaluate f at x with element i moved by +h and by
    #       -h, put (f_plus - f_minus) / (2h) at position i, and restore the element.
    if x.dtype != torch.float64:
        raise ValueError("finite differences need float64 (float32 rounding swamps the step)")
    x = x.detach().clone()
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + h
        f_plus = float(f(x))
        flat[i] = old - h
        f_minus = float(f(x))
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * h)
    return grad
    # END SOLUTION


def relative_error(a: Tensor, b: Tensor) -> float:
    """max |a - b| / max(|a| + |b|), with a tiny floor so that two zero tensors give 0."""
    # BEGIN SOLUTION
    # TODO: elementwise |a - b| over (|a| + |b|); the largest value; guard the division by zero.
    return float(((a - b).abs() / (a.abs() + b.abs()).clamp_min(1e-30)).max())
    # END SOLUTION


def gradient_check(
    f: Callable[[Tensor], Tensor], x: Tensor, analytic: Tensor, h: float = 1e-6, tol: float = 1e-5
) -> tuple[bool, float]:
    """Compare an analytic gradient with the numerical one.

    Returns:
        (``relative_error <= tol``, the relative error).
    """
    # BEGIN SOLUTION
    # TODO: numerical_gradient, then relative_error against the analytic gradient.
    err = relative_error(analytic, numerical_gradient(f, x, h))
    return err <= tol, err
    # END SOLUTION
