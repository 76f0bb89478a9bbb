"""Trusted checks: tests marked ``trusted`` run no student code at all (importing a deliverable
fails in them); the other tests reach student code through the boundary, in its own process."""

import dataclasses
import shutil
from pathlib import Path

import pytest

from grader.controller import zygote
from grader.controller.runner import run_collecting
from grader.limits import Limits

TOY = Path(__file__).parent / "toy"
SUITE = [TOY / "toy_trusted_suite.py"]
FAST = Limits(grace=2.0, startup_timeout=60.0, exit_wait=1.0)
APART = dataclasses.replace(FAST, trusted_apart=True, preload=("colorsys",))


def submission(tmp_path: Path, answer: str, alpha: str | None = None) -> Path:
    root = tmp_path / "submission"
    shutil.copytree(TOY / "good", root)
    (root / "toy_pkg" / "answer.txt").write_text(answer)
    if alpha is not None:
        (root / "toy_pkg" / "alpha.py").write_text(alpha)
    return root


def grade(impl: Path, limits: Limits = FAST):
    """What grader.controller.grading.grade does: one grading child, learning every test; the trusted
    checks run last, once the deliverable process has ended (or in a child of their own, after
    it: ``APART``)."""
    manifest, results = run_collecting(SUITE, impl, limits, mode="graded")
    return manifest, {r.nodeid.rsplit("::", 1)[1]: r for r in results.values()}


def test_the_manifest_knows_which_tests_are_trusted_and_both_parts_run(tmp_path):
    manifest, results = grade(submission(tmp_path, "42"))
    assert {m.nodeid.rsplit("::", 1)[1]: m.trusted for m in manifest.tests} == {
        "test_add": False,
        "test_answer_file": True,
        "test_trusted_checks_cannot_import_deliverables": True,
        "test_no_student_code_runs_beside_a_trusted_check": True,
        "test_a_slow_trusted_check": True,
        "test_a_trusted_check_killed": True,
        "test_where_a_trusted_check_runs": True,
    }
    assert all(r.status == "passed" for r in results.values()), results
    assert sum(r.score for r in results.values()) == 8


def test_trusted_checks_apart_run_in_a_lean_process_of_their_own(tmp_path, monkeypatch):
    """[boundary] trusted_apart: the trusted checks run in a child started after the one that
    ran student code, which loaded nothing preloaded for student code (so the checks' peak
    memory is not added to it); every test has its result, the manifest is whole."""
    monkeypatch.setattr(zygote, "_active", None)  # fresh children, as on Gradescope
    where = tmp_path / "where"
    where.touch()
    monkeypatch.setenv("TOY_WHERE", str(where))
    manifest, results = grade(submission(tmp_path, "42"), APART)
    assert len(manifest.tests) == 7
    assert all(r.status == "passed" for r in results.values()), results
    assert sum(r.score for r in results.values()) == 8
    (graded, graded_pid, graded_preloaded), (trusted, trusted_pid, trusted_preloaded) = (
        line.split() for line in where.read_text().splitlines()
    )
    assert (graded, trusted) == ("graded", "trusted")
    assert graded_pid != trusted_pid, "the trusted check ran in the student-code child"
    assert (graded_preloaded, trusted_preloaded) == ("True", "False")


def test_a_wrong_answer_file_loses_only_its_check(tmp_path):
    _, results = grade(submission(tmp_path, "41"))
    assert results["test_answer_file"].score == 0
    assert results["test_add"].status == "passed"


@pytest.mark.parametrize("limits", [FAST, APART], ids=["together", "apart"])
def test_student_code_that_ends_the_process_cannot_touch_the_trusted_checks(tmp_path, limits):
    impl = submission(tmp_path, "42", alpha="import os\nos._exit(0)\n")
    _, results = grade(impl, limits)
    assert results["test_add"].score == 0
    assert results["test_answer_file"].status == "passed"


HEARTBEAT = """
import os, threading, time


def _beat():
    while True:
        with open(os.environ["TOY_HEARTBEAT"], "a") as f:
            f.write(".")
        time.sleep(0.05)


threading.Thread(target=_beat, daemon=True).start()


def add(a, b):
    return a + b
"""


def test_student_code_has_ended_before_the_trusted_checks_run(tmp_path, monkeypatch):
    beat = tmp_path / "beat"
    beat.touch()
    beat.chmod(0o666)  # the student user writes it (when the tests run as root)
    tmp_path.chmod(0o755)
    monkeypatch.setenv("TOY_HEARTBEAT", str(beat))
    _, results = grade(submission(tmp_path, "42", alpha=HEARTBEAT))
    assert results["test_add"].status == "passed"
    assert beat.stat().st_size > 0  # the student's thread ran
    check = results["test_no_student_code_runs_beside_a_trusted_check"]
    assert check.status == "passed", check.output


@pytest.mark.parametrize("limits", [FAST, APART], ids=["together", "apart"])
@pytest.mark.parametrize(
    ("env", "check", "says"),
    [
        ("TOY_SLOW_CHECK", "test_a_slow_trusted_check", "The grader's own check ran out of time"),
        ("TOY_KILL_CHECK", "test_a_trusted_check_killed", "The grader's own check stopped"),
    ],
    ids=["out-of-time", "killed"],
)
def test_a_trusted_check_that_cannot_finish_is_the_graders_problem(
    tmp_path, monkeypatch, env, check, says, limits
):
    """A trusted check runs no student code: when it runs out of time or its process is killed
    (the machine's out-of-memory killer), the message says so, never "your loop" or "your
    memory"; the other tests keep their results (after a kill, in a fresh child)."""
    monkeypatch.setenv(env, "30")
    _, results = grade(submission(tmp_path, "42"), limits)
    assert results[check].score == 0
    assert says in results[check].output, results[check].output
    assert "infinite loop" not in results[check].output
    assert "The process running your code" not in results[check].output
    assert results["test_answer_file"].status == "passed"
    assert results["test_add"].status == "passed"


@pytest.mark.parametrize("start", ["forked", "fresh"])
def test_a_package_the_assignments_install_lacks_cannot_be_imported(tmp_path, monkeypatch, start):
    """Grading refuses the packages an assignment's light install leaves out (Limits.absent, from
    pyproject.toml's extras), in the test process and in student code alike — also one that a
    preload had imported already (colorsys: sympy imports it, and the zygote imports sympy)."""
    if start == "fresh":
        monkeypatch.setattr(zygote, "_active", None)
    impl = submission(tmp_path, "42", alpha="import colorsys\n\ndef add(a, b):\n    return a + b\n")
    absent = Limits(grace=2.0, startup_timeout=60.0, exit_wait=1.0, absent=("colorsys",))
    _, results = run_collecting(SUITE, impl, absent, mode="graded")
    add = next(r for n, r in results.items() if n.endswith("test_add"))
    assert add.score == 0
    assert "No module named 'colorsys': this assignment's install does not include it" in add.output
    _, results = run_collecting(SUITE, impl, FAST, mode="graded")  # installed: it imports
    assert next(r for n, r in results.items() if n.endswith("test_add")).score == 1
