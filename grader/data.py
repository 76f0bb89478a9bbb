"""The course's data, as the grader sees it: one folder, and the course's own code for the rest.

The grader owns where the data folder is (``$COURSEKIT_DATA_DIR``, else the user's cache) and
that grading children read it and never download. What the files are, how they are fetched,
checked and derived is the course's: pyproject.toml's ``[tool.grader]`` names the modules
(``data``: ``ensure(files)`` and ``materialize(item, dest)``; ``models``:
``missing_models(names)``), which the grader loads by that name when a command needs them. The
grader imports no course code by name, and the course reads this module, never the grader's
internals.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

ENV = "COURSEKIT_DATA_DIR"
DOWNLOAD_ENV = "COURSEKIT_DATA_DOWNLOAD"  # "0": never download (the grading processes)
FIX = "make data"  # the one command that fetches and checks every data file
SETUP_PROBLEM = 3  # exit status: the machine is not ready (data missing); python -m grader's too


SETUP_PREFIX = "Setup problem (not a mistake in your code): "


class SetupProblem(FileNotFoundError):
    """Something the grading machine lacks (data, a model): never a student's mistake. The
    message says what is missing, then ``Fix:`` and what to run. The course's own errors of this
    kind (a data file, a pretrained model) subclass it; every command reports one as a setup
    problem (exit status 3), never as a traceback."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{SETUP_PREFIX}{problem}\nFix: {fix}")
        self.problem, self.fix = problem, fix


def data_dir() -> Path:
    """The data folder: ``$COURSEKIT_DATA_DIR``, else the user cache."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "coursekit" / "data"


def course_module(role: str) -> ModuleType:
    """The course's module for ``role`` (``data`` or ``models``), as pyproject.toml's
    ``[tool.grader]`` names it."""
    from grader.course import hooks

    return importlib.import_module(hooks()[role])
