"""Verdicts: is a value right, and if not, what should the student be told?

Used twice with the same code: inside a test by the comparison helper (``tests/compare.py``), and
in the trusted grading parent, which compares what the student's run *recorded* with what a run of
the reference recorded as expected (``grader.recording``). There, tampering inside the student's
process — patched ``torch.testing``, an ``__eq__`` that is always true, a rewritten pytest report —
changes nothing: only the recorded values count, and they must be right.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from grader import recording


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


def _message(ref: dict[str, Any], got: dict[str, Any]) -> str | None:
    options = dict(ref.get("options") or {})
    actual = recording.decode(got["actual"])
    expected = recording.decode(ref["expected"])
    if got["actual"].get("kind") == "unreadable":
        return (
            f"{ref['what']}: a tensor on device {got['actual'].get('device')} whose values cannot "
            f"be read ({got['actual'].get('error')}); expected one on the cpu."
        )
    if ref["kind"] == "close":
        if got["actual"].get("kind") == "too_large":
            return f"{ref['what']}: too large to compare ({got['actual']['shape']})."
        return close_message(actual, expected, what=ref["what"], **options)
    if ref["kind"] == "at_most":
        return at_most_message(actual, expected, what=ref["what"], **options)
    return equal_message(actual, expected, what=ref["what"], hint=options.get("hint"))


def judge(
    reference: list[dict[str, Any]], student: list[dict[str, Any]] | None
) -> tuple[float, list[str]]:
    """The fraction of the reference's check groups whose every comparison the student matched.

    Records are grouped by check label; within a group they pair up in order and must name the
    same quantity (``what``: it includes the inputs' shapes, so diverging inputs show up).
    A test whose reference records nothing is not judged here: (1.0, []).
    """
    if not reference:
        return 1.0, []
    if student is None:
        return 0.0, [
            "No record of the values this test compared was found (the run did not write it)."
        ]
    groups: dict[Any, list[dict]] = {}
    for r in reference:
        groups.setdefault(r.get("label"), []).append(r)
    theirs: dict[Any, list[dict]] = {}
    for r in student:
        if isinstance(r, dict) and isinstance(r.get("actual"), dict):
            theirs.setdefault(r.get("label"), []).append(r)
    passed, messages = 0, []
    for label, refs in groups.items():
        got = theirs.get(label, [])
        problem = None
        for i, ref in enumerate(refs):
            if i >= len(got):
                problem = f"{ref['what']}: not reached (the test stopped before this comparison)."
                break
            if got[i].get("what") != ref["what"]:
                problem = f"expected to compare {ref['what']!r} next, but the run compared {got[i].get('what')!r}."
                break
            try:
                problem = _message(ref, got[i])
            except Exception as exc:  # a record the student's run wrote: anything can be in it
                problem = (
                    f"{ref['what']}: the recorded value could not be read ({type(exc).__name__})."
                )
            if problem:
                break
        if problem is None:
            passed += 1
        else:
            messages.append(f"✗ {label}:\n{problem}" if label is not None else problem)
    return passed / len(groups), messages
