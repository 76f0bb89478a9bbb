"""How a test marks what it hands to student code: the boundary reads these, the tests' API
(``grader.testprocess.deliverables``) makes them.

- ``Instrument``: a test's object handed to student code as itself, with the methods named in its
  ``EXPOSED`` callable from there (an optimizer's ``step``); each call runs on the test's side.
- ``Mutable``: an argument student code may change in place, the change written back.
- the guards in force: each call of student code runs with them (``grader.boundary.guards``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Instrument:
    """Base of a test's object handed to student code as itself, with the methods in ``EXPOSED``
    callable from there. In a plain in-process run student code gets the object itself."""

    EXPOSED: tuple[str, ...] = ()


class Mutable:
    """An argument student code may change in place, the change written back to the test's
    object (``deliverables.mutable``): e.g. the parameters an ``sgd_step`` updates."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_guards: list[str] = []


@contextmanager
def guards_in_force(names: tuple[str, ...]) -> Iterator[None]:
    """Within: every call of student code through the boundary carries these guards."""
    _guards.extend(names)
    try:
        yield
    finally:
        del _guards[len(_guards) - len(names) :]


def active_guards() -> list[str]:
    return list(_guards)
