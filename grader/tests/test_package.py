"""What leaves the repository: the handout holds and fetches public data alone, and grades on
public stand-ins saying so; the autograder zip carries the held-out files the tests score."""

import hashlib
import os
import subprocess
import sys
import tomllib
import zipfile

import pytest

from coursekit import data
from grader import course, limits
from grader.commands import package
from grader.course import KIT_ROOT

ASSIGNMENTS = course.names()


@pytest.fixture(scope="module")
def handout_a1(tmp_path_factory):
    return package.handout("a1_lm_basics", tmp_path_factory.mktemp("handout"))


def _public_folder(folder, assignment: str):
    """A data folder holding the assignment's public files alone, as a handout's `make data`
    leaves it."""
    for name in course.data_needs(assignment).public:
        data.materialize(name, folder)
    return folder


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_figure_reads_heldout_files_that_no_public_list_holds(assignment):
    needs = course.data_needs(assignment)
    assert needs.heldout, f"{assignment}: its graded figures are scored on held-out data"
    assert not set(needs.public) & set(needs.heldout)


def test_the_handout_lists_and_fetches_public_files_only(handout_a1):
    needs = course.data_needs("a1_lm_basics")
    toml = tomllib.loads((handout_a1 / "tests" / "a1_lm_basics" / "assignment.toml").read_text())
    assert toml["data"]["heldout"] == [] and toml["data"]["public"] == list(needs.public)
    kit = course.settings("a1_lm_basics")
    assert {k: v for k, v in toml.items() if k != "data"} == {
        k: v for k, v in kit.items() if k != "data"
    }
    make_data = next(
        line
        for line in (handout_a1 / "Makefile").read_text().splitlines()
        if "coursekit.data" in line
    )
    assert make_data.split("coursekit.data", 1)[1].split() == list(needs.public)
    for name in needs.heldout:
        assert name not in (handout_a1 / "Makefile").read_text()
    assert not (handout_a1 / "data").exists()


def test_the_autograder_zip_carries_the_heldout_files(tmp_path):
    archive = package.autograder("a1_lm_basics", tmp_path)
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        needs = course.data_needs("a1_lm_basics")
        for name in (*needs.public, *needs.heldout):
            assert f"kit/data/{name}" in names
        for name in ("imdb/heldout_test.jsonl", "tinyshakespeare/train.txt"):  # derived
            digest = hashlib.md5(zf.read(f"kit/data/{name}")).hexdigest()
            assert digest == data.DATASETS[name.split("/")[0]].md5[name.split("/")[1]], name
        assert "kit/data/imdb/test.jsonl.gz" not in names  # the sample's source stays home
        toml = tomllib.loads(zf.read("kit/tests/a1_lm_basics/assignment.toml").decode())
        assert toml["data"]["heldout"] == list(needs.heldout)


def test_derived_files_are_made_in_memory_from_a_read_only_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    data.materialize("tinyshakespeare/input.txt", folder)
    for path in [*folder.rglob("*"), folder]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    monkeypatch.setenv(data.ENV, str(folder))
    text = data.read_text("tinyshakespeare", "train.txt")
    assert (
        hashlib.md5(text.encode()).hexdigest() == data.DATASETS["tinyshakespeare"].md5["train.txt"]
    )
    assert data.ensure(["tinyshakespeare/train.txt"]) == []
    assert not (folder / "tinyshakespeare" / "train.txt").exists()


