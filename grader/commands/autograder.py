"""What ``run_autograder`` does on Gradescope: overlay, grade as an unprivileged user, write results.

Every path hangs off ``--root`` (``/autograder`` on Gradescope), so the whole flow runs in a
temporary stand-in too. Whatever happens — a submission that cannot be read, a full disk, a
grader bug — a valid ``results.json`` is there at the end: a zero-score one is written (and disk
space kept for the real one) before any student code runs, and an exception becomes the output
of a zero-score file.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

from grader import course
from grader.controller import pipeline, results_json
from grader.course import KIT_ROOT
from grader.limits import Limits

MAX_METADATA_BYTES = 1024**2


def _metadata_note(root: Path) -> str:
    path = root / "submission_metadata.json"
    try:
        if path.stat().st_size > MAX_METADATA_BYTES:
            return ""
        meta = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return ""
    previous = meta.get("previous_submissions") if isinstance(meta, dict) else None
    return f"Submission #{len(previous) + 1}." if isinstance(previous, list) else ""


def heldout_files(assignment: str, data_dir: Path) -> list[Path]:
    """The held-out files of the zip's data folder (tests/<a>/assignment.toml, [data]): made root's alone
    before grading, read by the tests' process and never by student code."""
    return [data_dir / name for name in course.data_needs(assignment).heldout]


def run(assignment: str, root: Path, user: str | None, limits: Limits = Limits()) -> dict:
    start = time.monotonic()
    results_path = root / "results" / "results.json"
    data = results_json.zero(
        "The autograder did not finish (it ran out of time or was stopped). Course staff can regrade."
    )
    try:
        results_json.reserve(results_path, data["output"])
        data_dir = KIT_ROOT / "data"
        secrets = []
        if data_dir.is_dir():  # the files the tests read, shipped in the zip
            os.environ["COURSEKIT_DATA_DIR"] = str(data_dir)
            secrets += heldout_files(assignment, data_dir)
        if (KIT_ROOT / "AUTOGRADER").exists():  # an autograder zip (grader.commands.package)
            # The tests (hidden ones too) and the reference (the contract checks' twin) are read
            # by the tests' process alone, which runs as root.
            secrets += [KIT_ROOT / "tests", KIT_ROOT / "reference"]
        pipeline.private(secrets)  # the tests, the reference and held-out data: root's alone
        outcome = pipeline.grade_upload(
            assignment,
            root / "submission",
            root / "work",
            user=user,
            limits=limits,
            note=_metadata_note(root),
        )
        data = outcome.data
        data["execution_time"] = round(time.monotonic() - start, 2)
    except Exception:  # the grader must never leave Gradescope without a results.json
        data = results_json.zero(
            "The autograder failed; course staff have the details below.\n"
            + traceback.format_exc()[-3000:],
            time.monotonic() - start,
        )
    results_json.write(results_path, data)
    return data
