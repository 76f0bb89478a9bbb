"""A normal (non-editable) install grades an assignment from a kit folder given explicitly, and
its wheel carries the grader and coursekit without the kit's own tests."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from grader.course import KIT_ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed into a folder of its own (its dependencies
    come from this environment), and a kit folder without the packages' sources."""
    tmp = tmp_path_factory.mktemp("install")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp / "wheel"),
            str(KIT_ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp / "wheel").glob("*.whl")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(tmp / "site"),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    kit = tmp / "course"  # an instructor's course folder: no grader/ or coursekit/ sources
    for name in ("tests", "reference", "student_template"):
        shutil.copytree(KIT_ROOT / name, kit / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(KIT_ROOT / "pyproject.toml", kit)
    return wheel, tmp / "site", kit


def test_the_wheel_leaves_the_kits_own_tests_out(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "grader/commands/cli.py" in names and "coursekit/data.py" in names
    assert "grader/controller/schema/gradescope_results.schema.json" in names
    assert not [n for n in names if n.startswith("grader/tests/")]


def test_an_installed_grader_grades_from_the_kit_folder_it_is_given(installed, tmp_path):
    _, site, kit = installed
    env = {**os.environ, "PYTHONPATH": str(site), "COURSEKIT_KIT": str(kit)}
    code = (
        "import grader, coursekit\n"
        "from grader import course\n"
        "from grader.controller import grading\n"
        f"assert grader.__file__.startswith({str(site)!r}), grader.__file__\n"
        "g = grading.grade('a1_lm_basics', course.REFERENCE, files={'test_softmax.py'})\n"
        "print(course.REFERENCE, g.score, g.max_score)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    where, score, top = done.stdout.split()
    assert where == str(kit / "reference") and score == top and float(top) > 0
    # the command line: --kit names the folder; a folder that is not a kit is refused
    env.pop("COURSEKIT_KIT")
    bad = subprocess.run(
        [sys.executable, "-m", "grader", "--kit", str(tmp_path), "grade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "is not a kit folder" in bad.stderr
