"""Every limit of a grading, in one place: the run's, the deliverable process's, the wire's.

``Limits`` bounds one grading run (the command line sets it; an assignment's ``[limits]`` fills
in what the command line leaves: ``grader.course.limits_for``). ``ProcessLimits`` is the part of
it the test process hands the deliverable process, and ``Caps`` bounds what either side of the
boundary accepts from the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GiB = 1024**3
# Shared by a run's limits and the deliverable process's (each process of a grading has them).
MEMORY_BYTES = 4 * GiB  # RLIMIT_AS; torch + transformers import fine under 2 GiB
FILE_BYTES = 256 * 1024**2  # RLIMIT_FSIZE: bounds printing floods and runaway files
PROCESSES = 256  # RLIMIT_NPROC of the student user: bounds a fork bomb
THREADS = 1  # compute threads: as on Gradescope (half a vCPU), the same float reductions


@dataclass(frozen=True)
class Limits:
    """Resource limits of one grading run (all overridable from the CLI)."""

    test_timeout: float | None = None  # overrides the suite's per-test limit (ini ``timeout``)
    default_test_timeout: float = 60.0  # for a test with no limit of its own
    grace: float = 15.0  # the parent kills only if pytest-timeout has not stopped the test by then
    startup_timeout: float = 180.0  # interpreter start + imports + collection
    run_budget: float = 1200.0  # the whole run, all children together
    memory_bytes: int = MEMORY_BYTES
    file_bytes: int = FILE_BYTES
    log_tail_bytes: int = 4000  # of the child's own stdout/stderr, kept for diagnostics
    exit_wait: float = 3.0  # for the child to exit after its last test (stray threads keep it up)
    # One compute thread per child: as on Gradescope (half a vCPU), no oversubscription when
    # several children run at once, and the same float reductions however many run.
    threads: int = THREADS
    # Processes the student user may have at once (RLIMIT_NPROC, counted per user: it applies
    # only when student code runs as a user of its own). Bounds a fork bomb.
    processes: int = PROCESSES
    # Libraries the test process imports before it forks the deliverable process, so both share
    # their memory and the student's side starts with them loaded (an assignment's
    # tests/<a>/assignment.toml, [boundary] preload).
    preload: tuple[str, ...] = ()
    # Trusted checks in a test process of their own, started once the graded tests' process has
    # ended, with nothing preloaded for student code ([boundary] trusted_apart): the checks' own
    # peak then adds to a lean process, not to one holding every library the graded tests use.
    trusted_apart: bool = False
    # Packages the assignment's light install lacks (pyproject.toml extras its assignment.toml does
    # not name): the grading child refuses to import them, so grading here proves that the
    # handout's and the autograder's installs suffice (grader.course.absent_packages).
    absent: tuple[str, ...] = ()
    # The fields given on the command line: an assignment's declared limits (its
    # tests/<a>/assignment.toml, [limits]) fill in only the others.
    explicit: frozenset[str] = frozenset()


# [limits] keys of tests/<a>/assignment.toml -> (Limits field, conversion)
DECLARED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "test_timeout": ("test_timeout", float),  # s, a test without a timeout mark of its own
    "run_budget": ("run_budget", float),  # s, the whole grading run
    "memory_gib": ("memory_bytes", lambda gib: int(gib * GiB)),  # address space per process
    "threads": ("threads", int),  # compute threads per test process
}


def with_declared(limits: Limits, declared: dict[str, Any], where: str, **fields: Any) -> Limits:
    """``limits`` with an assignment's declared ``[limits]`` (``declared``, read from ``where``)
    and ``fields`` (its preload, its absent packages) filled in. A value given on the command line
    (``limits.explicit``) or set by the caller (not the default) wins."""
    unknown = set(declared) - set(DECLARED)
    if unknown:
        raise ValueError(f"{where} [limits]: unknown {sorted(unknown)}; known: {sorted(DECLARED)}")
    default = Limits()
    changes: dict[str, Any] = {}
    for key, value in declared.items():
        name, convert = DECLARED[key]
        if name not in limits.explicit and getattr(limits, name) == getattr(default, name):
            changes[name] = convert(value)
    for name, value in fields.items():
        if value and not getattr(limits, name):
            changes[name] = value
    return dataclasses.replace(limits, **changes) if changes else limits


@dataclass(frozen=True)
class Caps:
    """Bounds on what one side of the boundary accepts from the other."""

    header_bytes: int = 16 * 1024**2  # the JSON part of one message
    message_bytes: int = 512 * 1024**2  # the binary part (tensor data) of one message
    run_bytes: int = 16 * 1024**3  # everything received over one connection
    depth: int = 48  # nesting of containers
    items: int = 1_000_000  # values in one message
    text_chars: int = 1_000_000  # one string


@dataclass(frozen=True)
class ProcessLimits:
    """Limits of the deliverable process (set from the run's ``Limits`` by the test process)."""

    memory_bytes: int = MEMORY_BYTES
    file_bytes: int = FILE_BYTES
    processes: int = PROCESSES
    threads: int = THREADS
    startup_timeout: float = 120.0
    call_timeout: float = 60.0  # when no test is running (a fixture), per request
    restarts_per_test: int = 2
    caps: Caps = Caps()
