"""The one place where graded tests compare numbers.

Every graded numeric comparison goes through :func:`assert_close`, so that

- messages are uniform and teach: what was compared, shape/dtype problems first, then where the
  values differ most (index), by how much, what was expected there, and an optional hint;
- tolerances are explicit: dtype defaults of ``torch.testing.assert_close``, or both ``rtol`` and
  ``atol`` with the reason (``why``) — a tolerance without a reason is refused;
- every comparison is recorded in :data:`COMPARISONS` (what, shapes, dtypes, tolerances, verdict),
  the audit trail from which verdicts can later be recomputed outside the student's process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

COMPARISONS: list[dict[str, Any]] = []  # audit trail of the current process, in order


def _fmt_index(flat: int, shape: torch.Size) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return tuple(reversed(index))


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    raise AssertionError(
        f"{what}: expected a torch.Tensor, got {type(value).__name__} ({value!r:.80}). "
        "Return a tensor (no .item(), .tolist() or numpy conversion)."
    )


def _shape_hint(actual: torch.Size, expected: torch.Size) -> str:
    if actual.numel() == expected.numel():
        return " Same number of elements: a transpose, view or reshape is off."
    if len(actual) == len(expected) - 1:
        return " One dimension is missing: a reduction without keepdim=True, or over the wrong dim?"
    if len(actual) == len(expected) + 1:
        return " One dimension too many: a missing reduction or squeeze?"
    return ""


def assert_close(
    actual: Any,
    expected: torch.Tensor,
    *,
    what: str,
    rtol: float | None = None,
    atol: float | None = None,
    why: str | None = None,
    hint: str | None = None,
    check_dtype: bool = True,
) -> None:
    """Assert that a student's ``actual`` equals ``expected`` within tolerance, explaining any miss.

    Args:
        actual: what the student's code returned.
        expected: the oracle's value (a trusted implementation, never a hand-typed number).
        what: the quantity, as the student would recognise it, e.g. ``"softmax(x) for x = [[1, 2]]"``.
        rtol, atol: both or neither; when given, ``why`` says why the defaults do not fit.
        hint: the likely mistake when this comparison fails.
        check_dtype: require the same dtype (the default: functions should keep the input's dtype).
    """
    if (rtol is None) != (atol is None):
        raise ValueError("give both rtol and atol, or neither")
    if rtol is not None and not why:
        raise ValueError(f"{what}: a non-default tolerance needs its reason in why=")
    record = {"what": what, "rtol": rtol, "atol": atol, "why": why, "passed": False}
    COMPARISONS.append(record)
    tail = f"\nHint: {hint}" if hint else ""

    actual = _as_tensor(actual, what)
    expected = torch.as_tensor(expected)
    record.update(
        shape=tuple(actual.shape), dtype=str(actual.dtype), expected_shape=tuple(expected.shape)
    )
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}."
            f"{_shape_hint(actual.shape, expected.shape)}{tail}"
        )
    if check_dtype and actual.dtype != expected.dtype:
        raise AssertionError(
            f"{what}: dtype {actual.dtype}, expected {expected.dtype}. Compute in the input's dtype "
            f"(a torch.tensor(...) without dtype=, or .float(), changes it).{tail}"
        )
    if actual.device != expected.device:
        raise AssertionError(
            f"{what}: on device {actual.device}, expected {expected.device}.{tail}"
        )
    actual_c = actual.detach().to(expected.dtype)
    expected_c = expected.detach()
    bad = ~torch.isfinite(actual_c) & torch.isfinite(expected_c)
    if bad.any():
        flat = int(bad.flatten().nonzero()[0])
        idx = _fmt_index(flat, actual.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {actual.numel()} values are nan/inf where the expected "
            f"values are finite; first at index {idx}: got {actual_c.flatten()[flat].item()}, "
            f"expected {expected_c.flatten()[flat].item():.6g}. Overflow in exp()? Subtract the "
            f"maximum first; a log of 0? Work in log space.{tail}"
        )

    def message(default: str) -> str:
        diff = (actual_c - expected_c).abs().flatten()
        diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
        flat = int(diff.argmax())
        idx = _fmt_index(flat, actual.shape)
        got, want = actual_c.flatten()[flat].item(), expected_c.flatten()[flat].item()
        tolerance = (
            f"rtol={rtol:g}, atol={atol:g} ({why})"
            if rtol is not None
            else f"the defaults for {expected.dtype}"
        )
        body = default.replace("Tensor-likes are not close!", "").strip()
        return (
            f"{what}: values differ.\n  largest difference at index {idx}: got {got:.6g}, "
            f"expected {want:.6g}\n  {body.replace(chr(10), chr(10) + '  ')}\n  tolerance: {tolerance}"
            f"{tail}"
        )

    torch.testing.assert_close(
        actual_c, expected_c, rtol=rtol, atol=atol, equal_nan=True, msg=message
    )
    record["passed"] = True


def numerical_gradient(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6
):
    """Centred finite difference of a scalar ``f`` at ``x`` (float64): (f(x+h) - f(x-h)) / 2h.

    The truncation error is O(eps²) and the rounding error O(1e-16 / eps), so with eps = 1e-6 the
    result agrees with an exact gradient to about 1e-9 relative for smooth functions.
    """
    if x.dtype != torch.float64:
        raise ValueError("finite differences need float64")
    grad = torch.zeros_like(x)
    flat, gflat = x.detach().clone().view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = f(flat.view_as(x)).item()
        flat[i] = old - eps
        minus = f(flat.view_as(x)).item()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad
