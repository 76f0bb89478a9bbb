"""Exceptions that reach a test from the deliverable process, rebuilt on the trusted side.

The student's exception arrives as data (its type's name, the names of its built-in bases, its
message, notes and the frames in the student's files). It is raised here as a class that derives
from :class:`StudentError` *and* the matching built-in, so ``pytest.raises(ValueError)`` and the
kit's messages work as they would in one process; ``sys.exit`` in student code arrives as
:class:`StudentExit`, which never ends the test process.
"""

from __future__ import annotations

import builtins
import signal
from functools import cache
from typing import Any

from grader.limits import GiB


class StudentError(Exception):
    """An exception raised by student code in the deliverable process."""

    remote_type: str = "Exception"
    student_frames: list[tuple[str, int, str, str]] = []


class StudentExit(StudentError):
    """Student code called ``sys.exit`` (its process carries on; so does the test)."""


class DeliverableCrashed(StudentError):
    """The deliverable process died (``os._exit``, a segfault, the memory limit)."""


class DeliverableTimeout(StudentError):
    """A call into student code ran past the test's time limit; its process was stopped."""


class BoundaryViolation(StudentError):
    """The deliverable process sent something the protocol does not allow."""


class StaleObject(StudentError):
    def __init__(self) -> None:
        super().__init__(
            "This object of the student's lived in a process that has ended (it crashed or ran "
            "out of time earlier in this test, or belongs to an earlier test)."
        )


# Built-ins a student's exception may stand for here (never SystemExit / KeyboardInterrupt:
# those would stop the test process).
_SAFE_BASES = {
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), Exception)
    and not issubclass(getattr(builtins, name), Warning)
}


@cache
def _exception_class(name: str, base: str) -> type[StudentError]:
    parent = getattr(builtins, base) if base in _SAFE_BASES else Exception
    if parent is SyntaxError or issubclass(parent, SyntaxError):
        parent = SyntaxError
    cls = type(name, (StudentError, parent), {"__module__": "builtins"})
    cls.__qualname__ = name
    return cls


def _text(value: Any, limit: int = 4000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def from_remote(data: Any) -> StudentError:
    """The exception described by the deliverable process's error reply."""
    if not isinstance(data, dict):
        return BoundaryViolation("a malformed error reply")
    name = _text(data.get("type"), 80) or "Exception"
    if not name.isidentifier():
        name = "Exception"
    message = _text(data.get("message"))
    bases = [b for b in data.get("bases") or [] if isinstance(b, str)][:8]
    if name == "SystemExit":
        exc: StudentError = StudentExit(message)
    else:
        base = next((b for b in bases if b in _SAFE_BASES), "Exception")
        cls = _exception_class(name, base)
        syntax = data.get("syntax")
        if issubclass(cls, SyntaxError) and isinstance(syntax, list) and len(syntax) == 4:
            filename, lineno, msg, text = syntax
            exc = cls(
                _text(msg, 300),
                (
                    _text(filename, 300),
                    lineno if type(lineno) is int else 0,
                    None,
                    _text(text, 300),
                ),
            )
        else:
            errno = data.get("errno")
            if issubclass(cls, OSError) and type(errno) is int:
                exc = cls(errno, message)
            else:
                exc = cls(message)
            if isinstance(exc, ImportError):
                exc.name = _text(data.get("name"), 200) or None
    exc.remote_type = name
    frames = []
    for f in data.get("frames") or []:
        if isinstance(f, list) and len(f) == 4:
            frames.append(
                (
                    _text(f[0], 300),
                    f[1] if type(f[1]) is int else 0,
                    _text(f[2], 100),
                    _text(f[3], 300),
                )
            )
    exc.student_frames = frames[-5:]
    for note in (data.get("notes") or [])[:5]:
        if isinstance(note, str):
            exc.add_note(note[:4000])
    return exc


def death_cause(returncode: int | None, memory_bytes: int, trusted: bool = False) -> str:
    """Why a process that ran student code ended, for the test that was running. ``trusted``: the
    test was a trusted check (no student code ran in it): its end is the grader's problem."""
    if trusted:
        if returncode is None:
            how = "no exit status"
        elif returncode < 0:
            try:
                how = f"killed by {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"signal {-returncode}"
        else:
            how = f"exit status {returncode}"
        return (
            f"The grader's own check stopped: its process ended ({how}). It runs none of your "
            "code, so this is not a mistake of yours: most often the grading machine ran out of "
            "memory. Course staff can regrade the submission."
        )
    if returncode is not None and returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"The process running your code died from signal {-returncode}."
        if sig == signal.SIGKILL:
            return (
                "The process running your code was killed (SIGKILL): most often the memory limit "
                f"({memory_bytes / GiB:g} GiB) or the machine's out-of-memory killer. Look for a "
                "tensor far larger than the inputs need."
            )
        if sig == signal.SIGSEGV:
            return "The process running your code crashed with a segmentation fault (SIGSEGV)."
        return f"The process running your code died from signal {sig.name}."
    if returncode is None:
        return "The process running your code stopped answering."
    return (
        f"The process running your code exited (code {returncode}): your code ended the process "
        "(os._exit, or a library doing so). Graded functions must return normally."
    )
