"""Verdicts outside the student's process: tampering inside it gains nothing.

Each submission below is assignment 1's reference with a wrong softmax plus an attack on the
verdict. Assignment 1 runs behind the boundary (``grader.boundary``): the tests and their
comparisons never share a process with the submission, so the attack earns exactly what the wrong
softmax earns, with or without the (legacy) recorded verdicts.
"""

import shutil
import textwrap
from pathlib import Path

import pytest
import torch

from grader import assignments, recording, verdicts
from grader.runner import Limits, collect

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
        # the grader's event pipe in a legacy child; behind the boundary, the deliverable
        # process's socket (fd 3 up): either way, forged lines must gain nothing
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
def reference_records(tmp_path_factory):
    return assignments.reference_records(
        A, tmp_path_factory.mktemp("reference-records"), files=FILES
    )


@pytest.fixture(scope="module")
def manifest():
    return collect([assignments.TESTS / A / f for f in sorted(FILES)])


def grade(impl: Path, **options):
    return assignments.grade(A, impl, files=FILES, **options)


def submission(tmp_path: Path, attack: str = "", wrong: bool = True) -> Path:
    shutil.copytree(assignments.REFERENCE / A, tmp_path / A)
    path = tmp_path / A / "softmax.py"
    source = path.read_text()
    if wrong:
        source = source.replace(RIGHT, WRONG)
    path.write_text(textwrap.dedent(attack) + source)
    return tmp_path


def scores(g) -> dict[str, float]:
    return {n.rsplit("::", 1)[1]: r.score for n, r in g.results.items()}


def test_honest_reference_keeps_full_marks(tmp_path, reference_records, manifest):
    g = grade(submission(tmp_path, wrong=False), manifest=manifest, verdicts=reference_records)
    assert g.score == g.max_score


def test_constants_in_the_submission_do_not_change_the_drawn_inputs(
    tmp_path, reference_records, manifest
):
    # Hypothesis would otherwise draw float literals of the student's own modules (0.5, 0.01 ...)
    # into later examples, so that the student's inputs and the reference's differ.
    literals = "EPS = 0.5\nTINY = 0.01\nSCALE = -3.25\nBIG = 700.0\n"
    g = grade(
        submission(tmp_path, literals, wrong=False),
        manifest=manifest,
        verdicts=reference_records,
    )
    assert g.score == g.max_score, {
        n: r.output for n, r in g.results.items() if r.status != "passed"
    }


def test_wrong_answer_scores_the_same_with_and_without_verdicts(
    tmp_path, reference_records, manifest
):
    impl = submission(tmp_path)
    plain = grade(impl, manifest=manifest)
    judged = grade(impl, manifest=manifest, verdicts=reference_records)
    assert scores(plain) == scores(judged)
    rows = next(r for n, r in judged.results.items() if n.endswith("test_softmax_rows"))
    assert "largest difference at index" in rows.output  # the parent's message teaches as well


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_tampering_gains_nothing(tmp_path, reference_records, manifest, attack):
    impl = submission(tmp_path, ATTACKS[attack])
    honest_wrong = grade(submission(tmp_path / "plain"), manifest=manifest)
    plain = grade(impl, manifest=manifest)
    judged = grade(impl, manifest=manifest, verdicts=reference_records)
    assert plain.score <= honest_wrong.score
    assert judged.score <= honest_wrong.score


def test_an_object_that_equals_everything_is_not_a_tensor(tmp_path, reference_records, manifest):
    liar = """
        class Liar:
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
    """
    impl = submission(tmp_path, liar, wrong=False)
    src = (impl / A / "softmax.py").read_text().replace(RIGHT, "return Liar()")
    (impl / A / "softmax.py").write_text(src)
    judged = grade(impl, manifest=manifest, verdicts=reference_records, limits=Limits())
    for test in SOFTMAX_TESTS:
        assert scores(judged)[test] == 0


def test_judge_groups_by_check_and_names_the_first_miss():
    x = torch.tensor([1.0, 2.0])
    recording.mode = "expected"
    recording.start_test()
    for label in ("a", "b"):
        recording.set_label(label)
        recording.record("close", f"f({label})", x, x)
    reference = list(recording._records)
    recording.mode = "actual"
    recording.start_test()
    recording.set_label("a")
    recording.record("close", "f(a)", x)
    recording.set_label("b")
    recording.record("close", "f(b)", x + 1)
    student = list(recording._records)
    recording.mode = "off"
    fraction, messages = verdicts.judge(reference, student)
    assert fraction == 0.5
    assert messages[0].startswith("✗ b:\nf(b): values differ")
    assert verdicts.judge(reference, None)[0] == 0.0
    assert verdicts.judge([], None) == (1.0, [])
