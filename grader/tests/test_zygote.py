"""Grading children forked from a zygote (``grader.controller.zygote``) are what a fresh start would be:
the same results, only the descriptors they were given, nothing of another grading's job in
memory, a death reported with its signal, and no zygote left once its grader is done."""

import json
import os
import re
import secrets
import shutil
import signal
import sys
from pathlib import Path

import pytest

from grader import course
from grader.controller import runner, zygote
from grader.controller.runner import run_collecting
from grader.limits import Limits

TOY = Path(__file__).parent / "toy"
FAST = Limits(grace=2.0, startup_timeout=60.0, exit_wait=1.0)

PROBE = """
import json, os, sys, time

def test_probe():
    wanted = os.environ.get("PROBE_OUT")
    if wanted:
        fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
        links = {f: os.readlink(f"/proc/self/fd/{f}") for f in fds if os.path.exists(f"/proc/self/fd/{f}")}
        with open(wanted, "w") as out:
            json.dump({"fds": fds, "links": links, "sid": os.getsid(0) == os.getpid(),
                       "cwd": os.getcwd(), "tmp": __import__("tempfile").gettempdir()}, out)
    time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
"""


def _spawn(z: zygote.Zygote, tmp_path: Path, **env: str) -> zygote.Forked:
    (tmp_path / "test_probe.py").write_text(PROBE)
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        return z.spawn(
            ["-q", "-s", "-p", "no:cacheprovider", str(tmp_path / "test_probe.py")],
            env={**runner.child_env({"TMPDIR": str(tmp_path)}), **env},
            cwd=str(tmp_path),
            fds={0: devnull, 1: devnull, 2: devnull},
            memory_bytes=8 << 30,
            file_bytes=1 << 30,
        )
    finally:
        os.close(devnull)


@pytest.fixture
def a_zygote():
    z = zygote.Zygote(sys.executable, (), runner.child_env(), str(course.KIT_ROOT))
    assert z.alive
    yield z
    z.close()


def _memory_holds(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the writable memory of process ``pid`` (root reads it)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) rw", line)
            if not m:
                continue
            start, end = int(m[1], 16), int(m[2], 16)
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, OverflowError, ValueError):
                continue
    return False


def test_a_forked_child_is_what_a_fresh_start_would_be(a_zygote, tmp_path):
    out = tmp_path / "probe.json"
    child = _spawn(a_zygote, tmp_path, PROBE_OUT=str(out))
    assert child.wait() == 0
    seen = json.loads(out.read_text())
    assert seen["sid"] and seen["cwd"] == str(tmp_path) and seen["tmp"] == str(tmp_path)
    # 0-2 as given, then what pytest itself opens (-s: no capture files); nothing of the zygote's.
    fresh = runner.subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "test_probe.py"),
        ],
        cwd=tmp_path,
        env={
            **runner.child_env({"TMPDIR": str(tmp_path)}),
            "PROBE_OUT": str(tmp_path / "fresh.json"),
        },
        stdin=runner.subprocess.DEVNULL,
        capture_output=True,
        start_new_session=True,
    )
    assert fresh.returncode == 0, fresh.stdout
    assert seen["fds"] == json.loads((tmp_path / "fresh.json").read_text())["fds"]


def test_the_zygote_learns_nothing_of_a_job(a_zygote, tmp_path):
    marker = f"job-{secrets.token_hex(8)}"
    assert _memory_holds(os.getpid(), marker.encode())  # the probe finds what is there
    assert _spawn(a_zygote, tmp_path, SECRET_OF_THIS_RUN=marker).wait() == 0
    assert not _memory_holds(a_zygote.proc.pid, marker.encode())


def test_a_killed_child_reports_its_signal_and_the_zygote_ends_with_its_grader(tmp_path):
    z = zygote.Zygote(sys.executable, (), runner.child_env(), str(course.KIT_ROOT))
    child = _spawn(z, tmp_path, PROBE_SLEEP="60")
    assert child.poll() is None
    os.killpg(child.pid, signal.SIGKILL)  # its own session: the runner kills the group
    assert child.wait() == -signal.SIGKILL
    z.close()
    assert z.proc.returncode == 0


