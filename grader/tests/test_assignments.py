"""Every assignment, checked both ways: the reference earns full marks, the generated template
earns zero with every test failing on NotImplementedError (the mutant catalogues: test_mutants)."""

import shutil
from pathlib import Path

import pytest

from grader import course
from grader.commands import selfcheck, terminal_report
from grader.controller import grading, mutant_hints, results_json
from grader.limits import Limits

ALL = course.names()


@pytest.mark.parametrize("assignment", ALL)
@pytest.mark.timeout(900)
def test_validate(assignment):
    verdict = selfcheck.validate(assignment)
    assert verdict.ok, "\n".join(verdict.lines)


def _mutated(tmp_path: Path, assignment: str, mutant_id: str) -> Path:
    mutant = next(m for m in mutant_hints.load(assignment) if m.id == mutant_id)
    package = tmp_path / assignment
    shutil.copytree(course.REFERENCE / assignment, package)
    selfcheck.apply(mutant, package)
    return tmp_path


def test_a_failing_student_is_shown_the_matching_hint(tmp_path):
    impl = _mutated(tmp_path, "a1_lm_basics", "softmax-wrong-axis")
    g = grading.grade("a1_lm_basics", impl, files={"test_softmax.py"})
    rows = next(r for n, r in g.results.items() if n.endswith("test_softmax_rows"))
    assert "Possible cause: softmax must normalise along the `dim` argument" in rows.output
    assert "largest difference at index" in rows.output  # where, and by how much
    data = results_json.build(g.metas, g.results, execution_time=g.seconds)
    results_json.validate(data)


def test_template_grade_is_zero_with_a_stub_message_per_test():
    g = grading.grade("a1_lm_basics", course.TEMPLATE)
    assert g.score == 0 and g.metas
    for m in g.metas:
        output = g.results[m.nodeid].output
        assert "NotImplementedError" in output
        assert "Possible cause" not in output
        assert output.count("Failing test case") <= 1  # Hypothesis's note, said once
    rows = terminal_report.render(g).split("\nTotal:")[0].splitlines()[2:]  # the table of tests
    numbers = [row.split()[1] for row in rows if row.strip()]
    assert numbers == sorted(numbers, key=lambda n: tuple(map(int, n.split("."))))  # handout order
    assert all(len(row) < 90 for row in rows)


def test_code_that_does_not_load_gets_no_hint(tmp_path):
    package = tmp_path / "a1_lm_basics"
    shutil.copytree(course.REFERENCE / "a1_lm_basics", package)
    (package / "softmax.py").write_text("def softmax(x):\n    return x +\n")
    g = grading.grade("a1_lm_basics", tmp_path, files={"test_softmax.py"})
    for m in g.metas:
        output = g.results[m.nodeid].output
        assert "SyntaxError in a1_lm_basics/softmax.py, line 2" in output, output
        assert "Possible cause" not in output and str(tmp_path) not in output


def test_torch_submission_that_hangs_and_blows_memory_loses_only_those_tests(tmp_path):
    package = tmp_path / "a1_lm_basics"
    shutil.copytree(course.REFERENCE / "a1_lm_basics", package)
    source = (package / "softmax.py").read_text()
    source = source.replace(
        "    shifted = logits - logits.amax(dim=-1, keepdim=True)\n",
        "    torch.empty(30 * 2**30, dtype=torch.uint8).fill_(1)  # 30 GB\n"
        "    shifted = logits - logits.amax(dim=-1, keepdim=True)\n",
    )
    source = source.replace(
        '    """Gradient of :func:`cross_entropy`',
        "    while True:\n        pass\n" + '    """Gradient of :func:`cross_entropy`',
    )
    (package / "softmax.py").write_text(source)
    g = grading.grade(
        "a1_lm_basics", tmp_path, files={"test_softmax.py"}, limits=Limits(test_timeout=4, grace=3)
    )
    by_name = {mutant_hints.test_key(n).split("::")[1]: r for n, r in g.results.items()}
    for name in ("test_cross_entropy_values", "test_cross_entropy_drawn"):
        assert by_name[name].score == 0
        assert "can't allocate memory" in by_name[name].output
    for name in ("test_gradient_matches_autograd", "test_gradient_matches_finite_difference"):
        assert by_name[name].score == 0
        assert "Timeout" in by_name[name].output or "Time limit" in by_name[name].output
    for name in ("test_softmax_rows", "test_softmax_any_shape_and_dim"):
        assert by_name[name].status == "passed", by_name[name].output
