"""Every catalogued mutant (a realistic student bug) loses points in exactly the tests its entry
names, graded on those tests and a guard per file (``selfcheck.graded_for``); a mutant that breaks
more than it says is reported, in the guard or, with ``exact``, anywhere in its files."""

import pytest

from grader import course
from grader.commands import selfcheck
from grader.controller import mutant_hints
from grader.controller.runner import Manifest, collect
from grader.limits import Limits

ALL = course.names()


@pytest.mark.parametrize("assignment", ALL)
@pytest.mark.timeout(1800)
def test_every_mutant_is_caught(assignment):
    verdict, outcomes = selfcheck.mutants(assignment, jobs=2)
    print("\n".join(verdict.lines))
    assert len(outcomes) >= 4
    assert verdict.ok, "\n".join(verdict.lines)


@pytest.fixture(scope="module")
def a1_manifest() -> Manifest:
    return collect(course.test_paths("a1_lm_basics"), Limits())


def _mutant(breaks: tuple[str, ...], find: str, replace: str) -> mutant_hints.Mutant:
    return mutant_hints.Mutant("made-here", "softmax.py", find, replace, breaks, "a hint")


def test_a_mutant_is_graded_on_its_named_tests_and_one_guard_per_file(a1_manifest):
    m = _mutant(("test_softmax.py::test_softmax_rows",), "x", "y")
    keys = [mutant_hints.test_key(t.nodeid) for t in selfcheck.graded_for(m, a1_manifest).tests]
    in_file = [
        mutant_hints.test_key(t.nodeid)
        for t in a1_manifest.tests
        if t.nodeid.split("::")[0].endswith("test_softmax.py")
    ]
    guard = next(k for k in in_file if k != "test_softmax.py::test_softmax_rows")
    assert set(keys) == {"test_softmax.py::test_softmax_rows", guard}
    exact = {
        mutant_hints.test_key(t.nodeid) for t in selfcheck.graded_for(m, a1_manifest, True).tests
    }
    assert exact == set(in_file)  # none of test_softmax.py's tests is slow


@pytest.mark.parametrize(
    "find, replace",
    [
        # The whole module fails to import: every test of the file fails, the guard with them.
        ("import torch\n", "import torch\nraise ImportError('a mutant that breaks it all')\n"),
        # softmax itself gone: the guard (which calls it) fails on a missing name.
        ("def softmax(", "def softmax_renamed("),
    ],
    ids=["module-does-not-import", "function-renamed"],
)
def test_a_mutant_that_breaks_more_than_its_entry_says_is_reported(a1_manifest, find, replace):
    m = _mutant(("test_softmax.py::test_softmax_rows",), find, replace)
    outcome = selfcheck._run_mutant("a1_lm_basics", m, a1_manifest, Limits())
    assert outcome.caught and not outcome.exact
    assert outcome.surprise, "the guard's failure is shown"
