"""The overlay's budget (bytes, files) goes to the assignment's own files first.

An upload whose first 2,000 files were junk once had its real deliverables skipped (0 of 70 for a
correct solution). Files that can never be placed are now only named, neither copied nor
counted; the assignment's modules take the budget before zips, and zips before artifacts and
notebooks; inside a zip the same order holds.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from grader import course
from grader.intake import submission

A = "a1_lm_basics"
SOFTMAX = (course.REFERENCE / A / "softmax.py").read_text()


def _overlay(upload: Path, tmp_path: Path) -> tuple[submission.Overlay, Path]:
    target = tmp_path / "tree" / A
    placed = submission.overlay(upload, course.TEMPLATE / A, target)
    return placed, target


@pytest.mark.parametrize(
    "junk",
    [
        "notes-{:04}.txt",  # never placed: not even counted
        "aaa/helper_{:04}.py",  # modules the assignment has no place for
        "aaa/weights_{:04}.safetensors",  # placeable, but after the assignment's modules
        f"{A}/.venv/lib/pkg_{{:04}}/__init__.py",  # a folder inside the package: named like a
        # template file, but placed where no template file is (a helper: after the deliverables)
    ],
)
def test_junk_before_the_deliverables_cannot_push_them_out(tmp_path, junk):
    upload = tmp_path / "upload"
    for i in range(submission.MAX_FILES + 50):
        (upload / junk.format(i)).parent.mkdir(parents=True, exist_ok=True)
        (upload / junk.format(i)).write_bytes(b"x")
    (upload / "zzz").mkdir()
    (upload / "zzz" / "softmax.py").write_text(SOFTMAX)
    placed, target = _overlay(upload, tmp_path)
    assert "softmax.py" in placed.used
    assert (target / "softmax.py").read_text() == SOFTMAX


def test_inside_a_zip_the_deliverables_come_first(tmp_path):
    upload = tmp_path / "upload"
    upload.mkdir()
    with zipfile.ZipFile(upload / "hw.zip", "w") as zf:
        for i in range(submission.MAX_FILES + 50):
            zf.writestr(f"hw/data/sample_{i:04}.ipynb", "{}")
        zf.writestr(f"hw/{A}/softmax.py", SOFTMAX)
    placed, target = _overlay(upload, tmp_path)
    assert (target / "softmax.py").read_text() == SOFTMAX
    assert any("too large" in p for p in placed.problems)  # the junk did not fit, and said so


def test_the_byte_budget_still_holds(tmp_path):
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "softmax.py").write_text(SOFTMAX)
    with open(upload / "huge.safetensors", "wb") as f:
        f.truncate(submission.MAX_BYTES + 1)  # sparse: no disk used
    placed, target = _overlay(upload, tmp_path)
    assert (target / "softmax.py").read_text() == SOFTMAX
    assert not (target / "artifacts" / "huge.safetensors").exists()
    assert any("huge.safetensors: skipped" in p for p in placed.problems)
