"""The records that cross the process boundary between the grader and its pytest child.

The parent learns every test and its maximum points from a *manifest* (written by a collect-only
run that executes no student code), then receives one *result* per test from the child over a pipe.
Both are plain JSON so that a dead or hostile child can never hand the parent a Python object.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


@dataclass(frozen=True)
class TestMeta:
    """What the parent knows about a graded test before any student code runs."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    name: str  # shown to students: the first docstring line, or the function name
    max_score: float
    number: str | None = None  # Gradescope ordering key, e.g. "1.2"
    visibility: str = "visible"
    tags: tuple[str, ...] = ()
    timeout: float | None = None  # per-test limit in seconds (pytest-timeout)
    leaderboard: dict[str, str] | None = None  # {"name": ..., "order": "asc"|"desc"}
    slow: bool = False  # mutants skip it unless their catalogue entry names it
    trusted: bool = False  # runs no student code at all (deliverables refused)
    reference_only: bool = False  # compares with the reference (tests/twin.py): not in handouts

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestMeta:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "tags": tuple(data.get("tags", ()))})


@dataclass
class TestResult:
    """The outcome of one graded test, as the parent will report it."""

    __test__ = False

    nodeid: str
    score: float
    status: str  # "passed" | "failed"
    output: str = ""
    duration: float = 0.0
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    staff_notes: list[str] = field(default_factory=list)  # from trusted checks, for course staff
    # A failed test's kind (FAILURE_KINDS below: "syntax", "missing",
    # "todo", "failed") and one line of what caused it, for the report's grouping.
    kind: str = ""
    cause: str = ""
    # "Possible cause" hints the grader added (grader.controller.mutant_hints.attach), as data: the output also
    # holds what student code printed, so nothing reads them back from the text. Never taken
    # from a child (from_json leaves it empty).
    hints: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        return cls(
            nodeid=str(data["nodeid"]),
            score=float(data["score"]),
            status="passed" if data.get("status") == "passed" else "failed",
            output=str(data.get("output", "")),
            duration=float(data.get("duration", 0.0)),
            leaderboard=list(data.get("leaderboard", [])),
            staff_notes=[str(n) for n in data.get("staff_notes", [])],
            kind=str(data.get("kind", "")),
            cause=str(data.get("cause", "")),
        )


MAX_OUTPUT = 20_000  # characters of one test's output accepted from a child
MAX_CAUSE = 300  # characters of a failure's one-line cause
# A failed test's kinds (grader.testprocess.failure_messages classifies), in the order a student
# should see to them: the machine lacks data or a model, the code does not parse, a file is
# missing — those three mean the test could not run at all (CANNOT_RUN) — then a wrong answer,
# then a stub still to fill in.
FAILURE_KINDS = ("setup", "syntax", "missing", "failed", "todo")
CANNOT_RUN = FAILURE_KINDS[:3]
MAX_BOARD_ENTRIES = 5  # leaderboard values one test may report
MAX_STAFF_NOTES, MAX_STAFF_NOTE = 3, 500  # notes for staff one trusted check may report, chars


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def validated_result(data: dict[str, Any], meta: TestMeta) -> TestResult:
    """A child's result event for ``meta``'s test, held to what the manifest allows.

    The score is a finite number within [0, max points] (anything else counts as 0); the status
    is "passed" only with full points; the output is text of bounded length; leaderboard entries
    only from a test marked ``leaderboard``, under that marker's name and order, with a finite
    number or a short string as value; notes for staff only from a trusted check (which runs no
    student code), at most MAX_STAFF_NOTES of bounded length.
    """
    score = _finite(data.get("score")) or 0.0
    score = min(max(score, 0.0), meta.max_score)
    output = data.get("output")
    output = output[:MAX_OUTPUT] if isinstance(output, str) else ""
    board: list[dict[str, Any]] = []
    entries = data.get("leaderboard")
    if meta.leaderboard and isinstance(entries, list):
        for entry in entries[:MAX_BOARD_ENTRIES]:
            if not isinstance(entry, dict) or entry.get("name") != meta.leaderboard["name"]:
                continue
            value = entry.get("value")
            number = _finite(value)
            if number is not None:
                value = number
            elif not (isinstance(value, str) and len(value) <= 100):
                continue
            board.append(
                {
                    "name": meta.leaderboard["name"],
                    "value": value,
                    "order": meta.leaderboard.get("order", "desc"),
                }
            )
    notes = data.get("staff_notes")
    staff_notes = (
        [n[:MAX_STAFF_NOTE] for n in notes[:MAX_STAFF_NOTES] if isinstance(n, str)]
        if meta.trusted and isinstance(notes, list)
        else []
    )
    status = "passed" if data.get("status") == "passed" and score >= meta.max_score else "failed"
    kind = data.get("kind") if data.get("kind") in FAILURE_KINDS else "failed"
    cause = data.get("cause")
    return TestResult(
        nodeid=meta.nodeid,
        score=round(score, 4),
        status=status,
        kind="" if status == "passed" else kind,
        cause=cause[:MAX_CAUSE] if isinstance(cause, str) and status != "passed" else "",
        output=output,
        duration=max(_finite(data.get("duration")) or 0.0, 0.0),
        leaderboard=board,
        staff_notes=staff_notes,
    )
