"""Lazy access to the graded tree, so that collecting tests never runs student code.

    softmax = deliverable("a1_lm_basics.softmax")   # at module level: imports nothing
    softmax.softmax(x)                              # inside a test: imports now

A missing file, a missing name, a syntax error or an exception at import then fails only the
tests that touch that module, each with a message that says which file and what to do.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

_collecting = False  # set by the grader plugin while pytest collects: nothing is imported then


def set_collecting(flag: bool) -> None:
    global _collecting
    _collecting = flag


_refused: str | None = None  # why student code may not run in this process (a trusted check)


def refuse(reason: str | None) -> None:
    """From now on every access to a deliverable raises :class:`DeliverableError` with ``reason``."""
    global _refused
    _refused = reason


class DeliverableError(ImportError):
    """A deliverable module or name is not where the assignment says it must be."""


class deliverable:  # noqa: N801 - reads like a function at the call site
    def __init__(self, module: str) -> None:
        self._module = module

    def module(self) -> ModuleType:
        path = self._module.replace(".", "/") + ".py"
        if _refused is not None:
            raise DeliverableError(f"{path} may not be imported here: {_refused}")
        try:
            return importlib.import_module(self._module)
        except ModuleNotFoundError as exc:
            if exc.name and self._module.startswith(exc.name):
                raise DeliverableError(
                    f"Could not find {path} in the graded files. Keep the template's file names "
                    f"and folders (missing module: {exc.name})."
                ) from None
            raise
        except SyntaxError:
            raise
        except Exception as exc:
            exc.add_note(f"(raised while importing {path}: code at module level runs on import)")
            raise

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
                f"{self._module.replace('.', '/')}.py has no {name!r}. Keep the template's names "
                "and signatures: the tests call them."
            ) from None

    def __repr__(self) -> str:
        return f"deliverable({self._module!r})"
