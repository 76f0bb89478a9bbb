"""The records that cross the process boundary between the grader and its pytest child.

The parent learns every test and its maximum points from a *manifest* (written by a collect-only
run that executes no student code), then receives one *result* per test from the child over a pipe.
Both are plain JSON so that a dead or hostile child can never hand the parent a Python object.
"""

from __future__ import annotations

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
    trusted: bool = False  # runs no student code; graded in a child that is never the student user

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestMeta:
        return cls(**{**data, "tags": tuple(data.get("tags", ()))})


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
        )
