"""The isolation claims, proven with deliberately bad submissions.

Each bad submission is the toy package with one module sabotaged. It must lose exactly the points
of the tests that touch that module, every other test keeps full marks, the grader never crashes,
and the results.json built from the run is valid.
"""

import shutil
import textwrap
import time
from pathlib import Path

import pytest

from grader.controller import results_json
from grader.controller.runner import collect, run
from grader.limits import Limits

TOY = Path(__file__).parent / "toy"
SUITE = [TOY / "toy_suite.py"]
FAST = Limits(grace=2.0, startup_timeout=60.0, exit_wait=1.0)
BY_MODULE = {
    "alpha": ("test_add", "test_add_cases"),
    "beta": ("test_mul", "test_mul_zero"),
    "gamma": ("test_neg", "test_neg_board"),
}


@pytest.fixture(scope="module")
def manifest():
    return collect(SUITE, FAST)


def submission(tmp_path: Path, module: str | None = None, source: str = "") -> Path:
    root = tmp_path / "submission"
    shutil.copytree(TOY / "good", root)
    if module is not None:
        (root / "toy_pkg" / f"{module}.py").write_text(textwrap.dedent(source))
    return root


def grade(impl: Path, manifest, limits: Limits = FAST):
    results = run(SUITE, impl, manifest, limits)
    data = results_json.build(manifest.tests, results, execution_time=1.0)
    results_json.validate(data)
    return {r.nodeid.split("::")[1]: r for r in results.values()}, data


def assert_only_module_lost(results, module: str) -> None:
    for mod, names in BY_MODULE.items():
        for name in names:
            if mod == module:
                assert results[name].score == 0 and results[name].status == "failed", name
            else:
                assert results[name].status == "passed", f"{name}: {results[name].output}"


def test_manifest_knows_every_test_before_running(manifest):
    assert [m.nodeid.split("::")[1] for m in manifest.tests] == [
        n for names in BY_MODULE.values() for n in names
    ]
    assert manifest.max_score == 7
    neg = next(m for m in manifest.tests if m.nodeid.endswith("test_neg"))
    assert (neg.visibility, neg.tags, neg.number, neg.name) == (
        "after_due_date",
        ("negation",),
        "3.1",
        "negate a number",
    )


def test_good_submission_full_marks_and_leaderboard(tmp_path, manifest):
    results, data = grade(submission(tmp_path), manifest)
    assert data["score"] == 7
    assert data["leaderboard"] == [{"name": "negated", "value": 5, "order": "asc"}]


def test_sys_exit_at_import_costs_only_that_module(tmp_path, manifest):
    impl = submission(tmp_path, "beta", "import sys\nsys.exit(0)\n")
    results, data = grade(impl, manifest)
    assert_only_module_lost(results, "beta")
    assert "sys.exit" in results["test_mul"].output
    assert data["score"] == 5


def test_os_exit_inside_a_test_restarts_for_the_rest(tmp_path, manifest):
    impl = submission(tmp_path, "beta", "import os\ndef mul(a, b):\n    os._exit(0)\n")
    results, _ = grade(impl, manifest)
    assert_only_module_lost(results, "beta")
    assert "exited (code 0)" in results["test_mul"].output


def test_infinite_loop_is_stopped_by_the_per_test_limit(tmp_path, manifest):
    impl = submission(tmp_path, "beta", "def mul(a, b):\n    while True:\n        pass\n")
    start = time.monotonic()
    results, _ = grade(impl, manifest)
    assert_only_module_lost(results, "beta")
    assert "Timeout" in results["test_mul"].output
    assert time.monotonic() - start < 30


def test_a_loop_that_blocks_the_alarm_is_killed_by_the_parent(tmp_path, manifest):
    source = """
        import signal
        def mul(a, b):
            signal.signal(signal.SIGALRM, signal.SIG_IGN)  # defeats pytest-timeout
            while True:
                pass
    """
    results, _ = grade(submission(tmp_path, "beta", source), manifest)
    assert_only_module_lost(results, "beta")
    assert "Time limit exceeded" in results["test_mul"].output


def test_30_gb_allocation_fails_cleanly_under_the_memory_limit(tmp_path, manifest):
    impl = submission(tmp_path, "gamma", "def neg(a):\n    return bytearray(30 * 2**30)\n")
    results, _ = grade(impl, manifest)
    assert_only_module_lost(results, "gamma")
    assert "MemoryError" in results["test_neg"].output


def test_syntax_error_costs_only_that_module(tmp_path, manifest):
    impl = submission(tmp_path, "alpha", "def add(a, b)\n    return a + b\n")
    results, _ = grade(impl, manifest)
    assert_only_module_lost(results, "alpha")
    assert "SyntaxError" in results["test_add"].output
    assert "SyntaxError" in results["test_add_cases"].output


def test_missing_file_and_missing_name_say_what_is_missing(tmp_path, manifest):
    impl = submission(tmp_path)
    (impl / "toy_pkg" / "beta.py").unlink()
    (impl / "toy_pkg" / "gamma.py").write_text("def negate(a):\n    return -a\n")
    results, _ = grade(impl, manifest)
    assert "Could not find toy_pkg/beta.py" in results["test_mul"].output
    assert "has no 'neg'" in results["test_neg"].output
    assert results["test_add"].status == "passed"


def test_partial_credit_counts_the_checks_that_passed(tmp_path, manifest):
    impl = submission(tmp_path, "alpha", "def add(a, b):\n    return a + b if a != 2 else 0\n")
    results, _ = grade(impl, manifest)
    assert results["test_add"].status == "passed"
    assert results["test_add_cases"].score == pytest.approx(2 * 3 / 4)
    assert "3 of 4 checks passed" in results["test_add_cases"].output
    assert "add(2, 5) = 0" in results["test_add_cases"].output


def test_output_flood_is_capped(tmp_path, manifest):
    source = "def neg(a):\n    print('x' * (1 << 20) * 40)\n    return -a\n"
    limits = Limits(grace=2.0, exit_wait=1.0, file_bytes=8 * 1024**2)
    results, data = grade(submission(tmp_path, "gamma", source), manifest, limits)
    assert_only_module_lost(results, "gamma")
    assert len(results["test_neg"].output) < 10_000


def test_a_thread_left_running_does_not_hang_the_grader(tmp_path, manifest):
    source = """
        import threading, time
        threading.Thread(target=lambda: time.sleep(3600)).start()  # non-daemon: blocks exit
        def neg(a):
            return -a
    """
    start = time.monotonic()
    results, data = grade(submission(tmp_path, "gamma", source), manifest)
    assert data["score"] == 7
    assert time.monotonic() - start < 30


def test_the_whole_run_budget_is_enforced(tmp_path, manifest):
    impl = submission(tmp_path, "beta", "import time\ndef mul(a, b):\n    time.sleep(2)\n")
    limits = Limits(grace=2.0, exit_wait=1.0, run_budget=2.5)
    results, data = grade(impl, manifest, limits)
    assert all(r.status == "failed" for r in results.values() if r.score == 0)
    assert any("budget" in r.output for r in results.values())
    assert results["test_add"].status == "passed"
