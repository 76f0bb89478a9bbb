"""Rules a handout states about *how* a deliverable is written, enforced while it runs.

A test asks for a guard by name when it calls student code (``call_guarded``); the deliverable
process applies it for the length of that call. A guard runs in the student's process, so a
determined submission can undo it: it catches honest mistakes and gives them a clear message,
while the static audit (``grader.audit``), which runs on the trusted side, is what a score relies
on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

GUARDS: dict[str, Callable[[], object]] = {}


def guard(name: str):
    def register(factory):
        GUARDS[name] = factory
        return factory

    return register


class ForbiddenFunctionError(RuntimeError):
    """Student code called a function that the assignment forbids."""


@contextmanager
def applied(names: list) -> Iterator[None]:
    with ExitStack() as stack:
        for name in names:
            factory = GUARDS.get(name) if isinstance(name, str) else None
            if factory is None:
                raise ValueError(f"unknown guard {str(name)[:40]!r}")
            stack.enter_context(factory())
        yield
