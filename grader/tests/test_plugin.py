"""The pytest plugin, tested the way pytest plugins are: with pytester in a subprocess."""

import json

import pytest

SUITE = """
import pytest

@pytest.mark.points(4)
@pytest.mark.number("1.1")
def test_parts(check):
    '''four cases, one wrong'''
    for i in range(4):
        with check(f"case {i}"):
            assert i != 2, "case two is wrong"

@pytest.mark.points(3)
def test_error_after_two_parts(check):
    for i in range(2):
        with check(f"case {i}"):
            pass
    raise RuntimeError("outside any check")

@pytest.mark.points(2)
def test_ok():
    pass

@pytest.mark.points(5)
def test_skipped():
    pytest.skip("no data here")

@pytest.mark.points(1)
@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    '''parametrized'''
    assert n == 1
"""


def test_points_line_counts_partial_credit(pytester: pytest.Pytester):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess()
    # 4 * 3/4 + 3 * 2/3 + 2 + 0 (skipped) + 1 + 0 = 8 of 4 + 3 + 2 + 5 + 2 = 16
    result.stdout.fnmatch_lines(["*points: 8 / 16*"])
    result.assert_outcomes(passed=2, failed=3, skipped=1)


def test_failed_check_explains_itself(pytester: pytest.Pytester):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-k", "test_parts")
    result.stdout.fnmatch_lines(["*3 of 4 checks passed*", "*✗ case 2*", "*case two is wrong*"])


def test_manifest_carries_every_marker(pytester: pytest.Pytester):
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeini("[pytest]\ntimeout = 7\n")
    result = pytester.runpytest_subprocess("--collect-only", "--grader-manifest", "m.json")
    assert result.ret == 0
    manifest = json.loads((pytester.path / "m.json").read_text())
    tests = {t["nodeid"].split("::")[1]: t for t in manifest["tests"]}
    assert tests["test_parts"] == {
        "nodeid": "test_suite.py::test_parts",
        "name": "four cases, one wrong",
        "max_score": 4.0,
        "number": "1.1",
        "visibility": "visible",
        "tags": [],
        "timeout": 7.0,
        "leaderboard": None,
        "slow": False,
        "trusted": False,
        "reference_only": False,
    }
    assert tests["test_param[2]"]["name"] == "parametrized[2]"
    assert manifest["errors"] == []


def test_only_runs_the_listed_tests_in_order(pytester: pytest.Pytester):
    pytester.makepyfile(test_suite=SUITE)
    (pytester.path / "only.json").write_text(
        json.dumps(["test_suite.py::test_ok", "test_suite.py::test_param[1]"])
    )
    result = pytester.runpytest_subprocess("--grader-only", "only.json", "-v")
    result.stdout.fnmatch_lines(["*test_ok PASSED*", "*test_param?1? PASSED*"])
    result.assert_outcomes(passed=2, deselected=4)


def test_markers_are_registered(pytester: pytest.Pytester):
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.points(n)*", "*@pytest.mark.visibility(v)*"])


def test_unknown_visibility_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makepyfile(
        "import pytest\n@pytest.mark.visibility('secret')\ndef test_x():\n    pass\n"
    )
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*visibility 'secret' not in*"])


def test_record_leaderboard_needs_its_marker(pytester: pytest.Pytester):
    pytester.makepyfile("def test_x(record_leaderboard):\n    record_leaderboard(1)\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)


def test_impl_option_puts_the_tree_on_the_path_last(pytester: pytest.Pytester):
    tree = pytester.mkdir("tree")
    (tree / "mypkg_x").mkdir()
    (tree / "mypkg_x" / "__init__.py").write_text("VALUE = 42\n")
    (tree / "json.py").write_text("raise RuntimeError('shadowed the standard library')\n")
    pytester.makepyfile(
        "import sys, json\n"
        "from grader.testprocess.deliverables import deliverable\n"
        "pkg = deliverable('mypkg_x')\n"
        "def test_x():\n"
        "    assert pkg.VALUE == 42\n"
        "    assert sys.path[-1].endswith('tree')\n"
    )
    result = pytester.runpytest_subprocess("--impl", str(tree))
    result.assert_outcomes(passed=1)


def test_award_scores_on_a_sliding_scale(pytester: pytest.Pytester):
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.points(10)\n"
        "def test_accuracy(award):\n"
        "    award(0.25, 'accuracy 0.80: full marks from 0.85')\n"
        "@pytest.mark.points(2)\n"
        "def test_full(award):\n"
        "    award(1.0, 'fine')\n"
    )
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*accuracy 0.80: full marks from 0.85*", "*points: 4.5 / 12*"])
    result.assert_outcomes(passed=1, failed=1)


def test_a_plain_run_keeps_the_collector_on(pytester: pytest.Pytester):
    """Only a grading child starts with the cyclic collector off (until its collection ends); a
    plain pytest run — a student's, an xdist controller that never collects — has it on from
    the start."""
    pytester.makepyfile(
        test_gc="import gc\n\nAT_IMPORT = gc.isenabled()\n\n\n"
        "def test_on():\n    assert AT_IMPORT and gc.isenabled()\n"
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_what_a_failed_test_held_is_released_before_the_next_test(pytester: pytest.Pytester):
    """A grading child freezes what outlives each test (gc.freeze, so later collections skip it).
    A failed test's traceback, with its frames and what they hold, is dropped before that, or it
    would stay for the whole run (a3's template: 60 MB more in the test process)."""
    pytester.makepyfile(
        "import weakref\n\n"
        "REFS = []\n\n\n"
        "class Big:\n    pass\n\n\n"
        "def test_fails_holding_an_object():\n"
        "    big = Big()\n"
        "    big.me = big  # a cycle: only the collector frees it\n"
        "    REFS.append(weakref.ref(big))\n"
        "    assert False, 'fails with big in its frame'\n\n\n"
        "def test_then_it_is_gone():\n"
        "    assert REFS[0]() is None, 'the failed test kept its frame'\n"
    )
    result = pytester.runpytest_subprocess("--grader-boundary")
    result.assert_outcomes(passed=1, failed=1)