def _grade(cwd, data_dir, *args):
    env = {**os.environ, data.ENV: str(data_dir), data.DOWNLOAD_ENV: "0"}
    return subprocess.run(
        [sys.executable, "-m", "grader", "grade", "-a", "a1_lm_basics", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.timeout(600)
def test_the_kit_requires_its_heldout_files_a_handout_scores_public_stand_ins(handout_a1, tmp_path):
    """With public data alone: the kit stops with a setup problem naming the held-out files; a
    handout grades, scoring the public stand-ins and saying that Gradescope scores held-out data."""
    public = _public_folder(tmp_path / "public", "a1_lm_basics")
    kit = _grade(KIT_ROOT, public, "--impl", "reference")
    assert kit.returncode == 3, kit.stdout + kit.stderr
    for name in course.data_needs("a1_lm_basics").heldout:
        assert name.split("/")[-1] in kit.stderr
    # A DAN that learns nothing, graded in the handout: its message names the stand-in.
    broken = tmp_path / "broken" / "a1_lm_basics"
    broken.mkdir(parents=True)
    for f in (course.REFERENCE / "a1_lm_basics").glob("*.py"):
        (broken / f.name).write_text(f.read_text())
    dan = broken / "dan.py"
    dan.write_text(dan.read_text().replace("idx != self.pad_id)  # (B, C)", "idx == self.pad_id)"))
    out = _grade(handout_a1, public, "--impl", str(broken.parent))
    assert out.returncode in (0, 1), out.stdout + out.stderr
    assert "Setup problem" not in out.stdout + out.stderr
    assert "public dev data in this handout; Gradescope scores 1,000 held-out" in out.stdout


def test_each_install_holds_only_what_its_assignment_imports(handout_a1, tmp_path):
    """A handout's `make setup` and an autograder's setup.sh install the core and the extras the
    assignment's assignment.toml names, no other (assignment 1: no transformers, datasets, peft
    or matplotlib). Grading refuses the others (Limits.absent), so `make test` grading every
    assignment proves the light installs suffice."""
    assert '$(PIP) -e "."\n' in (handout_a1 / "Makefile").read_text()
    with zipfile.ZipFile(package.autograder("a3_attention_bert", tmp_path)) as zf:
        assert '-e "kit[transformers]"' in zf.read("setup.sh").decode()
    core = tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [r for r in core if r.split("==")[0] in ("transformers", "datasets", "peft")]
    a1 = course.limits_for("a1_lm_basics", limits.Limits()).absent
    assert {"transformers", "datasets", "peft", "matplotlib"} <= set(a1)
    assert "transformers" not in course.limits_for("a3_attention_bert", limits.Limits()).absent


def test_plain_pytest_in_a_handout_grades_the_students_folder(handout_a1):
    """A handout holds no reference: its ini names the student's folder, so `pytest tests/<a>`
    runs the student's code (here the untouched stubs), never an empty reference/."""
    ini = tomllib.loads((handout_a1 / "pyproject.toml").read_text())["tool"]["pytest"]
    assert ini["ini_options"]["grader_impl"] == "student_template"
    assert not (handout_a1 / "reference").exists()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/a1_lm_basics/test_softmax.py", "-q"],
        cwd=handout_a1,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "NotImplementedError" in done.stdout and "Could not find" not in done.stdout, done.stdout


def test_the_handout_readme_says_what_to_upload(handout_a1):
    readme = (handout_a1 / "README.md").read_text()
    assert "Upload to Gradescope" in readme and "student_template/a1_lm_basics/" in readme


@pytest.mark.parametrize(
    "grader_user, switched_to",
    [(None, "student"), ("", None), ("student-2", "student-2")],
    ids=["unset-the-student-user", "empty-no-user-switch", "a-user-of-ones-own"],
)
def test_grader_user_empty_turns_the_user_switch_off_as_user_empty_does(
    tmp_path, monkeypatch, grader_user, switched_to
):
    """``run_autograder`` passes GRADER_USER to ``python -m grader gradescope --user``: unset,
    the unprivileged ``student``; set, that user; set and empty, no user switch at all —
    what ``--user ''`` means. The script runs as written into the zip, with a stand-in
    interpreter that prints its arguments; they are then parsed by the CLI, whose user
    reaches the Gradescope flow."""
    script = tmp_path / "run_autograder"
    script.write_text(package.RUN_AUTOGRADER.format(assignment="a1_lm_basics"))
    (tmp_path / "source" / "kit").mkdir(parents=True)
    echo = tmp_path / "python"
    echo.write_text('#!/bin/sh\nprintf "%s\\0" "$@"\n')
    echo.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "GRADER_USER"}
    env.update(AUTOGRADER_ROOT=str(tmp_path), GRADER_PYTHON=str(echo))
    if grader_user is not None:
        env["GRADER_USER"] = grader_user
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    argv = done.stdout.split("\0")[:-1]
    assert argv[:3] == ["-m", "grader", "gradescope"], argv

    from grader.commands import autograder, cli

    seen = []
    monkeypatch.setattr(autograder, "run", lambda name, root, user, limits: seen.append(user) or {})
    args = cli.parser().parse_args(argv[2:])
    assert args.root == str(tmp_path)
    args.func(args)
    assert seen == [switched_to], (
        f"GRADER_USER={grader_user!r} graded as {seen[0]!r}, not {switched_to!r}: an empty "
        "GRADER_USER means no user switch, as --user '' does (the script must write "
        '"${GRADER_USER-student}": a default for an unset variable only)'
    )
