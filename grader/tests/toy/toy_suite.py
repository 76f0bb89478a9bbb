"""A tiny graded suite over three modules, for testing the grader's isolation claims.

Named so that `pytest grader/tests` does not collect it; the tests pass it to the runner by path.
Points: alpha 1 + 2, beta 1 + 1, gamma 1 + 1 = 7.
"""

import pytest

from grader.testprocess.deliverables import deliverable

alpha = deliverable("toy_pkg.alpha")
beta = deliverable("toy_pkg.beta")
gamma = deliverable("toy_pkg.gamma")


@pytest.mark.points(1)
@pytest.mark.number("1.1")
def test_add():
    """add two numbers"""
    assert alpha.add(1, 2) == 3


@pytest.mark.points(2)
@pytest.mark.number("1.2")
def test_add_cases(check):
    """add, case by case"""
    for a, b in [(0, 0), (1, -1), (2, 5), (10, 10)]:
        with check(f"{a} + {b}"):
            assert alpha.add(a, b) == a + b, f"add({a}, {b}) = {alpha.add(a, b)}"


@pytest.mark.points(1)
@pytest.mark.number("2.1")
@pytest.mark.timeout(3)
def test_mul():
    """multiply two numbers"""
    assert beta.mul(2, 3) == 6


@pytest.mark.points(1)
@pytest.mark.number("2.2")
@pytest.mark.timeout(3)
def test_mul_zero():
    """multiply by zero"""
    assert beta.mul(7, 0) == 0


@pytest.mark.points(1)
@pytest.mark.number("3.1")
@pytest.mark.visibility("after_due_date")
@pytest.mark.tags("negation")
def test_neg():
    """negate a number"""
    assert gamma.neg(4) == -4


@pytest.mark.points(1)
@pytest.mark.number("3.2")
@pytest.mark.leaderboard("negated", order="asc")
def test_neg_board(record_leaderboard):
    """negation on the leaderboard"""
    value = gamma.neg(-5)
    record_leaderboard(value)
    assert value == 5