def test_grading_through_the_zygote_gives_the_fresh_results(tmp_path, monkeypatch):
    impl = tmp_path / "submission"
    shutil.copytree(TOY / "good", impl)
    (impl / "toy_pkg" / "beta.py").write_text("import os\n\ndef mul(a, b):\n    os._exit(3)\n")
    suite = [TOY / "toy_suite.py"]

    def outcome() -> dict[str, tuple[float, str]]:
        _, results = run_collecting(suite, impl, FAST, mode="graded")
        return {n: (r.score, r.status) for n, r in results.items()}

    with zygote.forking():
        assert zygote.zygote_for(runner.PYTHON, 1, (), runner.child_env(), str(course.KIT_ROOT))
        forked = outcome()
    monkeypatch.setattr(zygote, "_active", None)  # forking off: fresh children
    assert outcome() == forked
    assert any(status == "failed" for _, status in forked.values())


def test_without_a_zygote_that_can_start_children_start_afresh(tmp_path):
    with zygote.forking():
        assert zygote.zygote_for(str(tmp_path / "no-python"), 1, (), {}, str(tmp_path)) is None


SCANS_COMMAND_LINES = """
import os


def add(a, b):
    seen = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            seen.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
        except OSError:
            pass
    with open(OUT, "w") as out:
        out.write("\\n".join(seen))
    return a + b
"""


@pytest.mark.parametrize("start", ["forked", "fresh"])
def test_no_command_line_names_the_kit_or_how_the_tests_run(tmp_path, monkeypatch, start):
    """Any user can read every process's command line: a child's pytest arguments (the kit's
    folder, the tests, the submission) are in a file of the run's own, never on it."""
    impl = tmp_path / "submission"
    shutil.copytree(TOY / "good", impl)
    out = tmp_path / "seen" / "cmdlines.txt"
    out.parent.mkdir(mode=0o777)
    out.parent.chmod(0o777)
    (impl / "toy_pkg" / "alpha.py").write_text(f"OUT = {str(out)!r}\n" + SCANS_COMMAND_LINES)
    if start == "fresh":
        monkeypatch.setattr(zygote, "_active", None)
    _, results = run_collecting([TOY / "toy_suite.py"], impl, FAST, mode="graded")
    assert any(r.status == "passed" and n.endswith("::test_add") for n, r in results.items())
    lines = out.read_text().splitlines()
    assert any(
        "pytest" in line or "grader.controller.zygote" in line for line in lines
    )  # it saw them
    assert not [line for line in lines if "--rootdir" in line or "toy_suite.py" in line]


COLLECTOR_SUITE = """
import gc

from grader.testprocess.deliverables import deliverable

alpha = deliverable("toy_pkg.alpha")


def test_collector_on_here():
    assert gc.isenabled()


def test_collector_on_for_student_code():
    assert alpha.add(1, 2) is True
"""


@pytest.mark.parametrize("start", ["forked", "fresh"])
def test_the_collector_is_on_in_the_tests_and_for_student_code(tmp_path, monkeypatch, start):
    """The grading child starts with the cyclic collector off (``grader.testprocess.plugin``: its imports
    are long-lived) and turns it on when the collection ends; the deliverable process, forked
    while it was off, turns it on too — student code that makes cycles in a loop is collected."""
    impl = tmp_path / "submission"
    shutil.copytree(TOY / "good", impl)
    (impl / "toy_pkg" / "alpha.py").write_text(
        "import gc\n\ndef add(a, b):\n    return gc.isenabled()\n"
    )
    suite = tmp_path / "suite_collector.py"
    suite.write_text(COLLECTOR_SUITE)
    if start == "fresh":
        monkeypatch.setattr(zygote, "_active", None)
    _, results = run_collecting([suite], impl, FAST, mode="graded")
    assert len(results) == 2
    assert {n.split("::")[-1]: r.status for n, r in results.items()} == {
        "test_collector_on_here": "passed",
        "test_collector_on_for_student_code": "passed",
    }, {n: r.output[:300] for n, r in results.items()}
