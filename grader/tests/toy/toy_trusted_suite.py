"""A tiny suite with trusted checks (tests that run no student code), for grader/tests/test_trusted.py.

Named so that `pytest grader/tests` does not collect it. Points: 1 untrusted + 2 + 1 + 1 + 1 + 1 + 1
trusted = 8.
"""

import os
import sys
import time
from pathlib import Path

import pytest

from grader.testprocess import deliverables
from grader.testprocess.deliverables import DeliverableError, deliverable

alpha = deliverable("toy_pkg.alpha")


@pytest.mark.points(1)
@pytest.mark.number("1")
def test_add():
    """add two numbers (student code)"""
    _where("graded")
    assert alpha.add(1, 2) == 3


def _where(kind: str) -> None:
    """With TOY_WHERE set: note which process ran this test and whether it had ``colorsys``
    (the preload of grader/tests/test_trusted.py) loaded."""
    if os.environ.get("TOY_WHERE"):
        with open(os.environ["TOY_WHERE"], "a") as f:
            f.write(f"{kind} {os.getpid()} {'colorsys' in sys.modules}\n")


@pytest.mark.points(2)
@pytest.mark.number("2")
@pytest.mark.trusted("reads the submitted answer file as data, and a held-out file")
def test_answer_file(graded_tree):
    """the submitted answer matches the held-out one"""
    submitted = (graded_tree / "toy_pkg" / "answer.txt").read_text().strip()
    assert submitted == os.environ.get("TOY_HELDOUT_ANSWER", "42")


@pytest.mark.points(1)
@pytest.mark.number("3")
@pytest.mark.trusted("proves that trusted checks cannot run student code")
def test_trusted_checks_cannot_import_deliverables():
    """a trusted check that touched student code would fail"""
    with pytest.raises(DeliverableError, match="may not be imported here"):
        alpha.add(1, 2)
    assert isinstance(deliverables.resolver(), deliverables.Refused)


@pytest.mark.points(1)
@pytest.mark.number("4")
@pytest.mark.trusted("proves that student code has ended when a trusted check runs")
def test_no_student_code_runs_beside_a_trusted_check():
    """what student code started (a thread writing a heartbeat file) has stopped"""
    beat = os.environ.get("TOY_HEARTBEAT")
    if not beat or not Path(beat).exists():
        return  # the submission started nothing
    before = Path(beat).stat().st_size
    time.sleep(0.5)
    assert Path(beat).stat().st_size == before, "student code still runs"


@pytest.mark.points(1)
@pytest.mark.number("5")
@pytest.mark.timeout(2)
@pytest.mark.trusted("stands for a slow trusted check (an accuracy check on a loaded machine)")
def test_a_slow_trusted_check():
    """a trusted check that, when TOY_SLOW_CHECK is set, runs past its time limit"""
    time.sleep(float(os.environ.get("TOY_SLOW_CHECK", "0")))


@pytest.mark.points(1)
@pytest.mark.number("6")
@pytest.mark.trusted("stands for a trusted check the machine's out-of-memory killer stops")
def test_a_trusted_check_killed():
    """a trusted check that, when TOY_KILL_CHECK is set, is killed (SIGKILL) as it runs"""
    if os.environ.get("TOY_KILL_CHECK"):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.points(1)
@pytest.mark.number("7")
@pytest.mark.trusted("notes the process it runs in")
def test_where_a_trusted_check_runs():
    """a trusted check notes its process (TOY_WHERE)"""
    _where("trusted")
