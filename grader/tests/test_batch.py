"""Batch regrading: a hanging and a crashing submission never stop the batch."""

import csv
import zipfile

import pytest

from grader import assignments, batch, hints
from grader.runner import Limits

A = "a1_lm_basics"
SOFTMAX = {"test_softmax.py"}  # one test file keeps the batch quick; every file works alike


def reference_files(folder, patch=None):
    """All of the reference's modules in ``folder`` (what a finished student uploads)."""
    folder.mkdir(parents=True)
    for src in (assignments.REFERENCE / A).glob("*.py"):
        text = src.read_text()
        if patch is not None and src.name == patch.file:
            text = text.replace(patch.find, patch.replace)
        (folder / src.name).write_text(text)


@pytest.mark.timeout(300)  # five gradings, one hanging and one crashing child after child
def test_a_batch_with_hanging_and_crashing_submissions(tmp_path):
    subs = tmp_path / "subs"
    reference_files(subs / "alice")
    mutant = next(m for m in hints.load(A) if m.id == "ce-sum-not-mean")
    reference_files(subs / "bob", patch=mutant)
    (subs / "carol").mkdir()  # hangs in every function
    (subs / "carol" / "softmax.py").write_text(
        "def softmax(x, dim=-1):\n    while True:\n        pass\n"
    )
    with zipfile.ZipFile(subs / "dave.zip", "w") as zf:  # crashes the process at import
        zf.writestr(f"{A}/softmax.py", "import os\nos._exit(3)\n")
    (subs / "erin.txt").write_text("not a submission")
    out = tmp_path / "out"
    graded = batch.grade_all(
        subs, A, out, jobs=2, limits=Limits(test_timeout=3, grace=2, exit_wait=1), files=SOFTMAX
    )
    scores = {g.name: g.grade.score for g in graded if g.grade}
    full = next(g.grade.max_score for g in graded if g.grade)
    assert scores["alice"] == full
    assert 0 < scores["bob"] < full
    assert scores["carol"] == 0 and scores["dave"] == 0 and scores["erin"] == 0
    rows = list(csv.DictReader(open(out / "gradebook.csv")))
    assert [r["submission"] for r in rows] == ["alice", "bob", "carol", "dave", "erin"]
    tests = list(csv.DictReader(open(out / "tests.csv")))
    ce = next(t for t in tests if t["test"] == "1.3")
    assert ce["passed"] == "1" and ce["most_common_hint"].startswith(
        "cross_entropy returns the mean"
    )
    assert (out / "histogram.png").stat().st_size > 1000
    assert len(list((out / "results").glob("*.json"))) == 5


@pytest.mark.timeout(180)
def test_a_gradescope_export_zip(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("submission_metadata.yml", "submission_1: {}\n")
        for src in (assignments.REFERENCE / A).glob("*.py"):
            zf.writestr(f"submission_1/{src.name}", src.read_text())
        zf.writestr("submission_2/README.md", "empty")
    graded = batch.grade_all(export, A, tmp_path / "out", jobs=2, files=SOFTMAX)
    assert sorted(g.name for g in graded) == ["submission_1", "submission_2"]
    by = {g.name: g.grade.score for g in graded}
    assert by["submission_1"] > 0 and by["submission_2"] == 0
