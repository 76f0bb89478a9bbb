"""``python -m grader new NAME`` in a kit of its own: the new assignment validates at once
(reference full marks, template zero) and is graded from its autograder zip as Gradescope grades
it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grader import course
from grader.commands import scaffold
from grader.tests.conftest import SYSTEM_PYTHON
from grader.tests.test_gradescope_e2e import run_autograder, unpacked

NAME = "a9_demo"
SHARED = ("conftest.py", "compare.py", "strategies.py", "twin.py", "instruments.py")


def _kit_without_assignments(root: Path) -> Path:
    """A kit folder with the engine, the course's shared code and test helpers, and no
    assignment: what a course that starts from this kit has before its first."""
    root.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "tests", "a[0-9]_*")
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(course.KIT_ROOT / name, root / name)
    for package in ("grader", "coursekit"):
        shutil.copytree(course.KIT_ROOT / package, root / package, ignore=skip)
    (root / "tests").mkdir()
    for name in SHARED:
        shutil.copy(course.TESTS / name, root / "tests" / name)
    (root / "reference").mkdir()
    (root / "student_template").mkdir()
    return root


def _grader(kit: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != course.KIT_ENV}
    return subprocess.run(
        [sys.executable, "-m", "grader", "--kit", str(kit), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.timeout(900)
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="needs /usr/bin/python3.11")
def test_a_new_assignment_validates_at_once_and_grades_on_gradescope():
    base = Path(tempfile.mkdtemp(prefix="new-assignment-"))
    base.chmod(0o755)  # the student user reaches the stand-in /autograder inside
    try:
        kit = _kit_without_assignments(base / "kit")
        done = _grader(kit, "new", NAME)
        assert done.returncode == 0, done.stdout + done.stderr
        for relative, _, _ in scaffold.PLACES:
            assert (kit / relative.format(a=NAME)).is_file(), relative
        assert f"== validate {NAME}: ok" in done.stdout, done.stdout
        assert "reference: 3 / 3" in done.stdout and "template:  0 / 3" in done.stdout
        stub = (kit / "student_template" / NAME / "example.py").read_text()
        assert "NotImplementedError" in stub and "x * factor" not in stub

        built = _grader(kit, "autograder", "-a", NAME, "--out", str(base / "out"))
        assert built.returncode == 0, built.stdout + built.stderr
        archive = next((base / "out").glob(f"*{NAME}*.zip"))
        (base / "gradescope").mkdir(mode=0o755)
        for root, _, user in unpacked(archive, base / "gradescope"):
            for tree, expected in (("reference", 3), ("student_template", 0)):
                files = {p.name: p.read_bytes() for p in (kit / tree / NAME).glob("*.py")}
                data = run_autograder(root, user, files)
                assert data["score"] == expected, (tree, data.get("output", "")[:2000])
                assert len(data["tests"]) == 2
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    "name, why",
    [("A-9", "cannot name"), ("class", "cannot name"), ("a1_lm_basics", "exists already")],
)
def test_a_name_that_cannot_be_an_assignment_is_refused(name, why):
    with pytest.raises(scaffold.ScaffoldError, match=why):
        scaffold.check_name(name, course.KIT_ROOT)
