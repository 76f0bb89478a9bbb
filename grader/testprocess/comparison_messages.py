"""Is a value right, and if not, what should the student be told?

The comparison helper (``tests/compare.py``) asks these functions in the trusted test process,
where the student's values arrive as plain data from the deliverable process
(``grader.boundary``): a patched ``torch.testing`` or an ``__eq__`` that is always true over there
changes nothing here. Each returns None when the value is right, else the message.
"""

from __future__ import annotations

import json
from typing import Any

import torch


def _fmt_index(flat: int, shape: torch.Size) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat //= size
    return tuple(reversed(index))


def _shape_hint(actual: torch.Size, expected: torch.Size) -> str:
    if actual.numel() == expected.numel():
        return " Same number of elements: a transpose, view or reshape is off."
    if len(actual) == len(expected) - 1:
        return " One dimension is missing: a reduction without keepdim=True, or over the wrong dim?"
    if len(actual) == len(expected) + 1:
        return " One dimension too many: a missing reduction or squeeze?"
    return ""


def close_message(
    actual: Any,
    expected: Any,
    *,
    what: str,
    rtol: float | None = None,
    atol: float | None = None,
    why: str | None = None,
    hint: str | None = None,
    check_dtype: bool = True,
) -> str | None:
    """None when ``actual`` equals ``expected`` within tolerance; else the message explaining it."""
    tail = f"\nHint: {hint}" if hint else ""
    if not isinstance(actual, torch.Tensor):
        shown = repr(actual) if not isinstance(actual, dict) else str(actual.get("type", actual))
        return (
            f"{what}: expected a torch.Tensor, got {type(actual).__name__} ({shown:.80}). "
            f"Return a tensor (no .item(), .tolist() or numpy conversion).{tail}"
        )
    expected = torch.as_tensor(expected)
    if actual.shape != expected.shape:
        return (
            f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}."
            f"{_shape_hint(actual.shape, expected.shape)}{tail}"
        )
    if check_dtype and actual.dtype != expected.dtype:
        return (
            f"{what}: dtype {actual.dtype}, expected {expected.dtype}. Compute in the input's dtype "
            f"(a torch.tensor(...) without dtype=, or .float(), changes it).{tail}"
        )
    if actual.device != expected.device:
        return f"{what}: on device {actual.device}, expected {expected.device}.{tail}"
    got = actual.detach().to(expected.dtype)
    want = expected.detach()
    bad = ~torch.isfinite(got) & torch.isfinite(want)
    if bad.any():
        flat = int(bad.flatten().nonzero()[0])
        return (
            f"{what}: {int(bad.sum())} of {got.numel()} values are nan/inf where the expected "
            f"values are finite; first at index {_fmt_index(flat, got.shape)}: got "
            f"{got.flatten()[flat].item()}, expected {want.flatten()[flat].item():.6g}. Overflow "
            f"in exp()? Subtract the maximum first; a log of 0? Work in log space.{tail}"
        )
    try:
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError as exc:
        diff = (got - want).abs().flatten()
        diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
        flat = int(diff.argmax())
        tolerance = (
            f"rtol={rtol:g}, atol={atol:g} ({why})"
            if rtol is not None
            else f"the defaults for {want.dtype}"
        )
        body = str(exc).replace("Tensor-likes are not close!", "").strip().replace("\n", "\n  ")
        return (
            f"{what}: values differ.\n  largest difference at index {_fmt_index(flat, got.shape)}: "
            f"got {got.flatten()[flat].item():.6g}, expected {want.flatten()[flat].item():.6g}\n"
            f"  {body}\n  tolerance: {tolerance}{tail}"
        )
    return None


def plain(value: Any) -> Any:
    """The JSON form of a value (tuples become lists), so both sides compare alike."""
    return json.loads(json.dumps(value))


def equal_message(actual: Any, expected: Any, *, what: str, hint: str | None = None) -> str | None:
    """None when ``actual`` equals ``expected`` as plain data (lists, numbers, strings)."""
    tail = f"\nHint: {hint}" if hint else ""
    try:
        same = plain(actual) == plain(expected)
    except (TypeError, ValueError):
        return f"{what}: got a {type(actual).__name__}, expected plain data like {plain(expected)!r:.80}.{tail}"
    if same:
        return None
    return f"{what}: got {plain(actual)!r:.300}, expected {plain(expected)!r:.300}.{tail}"


def _number(value: Any) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().reshape(()))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def at_most_message(
    actual: Any, bound: Any, *, what: str, why: str, hint: str | None = None
) -> str | None:
    """None when ``actual`` is a number no larger than ``bound``; else the message explaining it."""
    tail = f"\nHint: {hint}" if hint else ""
    got, limit = _number(actual), _number(bound)
    if got is None:
        return f"{what}: expected a number, got {type(actual).__name__} ({actual!r:.80}).{tail}"
    if limit is None:
        raise TypeError(f"{what}: the bound {bound!r:.80} is not a number (a bug in the test)")
    if not got <= limit:  # also catches nan
        return f"{what}: {got:.6g}, needs to be at most {limit:.6g} ({why}).{tail}"
    return None
