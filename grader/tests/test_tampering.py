"""Comparisons outside the student's process: tampering inside it gains nothing.

Each submission below is assignment 1's reference with a wrong softmax plus an attack on the
comparison. The tests and their comparisons never share a process with the submission
(``grader.boundary``), so the attack earns at most what the wrong softmax earns.
"""

import shutil
import textwrap
from pathlib import Path

import pytest

from grader import course
from grader.controller import grading
from grader.controller.runner import collect
from grader.limits import Limits

A = "a1_lm_basics"
WRONG = "return e / e.sum(dim=0, keepdim=True)"  # softmax over the wrong axis
RIGHT = "return e / e.sum(dim=dim, keepdim=True)"
SOFTMAX_TESTS = ("test_softmax_rows", "test_softmax_any_shape_and_dim")
# The attacks target softmax.py; perplexity's Hypothesis properties join for the drawn-input test.
FILES = {"test_softmax.py", "test_perplexity.py"}

ATTACKS = {
    "patch-the-comparison-helper": """
        import sys
        for name in ("compare",):
            if name in sys.modules:
                sys.modules[name].assert_close = lambda *a, **k: None
        import torch.testing
        torch.testing.assert_close = lambda *a, **k: None
    """,
    "forge-result-events": """
        import json, os, sys, threading, time
        # the pytest child's event pipe is not open in the deliverable process: its socket
        # (fd 3 up) is; forged lines must gain nothing either way
        fd = int(sys.argv[sys.argv.index("--grader-events") + 1]) if "--grader-events" in sys.argv else 3

        def forge():  # keeps claiming full marks while the real tests run, however long
            while True:
                for test in ("test_softmax_rows", "test_softmax_any_shape_and_dim"):
                    nodeid = f"tests/a1_lm_basics/test_softmax.py::{test}"
                    event = {"event": "result", "nodeid": nodeid, "score": 99, "status": "passed"}
                    os.write(fd, (json.dumps(event) + "\\n").encode())
                time.sleep(0.05)

        threading.Thread(target=forge, daemon=True).start()
    """,
}


@pytest.fixture(scope="module")
def manifest():
    return collect([course.TESTS / A / f for f in sorted(FILES)])


def grade(impl: Path, **options):
    return grading.grade(A, impl, files=FILES, **options)


def submission(tmp_path: Path, attack: str = "", wrong: bool = True) -> Path:
    shutil.copytree(course.REFERENCE / A, tmp_path / A)
    path = tmp_path / A / "softmax.py"
    source = path.read_text()
    if wrong:
        source = source.replace(RIGHT, WRONG)
    path.write_text(textwrap.dedent(attack) + source)
    return tmp_path


def scores(g) -> dict[str, float]:
    return {n.rsplit("::", 1)[1]: r.score for n, r in g.results.items()}


def test_honest_reference_keeps_full_marks(tmp_path, manifest):
    g = grade(submission(tmp_path, wrong=False), manifest=manifest)
    assert g.score == g.max_score


def test_constants_in_the_submission_do_not_change_the_drawn_inputs(tmp_path, manifest):
    # Hypothesis would otherwise draw float literals of the student's own modules (0.5, 0.01 ...)
    # into later examples, so that the student's inputs and the reference's differ.
    literals = "EPS = 0.5\nTINY = 0.01\nSCALE = -3.25\nBIG = 700.0\n"
    g = grade(submission(tmp_path, literals, wrong=False), manifest=manifest)
    assert g.score == g.max_score, {
        n: r.output for n, r in g.results.items() if r.status != "passed"
    }


def test_a_wrong_answer_is_told_where_it_differs(tmp_path, manifest):
    g = grade(submission(tmp_path), manifest=manifest)
    rows = next(r for n, r in g.results.items() if n.endswith("test_softmax_rows"))
    assert rows.score == 0
    assert "largest difference at index" in rows.output


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_tampering_gains_nothing(tmp_path, manifest, attack):
    honest_wrong = grade(submission(tmp_path / "plain"), manifest=manifest)
    attacked = grade(submission(tmp_path, ATTACKS[attack]), manifest=manifest)
    assert honest_wrong.score < honest_wrong.max_score
    for name, score in scores(attacked).items():
        assert score <= scores(honest_wrong)[name], name


def test_an_object_that_equals_everything_is_not_a_tensor(tmp_path, manifest):
    liar = """
        class Liar:
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
    """
    impl = submission(tmp_path, liar, wrong=False)
    src = (impl / A / "softmax.py").read_text().replace(RIGHT, "return Liar()")
    (impl / A / "softmax.py").write_text(src)
    g = grade(impl, manifest=manifest, limits=Limits())
    for test in SOFTMAX_TESTS:
        assert scores(g)[test] == 0
