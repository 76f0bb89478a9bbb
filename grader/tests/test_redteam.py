"""The red-team corpus (``redteam/corpus.toml``): every submission there tries to break or fool
the grader, and must get exactly the score and message its entry says.

Each is graded as Gradescope grades: the parent judges recorded values against a run of the
reference (``--verdicts``), and — when these tests run as root — student code runs as an
unprivileged user of its own, with the reference's records and a held-out file readable by root
alone. Entries that need that user switch are skipped, saying so, when not root. Two lanes grade
in parallel, each with its own user (the grader kills every process of the student user after a
run, so two runs must not share one).
"""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import subprocess
import tempfile
import time
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grader import assignments, gradescope, runner, submission
from grader.runner import Limits, Manifest, collect
from grader.tests.conftest import SYSTEM_PYTHON, standin_python

CORPUS = tomllib.loads((Path(__file__).parent / "redteam" / "corpus.toml").read_text())["attack"]
A1 = "a1_lm_basics"
USERS = ("kitredteam1", "kitredteam2")
AS_ROOT = os.geteuid() == 0 and SYSTEM_PYTHON.exists()  # else no user switch
LIMITS = Limits(test_timeout=10, grace=5, exit_wait=1.0)
WRONG = ("    return e / e.sum(dim=dim, keepdim=True)", "    return e / e.sum(dim=0, keepdim=True)")
BASELINE = {"id": "honest-mistake", "start": "wrong", "expect": "-"}


def _key(entry: dict) -> tuple[str, tuple[str, ...]]:
    return entry.get("assignment", A1), tuple(entry.get("tests", ["test_softmax.py"]))


@dataclass
class Outcome:
    scores: dict[str, float] = field(default_factory=dict)
    max_scores: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    report: str = ""
    data: dict = field(default_factory=dict)
    results_intact: bool = True
    skipped: str = ""


class Harness:
    def __init__(self, root: Path):
        self.root = root
        self.lanes: queue.Queue[str | None] = queue.Queue()
        for user in USERS if AS_ROOT else (None, None):
            self.lanes.put(user)
        self.heldout = root / "heldout" / "labels.tsv"
        self.heldout.parent.mkdir()
        self.heldout.write_text("sentence\tlabel\nheld-out sentence\t1\n")
        self.manifests: dict[tuple, Manifest] = {}
        self.records: dict[tuple, Path] = {}
        for key in {_key(e) for e in CORPUS}:
            assignment, files = key
            paths = [assignments.TESTS / assignment / f for f in files]
            self.manifests[key] = collect(paths, LIMITS)  # the limits the tests run under
            folder = root / "verdicts" / f"{assignment}-{len(self.records)}"
            self.records[key] = assignments.reference_records(assignment, folder, files=set(files))
        if AS_ROOT:  # what gradescope_run does: expected values and held-out data are root's alone
            for path in [root / "verdicts", *(root / "verdicts").rglob("*")]:
                path.chmod(0o700 if path.is_dir() else 0o600)
            self.heldout.chmod(0o600)

    def fill(self, text: str, results: Path) -> str:
        for name, value in (("results", results), ("verdicts", self.records[(A1, ("test_softmax.py",))]),
                            ("heldout", self.heldout)):  # fmt: skip
            text = text.replace("{" + name + "}", str(value))
        return text

    def tree(self, entry: dict, work: Path, results: Path) -> tuple[Path, str]:
        assignment = entry.get("assignment", A1)
        tree = work / "tree"
        if "upload" in entry or entry.get("zip_in_zip"):
            upload = work / "upload"
            upload.mkdir()
            ref = assignments.REFERENCE / assignment
            for name, source in entry.get("upload", {}).items():
                (upload / name).write_bytes((ref / source).read_bytes())
            if entry.get("zip_in_zip"):
                inner = io.BytesIO()
                with zipfile.ZipFile(inner, "w") as zf:
                    for f in ref.glob("*.py"):
                        zf.writestr(f"hw/{assignment}/{f.name}", f.read_bytes())
                with zipfile.ZipFile(upload / "outer.zip", "w") as zf:
                    zf.writestr("inner.zip", inner.getvalue())
            placed = submission.overlay(
                upload, assignments.TEMPLATE / assignment, tree / assignment
            )
            report = placed.report()
        else:
            package = tree / assignment
            shutil.copytree(assignments.REFERENCE / assignment, package,
                            ignore=shutil.ignore_patterns("__pycache__", "artifacts"))  # fmt: skip
            target = package / entry.get("module", "softmax.py")
            text = target.read_text()
            changes = [WRONG] if entry.get("start") == "wrong" else []
            changes += [(p["find"], p["replace"]) for p in entry.get("patch", [])]
            for find, replace in changes:
                assert text.count(find) == 1, f"{entry['id']}: {find!r} not found once"
                text = text.replace(find, self.fill(replace, results))
            target.write_text(self.fill(entry.get("prepend", ""), results) + text)
            for name, content in entry.get("files", {}).items():
                if content:
                    (package / name).write_text(content)
                else:
                    (package / name).unlink()
            report = ""
        for path in [work, *work.rglob("*")]:  # readable by the student user, as on Gradescope
            path.chmod(0o755 if path.is_dir() else 0o644)
        return tree, report

    def grade(self, entry: dict) -> Outcome:
        if entry.get("needs_user") and not AS_ROOT:
            return Outcome(skipped="needs root to run student code as a user of its own")
        work = self.root / "work" / entry["id"]
        work.mkdir(parents=True)
        results = self.root / "results" / entry["id"] / "results.json"
        results.parent.mkdir(parents=True)
        tree, report = self.tree(entry, work, results)
        key = _key(entry)
        user = self.lanes.get()
        try:
            g = assignments.grade(key[0], tree, hidden=True, limits=LIMITS,
                                  manifest=self.manifests[key], files=set(key[1]), user=user,
                                  verdicts=self.records[key])  # fmt: skip
        finally:
            self.lanes.put(user)
        data = gradescope.build(g.metas, g.results, execution_time=g.seconds, output=report)
        gradescope.write(results, data)  # the parent writes it, as gradescope_run does
        time.sleep(entry.get("settle", 0))
        out = Outcome(report=report, data=data)
        out.results_intact = json.loads(results.read_text()) == json.loads(json.dumps(data))
        for m in g.metas:
            name = m.nodeid.rsplit("::", 1)[1]
            out.scores[name] = g.results[m.nodeid].score
            out.max_scores[name] = m.max_score
            out.outputs[name] = g.results[m.nodeid].output
        return out


