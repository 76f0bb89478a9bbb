"""The one place where graded tests compare values.

Every graded comparison goes through :func:`assert_close` (tensors), :func:`assert_equal`
(plain data: labels, lists, strings) or :func:`assert_at_most` (a measured figure against a
bound, e.g. a perplexity threshold), so that

- messages are uniform and teach: what was compared, shape/dtype problems first, then where the
  values differ most (index), by how much, what was expected there, and an optional hint;
- tolerances are explicit: dtype defaults of ``torch.testing.assert_close``, or both ``rtol`` and
  ``atol`` with the reason (``why``) — a tolerance without a reason is refused;
- they run in the trusted test process, never beside student code: when grading, the student's
  values arrive as plain data from the deliverable process (``grader.boundary``), so nothing a
  submission patches over there touches a comparison. The messages come from
  ``grader.testprocess.comparison_messages``. An expected value may be given as a zero-argument function (computed only
  when the comparison runs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from grader.testprocess import comparison_messages

Expected = Any | Callable[[], Any]


def _tolerance(what: str, rtol: float | None, atol: float | None, why: str | None) -> None:
    if (rtol is None) != (atol is None):
        raise ValueError("give both rtol and atol, or neither")
    if rtol is not None and not why:
        raise ValueError(f"{what}: a non-default tolerance needs its reason in why=")


def assert_close(
    actual: Any,
    expected: Expected,
    *,
    what: str,
    rtol: float | None = None,
    atol: float | None = None,
    why: str | None = None,
    hint: str | None = None,
    check_dtype: bool = True,
) -> None:
    """Assert that a student's tensor equals the expected one within tolerance, explaining a miss.

    Args:
        actual: what the student's code returned.
        expected: the oracle's value (a trusted implementation, never a hand-typed number), or a
            zero-argument function computing it.
        what: the quantity, as the student would recognise it, e.g. ``"softmax(x) for x = [[1, 2]]"``.
        rtol, atol: both or neither; when given, ``why`` says why the defaults do not fit.
        hint: the likely mistake when this comparison fails.
        check_dtype: require the same dtype (the default: functions should keep the input's dtype).
    """
    _tolerance(what, rtol, atol, why)
    options = {"rtol": rtol, "atol": atol, "why": why, "hint": hint, "check_dtype": check_dtype}
    expected = expected() if callable(expected) else expected
    message = comparison_messages.close_message(actual, expected, what=what, **options)
    if message:
        raise AssertionError(message)


def assert_equal(actual: Any, expected: Expected, *, what: str, hint: str | None = None) -> None:
    """Assert that plain data (ints, strings, lists of them) equals the expected data."""
    expected = expected() if callable(expected) else expected
    message = comparison_messages.equal_message(actual, expected, what=what, hint=hint)
    if message:
        raise AssertionError(message)


def assert_at_most(
    actual: Any, bound: Expected, *, what: str, why: str, hint: str | None = None
) -> None:
    """Assert that a measured figure (a perplexity, an error rate) is at most ``bound``.

    Args:
        actual: the figure the student's code produced (a number or a one-element tensor).
        bound: the threshold (or a zero-argument function computing it, e.g. a trivial baseline).
        why: where the bound comes from (the reference's measured figure and the margin).
    """
    bound = bound() if callable(bound) else bound
    message = comparison_messages.at_most_message(actual, bound, what=what, why=why, hint=hint)
    if message:
        raise AssertionError(message)


def snapshot(value: Any) -> Any:
    """A copy of every tensor in ``value`` (a tensor, or tuples, lists and dicts of them), taken
    before a call that must leave its arguments as it found them (see :func:`assert_unchanged`)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(snapshot(v) for v in value)
    return value


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def assert_unchanged(
    given: Any,
    before: Any,
    *,
    what: str,
    hint: str,
    rtol: float = 0.0,
    atol: float = 0.0,
    why: str = "an argument is read, never written in place",
) -> None:
    """Assert that a call left its arguments as it found them: every tensor in ``given`` equals
    its :func:`snapshot` ``before``, exactly unless a tolerance (with its reason) is given.

    The test hands the arguments over with ``grader.testprocess.deliverables.mutable``, so that a change
    student code makes in place (``x -= x.max()``, ``masked_fill_``) comes back to ``given``.
    """
    now, then = _tensors(given), _tensors(before)
    if len(now) != len(then):
        raise ValueError(f"{what}: {len(now)} tensors given, {len(then)} in the snapshot")
    for i, (a, b) in enumerate(zip(now, then, strict=True)):
        where = what if len(now) == 1 else f"{what} (tensor {i} of {len(now)})"
        assert_close(
            a,
            b,
            what=f"{where} after the call (it must be left as it was)",
            rtol=rtol,
            atol=atol,
            why=why,
            hint=hint,
        )


def call_leaving_unchanged(
    function: Callable, *args: Any, what: str, hint: str, **kwargs: Any
) -> Any:
    """``function(*args, **kwargs)`` with every argument handed over with
    ``grader.testprocess.deliverables.mutable`` (a change made in place comes back), then
    :func:`assert_unchanged` on all of them; returns what the call returned."""
    from grader.testprocess.deliverables import mutable

    before = snapshot((args, kwargs))
    result = function(*map(mutable, args), **{k: mutable(v) for k, v in kwargs.items()})
    assert_unchanged((args, kwargs), before, what=what, hint=hint)
    return result


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
