"""Gradescope ``results.json``: build it from a manifest and results, validate it, write it.

Only the grading parent calls this. It validates every file against the schema shipped in
``grader/schema`` and keeps the file well under Gradescope's ~1 MB limit by cutting test outputs.
"""

from __future__ import annotations

import json
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
        entry: dict[str, Any] = {
            "name": meta.name,
            "score": min(max(res.score, 0.0), meta.max_score),
            "max_score": meta.max_score,
            "status": res.status if res.score >= meta.max_score else "failed",
            "output": res.output,
            "visibility": meta.visibility,
        }
        if meta.number:
            entry["number"] = meta.number
        if meta.tags:
            entry["tags"] = list(meta.tags)
        tests.append(entry)
        board.extend(res.leaderboard)
    data: dict[str, Any] = {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": round(execution_time, 2),
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


def _fit(data: dict[str, Any]) -> dict[str, Any]:
    """Cut test outputs until the file is small enough for Gradescope."""
    limit = 4000
    while len(json.dumps(data)) > MAX_BYTES and limit > 100:
        limit //= 2
        for t in data["tests"]:
            if len(t["output"]) > limit:
                t["output"] = t["output"][:limit] + "\n... [cut to keep results.json small]"
    return data


def write(path: Path, data: dict[str, Any]) -> None:
    """Validate, then write atomically (a reader never sees half a file)."""
    validate(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
