"""Access to the graded tree, lazy, so that collecting tests never runs student code.

    softmax = deliverable("a1_lm_basics.softmax")   # at module level: imports nothing
    softmax.softmax(x)                              # inside a test: imports now

Where the module is imported depends on the run. When grading, the plugin installs the boundary
(``grader.boundary``): the module lives in the deliverable process and ``softmax.softmax(x)`` is
a call across it. In a plain ``pytest --impl ...`` run it is imported into the test process, for
fast iteration. Tests read the same either way.

A missing file, a missing name, a syntax error or an exception at import then fails only the
tests that touch that module, each with a message that says which file and what to do.

:func:`build` constructs a kit object (a base layer to wrap, an optimizer over a student's
parameters, a tokenizer) *next to* the deliverables, so that student code can be handed it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from grader.boundary.handles import Instrument, Mutable, guards_in_force

__all__ = ["Instrument", "build", "deliverable", "guarded", "mutable"]

_collecting = False  # set by the grader plugin while pytest collects: nothing is imported then


def set_collecting(flag: bool) -> None:
    global _collecting
    _collecting = flag


class DeliverableError(ImportError):
    """A deliverable module or name is not where the assignment says it must be."""

    path: str = ""  # the missing module's file, relative to the graded tree


def _path(module: str) -> str:
    return module.replace(".", "/") + ".py"


class InProcess:
    """Deliverables imported into this process (plain pytest runs)."""

    def module(self, name: str) -> Any:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise _missing(name, exc.name) from None
            raise
        except SyntaxError:
            raise
        except Exception as exc:
            exc.add_note(
                f"(raised while importing {_path(name)}: code at module level runs on import)"
            )
            raise

    def build(self, factory: str, args: tuple, kwargs: dict) -> Any:
        from grader.boundary.server import importable

        return importable(factory)(*args, **kwargs)


class Refused:
    """No student code may run in this process (a trusted check)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def module(self, name: str) -> Any:
        raise DeliverableError(f"{_path(name)} may not be imported here: {self.reason}")

    def build(self, factory: str, args: tuple, kwargs: dict) -> Any:
        raise DeliverableError(f"nothing may be built for student code here: {self.reason}")


class ThroughBoundary:
    """Deliverables in the deliverable process, reached through ``grader.boundary``."""

    def __init__(self, boundary) -> None:
        self.boundary = boundary

    def module(self, name: str) -> Any:
        from grader.boundary.errors import StudentError

        try:
            return self.boundary.import_module(name)
        except StudentError as exc:
            if isinstance(exc, ModuleNotFoundError) and exc.name and name.startswith(exc.name):
                raise _missing(name, exc.name) from None
            if not isinstance(exc, SyntaxError) and getattr(exc, "remote_type", "") not in (
                "DeliverableCrashed",
                "DeliverableTimeout",
            ):
                exc.add_note(
                    f"(raised while importing {_path(name)}: code at module level runs on import)"
                )
            raise

    def build(self, factory: str, args: tuple, kwargs: dict) -> Any:
        return self.boundary.call(factory, args, kwargs)


def _missing(name: str, missing: str) -> DeliverableError:
    error = DeliverableError(
        f"Could not find {_path(name)} in the graded files. Keep the template's file names "
        f"and folders (missing module: {missing})."
    )
    error.path = _path(name)  # the file the assignment expects, for the report's one message
    return error


_resolver: InProcess | Refused | ThroughBoundary = InProcess()


def use(resolver: InProcess | Refused | ThroughBoundary) -> None:
    """Where deliverables come from in this process (the grader plugin sets it)."""
    global _resolver
    _resolver = resolver


def resolver() -> InProcess | Refused | ThroughBoundary:
    return _resolver


@contextmanager
def guarded(*names: str) -> Iterator[None]:
    """Within: every call of student code runs with these guards (``grader.boundary.guards``),
    e.g. ``with guarded("no_builtin_attention"): out, w = module(q, k, v)``. A guard applies in the
    process where the student's code runs; a violation raises there (for messages — scores that
    depend on a rule also rely on the static audit, ``grader.intake.audit``)."""
    with guards_in_force(names):
        if isinstance(_resolver, ThroughBoundary):
            yield
        else:
            from grader.boundary.guards import applied

            with applied(list(names)):
                yield


def mutable(value: Any) -> Any:
    """Hand ``value`` (a tensor, a list or dict of them, a generator) to student code as an
    argument it may change in place, with the change written back — as an ``sgd_step(params,
    ...)`` updates ``params``, or to check that a function leaves its input as it found it.

    When grading, every other argument crosses as a copy: student code can never change a value
    the test (or its oracle) reads again. In a plain in-process run the value itself is passed.
    """
    if isinstance(_resolver, ThroughBoundary):
        return Mutable(value)
    return value


def build(factory: str, *args: Any, **kwargs: Any) -> Any:
    """``factory(*args, **kwargs)`` in the process where the deliverables run.

    ``factory`` is a dotted name under torch, transformers, datasets, peft, numpy or coursekit,
    e.g. ``build("torch.nn.Linear", 6, 5, dtype=torch.float64)``. The result is the object itself
    in a plain pytest run, a proxy of it when grading; either can be handed to student code.
    """
    return _resolver.build(factory, args, kwargs)


class deliverable:  # noqa: N801 - reads like a function at the call site
    def __init__(self, module: str) -> None:
        self._module = module

    def module(self) -> Any:
        return _resolver.module(self._module)

    def __getattr__(self, name: str) -> Any:
        # pytest probes module attributes while collecting (fixture markers, __test__ ...):
        # answer those without importing, so that collection never runs student code.
        if name.startswith("_") or _collecting:
            raise AttributeError(name)
        module = self.module()
        try:
            return getattr(module, name)
        except AttributeError:
            raise DeliverableError(
                f"{_path(self._module)} has no {name!r}. Keep the template's names "
                "and signatures: the tests call them."
            ) from None

    def __repr__(self) -> str:
        return f"deliverable({self._module!r})"
