"""One path from a submission to ``results.json``: overlay, grade, results.

``run_autograder`` (``grader.commands.autograder``), ``batch`` and ``grade`` of a submitted file all go
through :func:`grade_upload`, so a submission scores the same whichever way it is graded: laid
over the template in a folder of its own, audited, graded with student code running as ``user``
behind the boundary, and turned into a valid Gradescope results dict (:func:`results`, which
``grade`` of a folder, :func:`grade_tree`, uses too).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import course, sandbox
from grader.controller import grading, results_json
from grader.controller.runner import Manifest
from grader.intake import audit, submission
from grader.limits import Limits


@dataclass
class Outcome:
    grade: grading.Grade
    placed: submission.Overlay | None  # None: a tree graded as it is (grade_tree)
    data: dict[str, Any]  # results.json
    flags: list[
        audit.Finding
    ]  # rule violations and code reaching for the grader (grader.intake.audit)


def readable_by(root: Path, user: str) -> None:
    """Let ``user`` (and nobody else) read ``root`` and everything in it, never write it: the tree
    belongs to root and the user's group, folders 0750, files 0640. Its parents become
    traversable (not listable) so the user can reach it."""
    import pwd

    gid = pwd.getpwnam(user).pw_gid
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        os.chown(path, 0, gid)
        path.chmod(0o750 if path.is_dir() else 0o640)
    for parent in root.parents:
        try:
            if parent.stat().st_uid == os.geteuid():
                parent.chmod(parent.stat().st_mode | 0o111)
        except OSError:
            break


def private(paths: list[Path]) -> None:
    """Root's alone: expected values, held-out labels (and, once every test runs behind the
    boundary, the tests themselves)."""
    if os.geteuid() != 0:
        return
    for top in paths:
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            if not path.is_symlink():
                path.chmod(0o700 if path.is_dir() else 0o600)


def prepare(assignment: str, upload: Path, work: Path) -> tuple[Path, submission.Overlay]:
    """Lay ``upload`` over the template in ``work/tree``; returns (tree, what was placed)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tree = work / "tree"
    placed = submission.overlay(upload, course.TEMPLATE / assignment, tree / assignment)
    return tree, placed


def grade_upload(
    assignment: str,
    upload: Path,
    work: Path,
    *,
    user: str | None,
    limits: Limits = Limits(),
    hidden: bool = True,
    manifest: Manifest | None = None,
    files: set[str] | None = None,
    note: str = "",
) -> Outcome:
    """Overlay ``upload`` (a folder of submitted files) in ``work``, grade it, build results.

    ``user`` names the pool of the student user (``sandbox.claimed``): the run grades as a user
    of that pool no other run holds, so runs on one machine never touch each other."""
    tree, placed = prepare(assignment, upload, work)
    if user is not None and os.geteuid() != 0:
        placed.problems.append(f"(not root: student code ran as the current user, not {user!r})")
        user = None
    findings = audit_of(tree, assignment)  # before any student code runs: the tree as submitted
    try:
        with sandbox.claimed(user) as owned:
            if owned is not None:
                readable_by(work, owned)
            g = grading.grade(
                assignment,
                tree,
                hidden=hidden,
                limits=limits,
                manifest=manifest,
                files=files,
                user=owned,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)  # nothing of a graded tree outlives its grading
    return results(g, placed, findings, note)


def grade_tree(
    assignment: str, tree: Path, *, limits: Limits = Limits(), hidden: bool = True
) -> Outcome:
    """Grade a folder as it is (the reference, the template, a student's checkout: a tree that
    holds the assignment's package), as the current user, through the same audit and results
    as :func:`grade_upload`."""
    findings = audit_of(tree, assignment)
    g = grading.grade(assignment, tree, hidden=hidden, limits=limits)
    return results(g, None, findings, "")


def audit_of(tree: Path, assignment: str) -> list[audit.Finding]:
    """The static audit of the submission in ``tree``: rule violations, then staff flags."""
    return [
        *(
            f
            for rule in audit.rules(assignment).values()
            for f in audit.violations(tree, assignment, rule)
        ),
        *audit.flags(tree, assignment),
    ]


def results(
    g: grading.Grade,
    placed: submission.Overlay | None,
    findings: list[audit.Finding],
    note: str,
) -> Outcome:
    """The outcome of a grading: results.json built once, for every way of grading. ``placed``:
    what was taken from an upload (None: a tree graded as it is)."""
    summary = " ".join(filter(None, [note, f"{g.score:g} / {g.max_score:g} points."]))
    output = f"{summary}\n{placed.report()}" if placed is not None else summary
    flagged = findings + [  # what trusted checks noted for staff (e.g. two close adapters)
        audit.Finding("flag", "staff-note", m.nodeid.split("::")[-1], 0, "", text)
        for m in g.metas
        for text in g.results[m.nodeid].staff_notes
    ]
    data = results_json.build(
        g.metas,
        g.results,
        execution_time=g.seconds,
        output=output,
        extra_data={"flags": [f.to_json() for f in flagged[:50]]} if flagged else None,
    )
    return Outcome(g, placed, data, flagged)
