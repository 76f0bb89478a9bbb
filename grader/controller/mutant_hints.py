"""Teach from the mutant catalogue: a failed test gets the hint of the known mistake it matches.

Each mutant in ``tests/<assignment>/mutants.toml`` names the tests it breaks and a hint. When a
submission fails a test, the mutants that break that test are candidates, ranked by how closely
the tests each breaks match the tests this submission failed (:func:`_likeness`).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader.course import KIT_ROOT
from grader.records import CANNOT_RUN, TestMeta, TestResult

MAX_HINTS = 2


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # relative to the assignment package
    find: str
    replace: str
    breaks: tuple[str, ...]  # "test_file.py::test_function"
    hint: str


def catalogue_path(assignment: str) -> Path:
    return KIT_ROOT / "tests" / assignment / "mutants.toml"


def load(assignment: str) -> list[Mutant]:
    """The catalogue; where it was left out (autograder zips, handouts), its hints alone."""
    path = catalogue_path(assignment)
    if not path.exists():
        shipped = path.with_name("hints.json")
        if not shipped.exists():
            return []
        return [
            Mutant(h["id"], "", "", "", tuple(h["breaks"]), h["hint"])
            for h in json.loads(shipped.read_text())
        ]
    data = tomllib.loads(path.read_text())
    mutants = []
    for m in data.get("mutant", []):
        mutants.append(
            Mutant(
                m["id"], m["file"], m["find"], m["replace"], tuple(m["breaks"]), m["hint"].strip()
            )
        )
    return mutants


def test_key(nodeid: str) -> str:
    """``tests/a1/test_x.py::test_f[case]`` -> ``test_x.py::test_f`` (the catalogue's test names)."""
    path, _, name = nodeid.partition("::")
    return f"{path.rsplit('/', 1)[-1]}::{name.split('[', 1)[0]}"


def _likeness(mutant: Mutant, failed: set[str]) -> float:
    """How much the tests a mutant breaks look like the tests this submission failed: Jaccard
    similarity of the two sets within the test files the mutant touches, plus 1 when every test
    it breaks failed. A mutant that breaks every test of a file ranks low for a submission that
    fails one of them; one that breaks exactly the failed tests ranks first."""
    breaks = set(mutant.breaks)
    files = {b.split("::")[0] for b in breaks}
    nearby = {f for f in failed if f.split("::")[0] in files}
    return len(breaks & nearby) / len(breaks | nearby) + (breaks <= failed)


# A failure whose message holds one of these is not a mistake in the code's logic, so no
# "Possible cause" hint: a stub still to fill in, code that does not load, a missing file, a
# problem of the grading machine's setup (missing data or model).
NO_HINT = (
    "NotImplementedError",
    "SyntaxError",
    "IndentationError",
    "ModuleNotFoundError",
    "ImportError",
    "No artifact at",
    "Setup problem",
)


# Failures of these kinds (TestResult.kind) get no hint either: a file missing, code that does not
# parse, a stub, a setup problem.
NO_HINT_KINDS = (*CANNOT_RUN, "todo")


def attach(assignment: str, metas: list[TestMeta], results: dict[str, TestResult]) -> None:
    mutants = load(assignment)
    if not mutants:
        return
    failed = {test_key(n) for n, r in results.items() if r.status == "failed"}
    for meta in metas:
        res = results[meta.nodeid]
        if (
            res.status == "passed"
            or res.kind in NO_HINT_KINDS
            or any(m in res.output for m in NO_HINT)
        ):
            continue  # a stub to fill in, code that does not load, a setup problem: no hint
        key = test_key(meta.nodeid)
        candidates = [m for m in mutants if key in m.breaks]
        candidates.sort(key=lambda m: -_likeness(m, failed))
        if candidates:
            res.hints = [m.hint for m in candidates[:MAX_HINTS]]
            res.output += "\n\n" + "\n".join(f"Possible cause: {h}" for h in res.hints)
