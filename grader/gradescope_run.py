"""What ``run_autograder`` does on Gradescope: overlay, grade as an unprivileged user, write results.

Every path hangs off ``--root`` (``/autograder`` on Gradescope), so the whole flow runs in a
temporary stand-in too. Whatever happens — a submission that cannot be read, a grader bug — a
valid ``results.json`` is written: the exception becomes its output with a score of 0.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from pathlib import Path

from grader import assignments, gradescope, submission
from grader.runner import KIT_ROOT, Limits


def _metadata_note(root: Path) -> str:
    try:
        meta = json.loads((root / "submission_metadata.json").read_text())
    except (OSError, ValueError):
        return ""
    previous = meta.get("previous_submissions") or []
    return f"Submission #{len(previous) + 1}."


def run(assignment: str, root: Path, user: str | None, limits: Limits = Limits()) -> dict:
    start = time.monotonic()
    results_path = root / "results" / "results.json"
    try:
        work = root / "work"
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        placed = submission.overlay(
            root / "submission", assignments.TEMPLATE / assignment, work / assignment
        )
        if user is not None and os.geteuid() != 0:
            placed.problems.append(f"(not root: tests ran as the current user, not {user!r})")
            user = None
        if user is not None:
            for path in [work, *work.rglob("*")]:
                path.chmod(
                    path.stat().st_mode | 0o755 if path.is_dir() else path.stat().st_mode | 0o644
                )
        verdicts = KIT_ROOT / "verdicts" / assignment
        if os.geteuid() == 0 and verdicts.exists():
            for path in [verdicts.parent, *verdicts.parent.rglob("*")]:
                path.chmod(0o700 if path.is_dir() else 0o600)  # expected values: root's alone
        data = KIT_ROOT / "data"
        if data.is_dir():  # the files the tests read, shipped in the zip
            os.environ["COURSEKIT_DATA_DIR"] = str(data)
            if os.geteuid() == 0:
                for name in assignments.data_needs(assignment).heldout:
                    (data / name).chmod(0o600)  # held-out labels: trusted checks alone read them
        g = assignments.grade(
            assignment,
            work,
            hidden=True,
            limits=limits,
            user=user,
            verdicts=verdicts if verdicts.exists() else None,
        )
        note = " ".join(
            filter(None, [_metadata_note(root), f"{g.score:g} / {g.max_score:g} points."])
        )
        data = gradescope.build(
            g.metas,
            g.results,
            execution_time=time.monotonic() - start,
            output=f"{note}\n{placed.report()}",
        )
    except Exception:  # the grader must never leave Gradescope without a results.json
        data = {
            "score": 0.0,
            "execution_time": round(time.monotonic() - start, 2),
            "output": "The autograder failed; course staff have the details below.\n"
            + traceback.format_exc()[-3000:],
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [],
        }
    gradescope.write(results_path, data)
    return data
