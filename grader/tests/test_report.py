"""The terminal report: the total and a closing summary with the first thing to fix; untouched
stubs in one line each; code that does not load said once, up front, even with ``-q``; no
"Possible cause" hint for a file that is missing or a stub still to fill in."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import course
from grader.commands import terminal_report
from grader.controller.grading import Grade
from grader.records import TestMeta, TestResult

A = "a1_lm_basics"


def _grade_command(impl: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader", "grade", "-a", A, "--impl", str(impl), *extra]


def _piped(impl: Path, *extra: str) -> str:
    done = subprocess.run(
        _grade_command(impl, *extra),
        cwd=course.KIT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _on_a_terminal(impl: Path, *extra: str) -> str:
    """What a student sees in a terminal (a pseudo-terminal: progress lines and all)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the grader on the terminal
        os.chdir(course.KIT_ROOT)
        os.execv(sys.executable, _grade_command(impl, *extra))
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the terminal closed: the child is done
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def _last_lines(report: str, n: int) -> list[str]:
    return [line for line in report.splitlines() if line.strip()][-n:]


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    """The reference with a syntax error in softmax.py and dan.py missing."""
    root = tmp_path_factory.mktemp("broken")
    shutil.copytree(course.REFERENCE / A, root / A, ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / A / "softmax.py", "a") as f:
        f.write("\ndef broken(:\n")
    (root / A / "dan.py").unlink()
    return root


def test_untouched_stubs_give_a_short_report_that_ends_with_the_summary():
    report = _piped(course.TEMPLATE)
    lines = report.splitlines()
    assert len(lines) < 120, len(lines)  # 552 lines before: a block per test
    assert "Not implemented yet (43 tests" in report
    assert "     1.1  softmax: fill in the TODO above" in report
    assert "Possible cause" not in report
    summary, first = _last_lines(report, 2)
    assert summary.startswith("Summary: 0 / 76 points. Failed 43 of 43 tests: 1.1, 1.2")
    assert first.startswith("First to fix: 1.1 ")


@pytest.mark.parametrize("show", [_piped, _on_a_terminal], ids=["piped", "terminal"])
def test_code_that_does_not_load_is_said_once_up_front_even_when_quiet(broken, show):
    report = show(broken, "-q")
    body = report.split("Summary:")[0]
    assert body.count("SyntaxError in a1_lm_basics/softmax.py, line") == 1, body
    assert body.count("a1_lm_basics/dan.py") == 1, body
    assert "Your code does not load (fix this first):" in body
    assert "fails 13 test(s)" in body and "fails 5 test(s): 8.1, 8.2, 8.3, 8.4, 8.5" in body
    assert "Possible cause" not in report
    summary, first = _last_lines(report, 2)
    assert summary.startswith("Summary: 40 / 76 points. Failed 18 of 43 tests")
    assert first.endswith("SyntaxError in a1_lm_basics/softmax.py, line 63: invalid syntax")


def test_an_empty_folder_gets_one_message_naming_every_file(tmp_path):
    report = _piped(tmp_path)
    expected = sorted(
        f"{A}/{p.name}" for p in (course.TEMPLATE / A).glob("*.py") if p.name != "__init__.py"
    )
    missing = [line for line in report.splitlines() if "missing from" in line]
    assert len(missing) == 1 and "9 file(s) of the assignment are missing" in missing[0]
    assert sorted(missing[0].split(": ", 1)[1].split(", ")) == expected
    assert "Possible cause" not in report and "Could not find" not in report


def _grade(*results: tuple[str, float, str, str, str]) -> Grade:
    metas = [TestMeta(f"t.py::{n}", f"test {n}", 1.0, number=n) for n, *_ in results]
    return Grade(
        A,
        Path("/sub"),
        metas,
        {
            f"t.py::{n}": TestResult(
                f"t.py::{n}",
                score,
                "passed" if score == 1 else "failed",
                output,
                kind=kind,
                cause=cause,
            )
            for n, score, kind, cause, output in results
        },
        1.0,
    )


def test_the_first_thing_to_fix_is_code_that_does_not_load_then_a_wrong_answer():
    g = _grade(
        ("1.1", 0.0, "todo", "softmax: fill in the TODO above", "NotImplementedError"),
        ("1.2", 0.0, "failed", "softmax(x) differs at [0, 1] by 0.5", "softmax(x) differs"),
        ("2.1", 1.0, "", "", ""),
        ("3.1", 0.0, "syntax", "SyntaxError in a1/net.py, line 3: invalid syntax", "..."),
    )
    report = terminal_report.render(g)
    assert report.splitlines()[-1] == (
        "First to fix: 3.1 test 3.1 — SyntaxError in a1/net.py, line 3: invalid syntax"
    )
    assert "Failed 3 of 4 tests: 1.1, 1.2, 3.1." in report
    g.results["t.py::3.1"] = TestResult("t.py::3.1", 1.0, "passed")
    assert terminal_report.render(g).splitlines()[-1] == (
        "First to fix: 1.2 test 1.2 — softmax(x) differs at [0, 1] by 0.5"
    )
    passed = _grade(("1.1", 1.0, "", "", ""))
    assert terminal_report.render(passed).splitlines()[-1] == (
        "Summary: 1 / 1 points. Every test passed."
    )
