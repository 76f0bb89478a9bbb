"""Gradient checking by centred finite differences (handout H1.2).

    ∂f/∂x_i ≈ (f(x + h e_i) - f(x - h e_i)) / 2h

The truncation error is O(h²) and the rounding error O(ε / h) with ε ≈ 1e-16 in float64, so
h = 1e-6 gives an absolute error of about 1e-10 on smooth functions of order one: enough to tell a
right analytic gradient (error ~1e-10) from a wrong one (~1e-1).

The comparison (CS224n's criterion) divides each difference by max(1, |a_i|, |b_i|): a relative error
where the gradient is large and an absolute one where it is below 1. Dividing by |a_i| + |b_i| alone
rejects correct gradients with near-zero entries — an entry of 7.8e-7 with the finite difference's
~1e-10 absolute error is already 1e-5 "relative" — while a wrong gradient still differs by far more
than the tolerance in either scale.
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
    """The largest elementwise error |a_i - b_i| / max(1, |a_i|, |b_i|).

    Inputs:
        a, b: tensors of the same shape (any), float64.
    Returns:
        A Python float ≥ 0: relative where an entry is above 1 in size, absolute below.
    """
    # BEGIN SOLUTION
    # TODO: elementwise |a - b| over the largest of 1, |a| and |b|; return the largest value.
    scale = torch.maximum(a.abs(), b.abs()).clamp_min(1.0)
    return float(((a - b).abs() / scale).max())
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
