"""Turn an exception raised while grading into a message a student can act on.

A student needs three things: what went wrong (the exception and its message), where in *their*
code it happened (frames inside the graded tree only: the kit's own frames are noise to them),
and any notes attached to it (Hypothesis adds the falsifying example there).
"""

from __future__ import annotations

import errno
import os
import traceback
from pathlib import Path

from grader.data import SetupProblem
from grader.records import CANNOT_RUN, FAILURE_KINDS

MAX_OUTPUT_CHARS = 4000  # per test: results.json must stay far below Gradescope's ~1 MB


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return text[:limit] + f"\n... [{cut} more characters cut]"


def _frames_in(tb, root: Path | None) -> list[traceback.FrameSummary]:
    if root is None:
        return []
    root_s = str(root.resolve()) + os.sep
    return [
        f for f in traceback.extract_tb(tb) if str(Path(f.filename).resolve()).startswith(root_s)
    ]


# What kind of failure a test had, for the report and the hints (TestResult.kind): code that does
# not load (a syntax error, a file missing), a stub still to fill in, or a wrong answer.
SETUP, SYNTAX, MISSING, FAILED, TODO = FAILURE_KINDS


def kind_of(exc: BaseException) -> str:
    """``exc``'s kind of failure (one of ``FAILURE_KINDS``)."""
    if isinstance(exc, SyntaxError):
        return SYNTAX
    if type(exc).__name__ == "DeliverableError" and str(exc).startswith("Could not find"):
        return MISSING
    if isinstance(exc, NotImplementedError):
        return TODO
    if isinstance(exc, SetupProblem):
        return SETUP
    return FAILED


def cause_of(exc: BaseException, impl_root: Path | None = None) -> str:
    """One line saying what is wrong, for a failure of a kind the report groups: the same syntax
    error or missing file once, however many tests it fails."""
    kind = kind_of(exc)
    if kind == SETUP:
        return exc.problem[:300] if isinstance(exc, SetupProblem) else str(exc)[:300]
    if kind == MISSING and getattr(exc, "path", ""):
        return exc.path  # the file: the report names every missing file in one message
    if kind == SYNTAX:
        return describe(exc, impl_root).splitlines()[0]
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return first[:300]


def test_kind(kinds: set[str]) -> str:
    """A failed test's kind from the kinds of its failures: code that does not load first, then
    a wrong answer; "todo" only when every failure was a stub."""
    for kind in CANNOT_RUN:
        if kind in kinds:
            return kind
    return TODO if kinds == {TODO} else FAILED


def grader_out_of_time(limit: str) -> str:
    """Why a trusted check (it runs no student code) stopped at its time limit: the grader's."""
    return (
        f"The grader's own check ran out of time ({limit}) and was stopped. It runs none of your "
        "code, so this is not a mistake of yours: the grading machine was too slow or too busy. "
        "Course staff can regrade the submission."
    )


def describe(exc: BaseException, impl_root: Path | None = None, trusted: bool = False) -> str:
    """One readable paragraph for ``exc``: type, message, notes, and where in the student's code.
    ``trusted``: raised in a trusted check (no student code ran): a time-out is the grader's."""
    if trusted and type(exc).__name__ == "Failed" and str(exc).startswith("Timeout"):
        return grader_out_of_time(str(exc).removeprefix("Timeout").strip(" >()") or "its limit")
    if isinstance(exc, AssertionError) and str(exc):
        # The kit's comparison helper writes complete messages; pytest's rewritten asserts too.
        text = str(exc)
    else:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if isinstance(exc, NotImplementedError):
            text += "\n(This function is still the template's stub: fill in the TODO.)"
        elif isinstance(exc, SystemExit):
            text = f"Your code called sys.exit({exc.code!r}) (SystemExit): remove it; graded code must return."
        elif type(exc).__name__ == "StudentExit":
            text = f"Your code called sys.exit({exc}) (SystemExit): remove it; graded code must return."
        elif type(exc).__name__ in (
            "DeliverableCrashed",
            "DeliverableTimeout",
            "BoundaryViolation",
            "StaleObject",
        ):
            text = str(exc)
        elif type(exc).__name__ == "Failed" and str(exc).startswith("Timeout"):
            text = (
                f"Time limit exceeded ({exc}). Look for an infinite loop, or Python loops over "
                "tensor elements that should be vectorised."
            )
        elif isinstance(exc, OSError) and exc.errno == errno.EFBIG:
            text += (
                "\nOutput limit: what this test printed (or wrote to a file) passed the grader's "
                "file-size cap. Remove large or per-step prints (print inside a loop?)."
            )
        elif isinstance(exc, SyntaxError):
            name = exc.filename
            if (
                name
                and impl_root
                and Path(name).resolve().is_relative_to(Path(impl_root).resolve())
            ):
                name = os.path.relpath(Path(name).resolve(), Path(impl_root).resolve())
            where = f"{name}, line {exc.lineno}" if name else "your code"
            text = f"SyntaxError in {where}: {exc.msg}\n    {(exc.text or '').rstrip()}"
    for note in getattr(exc, "__notes__", ()) or ():
        if str(note) not in text:  # format_exception_only prints the notes already
            text += f"\n{note}"
    remote = getattr(exc, "student_frames", None)  # from the deliverable process, already relative
    if remote:
        frames = [(path, line, name, code) for path, line, name, code in remote]
    else:
        frames = [
            (
                os.path.relpath(f.filename, impl_root) if impl_root else f.filename,
                f.lineno,
                f.name,
                f.line or "",
            )
            for f in _frames_in(exc.__traceback__, impl_root)
        ]
    if frames:
        text += "\nIn your code:"
        for path, line, name, code in frames[-3:]:
            text += f"\n  {path}, line {line}, in {name}"
            if code:
                text += f"\n    {code.strip()}"
    return truncate(text)