@pytest.fixture(scope="module")
def graded() -> dict[str, Outcome]:
    if AS_ROOT:
        for user in USERS:
            if subprocess.run(["id", user], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                                user], check=True)  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="redteam-"))
    root.chmod(0o755)  # pytest's own tmp folders are private to root; the student users need in
    saved = runner.PYTHON
    try:
        if AS_ROOT:  # this venv's interpreter may live under /root, out of the users' reach
            runner.PYTHON = str(standin_python(root / "venv", editable_kit=True))
        harness = Harness(root)
        with ThreadPoolExecutor(max_workers=len(USERS)) as pool:
            entries = [BASELINE, *CORPUS]
            outcomes = dict(zip([e["id"] for e in entries], pool.map(harness.grade, entries),
                                strict=True))  # fmt: skip
        yield outcomes
    finally:
        runner.PYTHON = saved
        shutil.rmtree(root, ignore_errors=True)


def test_the_corpus_is_big_and_well_formed():
    ids = [e["id"] for e in CORPUS]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)
    for e in CORPUS:
        assert e["expect"] in ("full", "no-gain", "lose"), e["id"]
        assert e.get("what"), e["id"]
        assert (e["expect"] == "lose") == bool(e.get("lost")), e["id"]


@pytest.mark.timeout(1500)  # the whole corpus, graded once for every entry's test below
@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
def test_attack(graded, entry):
    out = graded[entry["id"]]
    if out.skipped:
        pytest.skip(out.skipped)
    gradescope.validate(out.data)  # the results are always valid ...
    assert len(json.dumps(out.data)) < 1_000_000  # ... and small enough for Gradescope
    assert out.results_intact, "results.json was changed after the grader wrote it"
    full = {n: s == out.max_scores[n] for n, s in out.scores.items()}
    if entry["expect"] == "full":
        assert all(full.values()), {n: out.outputs[n] for n, ok in full.items() if not ok}
    elif entry["expect"] == "no-gain":
        honest = graded[BASELINE["id"]]
        assert sum(honest.scores.values()) < sum(honest.max_scores.values())
        for name, score in out.scores.items():
            assert score <= honest.scores[name], f"{name}: {score} > {honest.scores[name]}"
    else:
        lost = set(entry["lost"])
        assert lost <= set(out.scores), f"unknown tests in lost: {lost - set(out.scores)}"
        for name, ok in full.items():
            assert ok != (name in lost), f"{name}: {out.scores[name]} / {out.max_scores[name]}\n{out.outputs[name]}"  # fmt: skip
    if entry.get("message"):
        first = entry.get("lost", [None])[0]
        texts = [out.outputs[first]] if first else [out.report, *out.outputs.values()]
        assert any(entry["message"] in t for t in texts), texts[0][:2000]
