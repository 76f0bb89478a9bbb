"""A live progress line for the long commands (``grade``, ``validate``, ``mutants``, ``batch``).

rich on a terminal (standard error, so the report on standard output stays clean; the line goes
away when the work is done), nothing at all when standard error is a file or a pipe: captured
logs and CI output stay plain text.
"""

from __future__ import annotations

import contextlib
import threading

from grader.controller import runner


class _Line:
    def __init__(self, progress, task) -> None:
        self._progress, self._task = progress, task

    def update(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def grow(self, n: int) -> None:
        total = self._progress.tasks[0].total or 0
        self._progress.update(self._task, total=total + n)


@contextlib.contextmanager
def bar(description: str, total: int | None = None, unit: str = "tests"):
    """A line that ``update(1)``s per finished item; shows nothing off a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
    )
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        yield _Line(progress, progress.add_task(description, total=total))


@contextlib.contextmanager
def tests(description: str):
    """Count the tests every grading run of this process finishes (``grader.controller.runner`` events);
    the total grows as runs learn their tests."""
    lock = threading.Lock()
    with bar(description) as line:

        def listener(kind: str, value) -> None:
            with lock:
                if kind == "collected":
                    line.grow(int(value))
                elif kind == "result":
                    line.update(1)

        with runner.listening(listener):
            yield line
