"""Grading one implementation tree end to end: the tests that reach student code, then the
trusted checks, in one grading child (``runner``), with the catalogue's hints added."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from grader import sandbox
from grader.controller import mutant_hints
from grader.controller.runner import Manifest, run, run_collecting
from grader.course import limits_for, test_paths
from grader.limits import Limits
from grader.records import TestMeta, TestResult


@dataclass
class Grade:
    assignment: str
    impl: Path
    metas: list[TestMeta]
    results: dict[str, TestResult]
    seconds: float

    @property
    def score(self) -> float:
        return sum(self.results[m.nodeid].score for m in self.metas)

    @property
    def max_score(self) -> float:
        return sum(m.max_score for m in self.metas)


def select(manifest: Manifest, *, hidden: bool, files: set[str] | None = None) -> Manifest:
    """Public tests only unless ``hidden``; optionally only tests in the named test files."""
    tests = [
        m
        for m in manifest.tests
        if (hidden or m.visibility == "visible")
        and (files is None or m.nodeid.split("::")[0].rsplit("/", 1)[-1] in files)
    ]
    return Manifest(tests, manifest.errors)


def _raise_on_collect_errors(assignment: str, manifest: Manifest) -> None:
    if manifest.errors:
        errors = "\n".join(f"{e['nodeid']}: {e['error']}" for e in manifest.errors)
        raise RuntimeError(f"the kit's tests for {assignment} do not collect:\n{errors}")


def grade(
    assignment: str,
    impl: Path,
    *,
    hidden: bool = False,
    limits: Limits = Limits(),
    manifest: Manifest | None = None,
    files: set[str] | None = None,
    user: str | None = None,
) -> Grade:
    """Grade ``impl``: every test that calls student code reaches it through the boundary
    (``grader.boundary``), in a deliverable process of ``user`` when given; trusted checks, which
    run no student code, last, once that process has ended."""
    with sandbox.claimed(user) as owned:  # a user of this run's own (reentrant: see claimed)
        return _grade(assignment, impl, hidden, limits, manifest, files, owned)


def _grade(
    assignment: str,
    impl: Path,
    hidden: bool,
    limits: Limits,
    manifest: Manifest | None,
    files: set[str] | None,
    user: str | None,
) -> Grade:
    start = time.monotonic()
    limits = limits_for(assignment, limits)
    paths = test_paths(assignment)
    if files is not None:
        paths = [p / f for p in paths for f in sorted(files)]
    # One child: tests that reach student code through the boundary, with a deliverable process
    # of the student user beside it, then the trusted checks (no student code), once that process
    # and everything the student's code started have ended (the two never hold memory at once).
    if manifest is None:  # learnt from the grading child's own collection: one start saved
        manifest, results = run_collecting(
            paths, impl, limits, user=user, visible_only=not hidden, mode="graded"
        )
        _raise_on_collect_errors(assignment, manifest)
        chosen = manifest
    else:
        _raise_on_collect_errors(assignment, manifest)
        chosen = select(manifest, hidden=hidden, files=files)
        results = run(paths, impl, chosen, limits, user=user, mode="graded") if chosen.tests else {}
    mutant_hints.attach(assignment, chosen.tests, results)
    return Grade(assignment, impl, chosen.tests, results, time.monotonic() - start)
