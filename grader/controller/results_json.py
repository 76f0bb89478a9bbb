"""Gradescope ``results.json``: build it from a manifest and results, validate it, write it.

Only the grading parent calls this. It validates every file against the schema shipped in
``grader/controller/schema`` and keeps the file well under Gradescope's ~1 MB limit by cutting test outputs.
"""

from __future__ import annotations

import json
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from grader.records import TestMeta, TestResult

SCHEMA_PATH = Path(__file__).with_name("schema") / "gradescope_results.schema.json"
MAX_BYTES = 900_000  # Gradescope fails a run whose results.json exceeds about 1 MB


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate(results: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``results`` follows Gradescope's spec."""
    jsonschema.validate(results, schema())


def _number(value: Any, low: float, high: float) -> float:
    """A finite number clamped to [low, high] (NaN and infinities count as ``low``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return low
    return min(max(v, low), high) if math.isfinite(v) else low


def build(
    metas: list[TestMeta],
    results: dict[str, TestResult],
    *,
    execution_time: float,
    output: str = "",
    extra_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tests, board = [], []
    for meta in metas:
        res = results.get(meta.nodeid) or TestResult(meta.nodeid, 0.0, "failed", "No result.")
        # Held to the test's range once, where a child's report enters the grader
        # (records.validated_result); a result outside it here is the grader's own bug.
        if not 0.0 <= res.score <= meta.max_score or (
            res.status == "passed" and res.score < meta.max_score
        ):
            raise ValueError(f"{meta.nodeid}: a result the grader never validated ({res.score!r})")
        entry: dict[str, Any] = {
            "name": meta.name,
            "score": res.score,
            "max_score": meta.max_score,
            "status": res.status,
            "output": res.output,
            "visibility": meta.visibility,
        }
        if meta.number:
            entry["number"] = meta.number
        if meta.tags:
            entry["tags"] = list(meta.tags)
        tests.append(entry)
        if meta.leaderboard:  # validated_result keeps only the entries of a test's own board
            board.extend(res.leaderboard)
    data: dict[str, Any] = {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": round(_number(execution_time, 0.0, 1e9), 2),
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if board:
        data["leaderboard"] = board
    if extra_data:
        data["extra_data"] = extra_data
    return _fit(data)


def _size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, allow_nan=False).encode())


def _fit(data: dict[str, Any]) -> dict[str, Any]:
    """Cut outputs (each test's, then the run's) until the file is small enough for Gradescope;
    a file that is still too large (thousands of tests) keeps scores and names only."""
    limit = 4000
    while _size(data) > MAX_BYTES and limit > 100:
        limit //= 2
        for t in data["tests"]:
            if len(t["output"]) > limit:
                t["output"] = t["output"][:limit] + "\n... [cut to keep results.json small]"
        if len(data["output"]) > 4 * limit:
            data["output"] = data["output"][: 4 * limit] + "\n... [cut]"
    if _size(data) > MAX_BYTES:
        data.pop("leaderboard", None)
        for t in data["tests"]:
            t["output"] = ""
            t["name"] = t["name"][:100]
    return data


def zero(output: str, execution_time: float = 0.0) -> dict[str, Any]:
    """A valid results.json worth 0 points (when the grader cannot do better)."""
    return {
        "score": 0.0,
        "execution_time": round(_number(execution_time, 0.0, 1e9), 2),
        "output": output[:20_000],
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [],
    }


RESERVE_BYTES = 2 * 1024**2  # kept free for the final results.json, whatever fills the disk


def reserve(path: Path, note: str) -> None:
    """Before any student code runs: write a zero-score results.json saying the run did not
    finish, and keep disk space for the real one (a file of zeros beside it, freed by
    :func:`write`). A run that ends without writing still leaves a valid file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, zero(note))
    ballast = path.with_name(".reserve")
    with open(ballast, "wb") as f:
        f.write(b"\0" * RESERVE_BYTES)
        f.flush()
        os.fsync(f.fileno())


def write(path: Path, data: dict[str, Any]) -> None:
    """Validate, then write atomically (a reader never sees half a file) as strict JSON.

    The space kept by :func:`reserve` is freed first, so a full disk cannot stop this write."""
    try:
        validate(data)
        text = json.dumps(data, indent=2, allow_nan=False)
    except (jsonschema.ValidationError, ValueError, TypeError) as exc:
        text = json.dumps(
            zero(f"The grader produced invalid results ({exc}); course staff can regrade."[:2000])
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    ballast = path.with_name(".reserve")
    if ballast.exists():
        ballast.unlink()
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        path.write_text(text)  # no room for a second copy: overwrite in place
