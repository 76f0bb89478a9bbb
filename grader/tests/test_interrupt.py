"""Ctrl-C (or SIGTERM) stops a grading command at once: every process the grading started is
gone within seconds, one line says what happened, no traceback, status 128 + the signal (130).

Each case grades a kit of its own whose only test calls a deliverable that naps for 300 s, so
the grading is certainly mid-test — a pytest child waiting on the deliverable process — when the
signal comes: the deliverable writes a flag file once it naps, and the signal is sent only then
(no guessing how long start-up takes). Before issue 23 the grader printed a KeyboardInterrupt
traceback and the pytest child and the deliverable process napped on, for the test's whole
time limit.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from grader import course
from grader.sandbox import processes_of, sweep_user

A = "a9_nap"
SHARED = ("conftest.py", "compare.py", "strategies.py", "twin.py", "instruments.py")
POOL = "coursekit-interrupt"  # the batch case's lane users: no other test uses them
GONE_WITHIN = 10.0  # s: a generous bound for "no process of the run is left"
EXIT_WITHIN = 30.0  # s: ... and for the command's own exit

NAP = '''"""A deliverable that naps: the grading is mid-test for as long as it does."""

import os
import time
from pathlib import Path


def nap(seconds: float, flags: str, escape: bool) -> float:
    """Nap ``seconds``; a flag in ``flags`` says the nap began. ``escape``: the nap is taken by a
    process that left the process tree (a double fork and ``setsid``), as a daemon would."""
    if escape and os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            Path(flags, f"escaped-{os.getpid()}").write_text("")
            time.sleep(seconds)
        os._exit(0)
    Path(flags, f"napping-{os.getpid()}").write_text("")
    time.sleep(seconds)
    return seconds
'''

TEST = '''"""One test that waits on the deliverable's nap."""

import pytest

from grader.testprocess.deliverables import deliverable

nap = deliverable("{a}.nap")


@pytest.mark.points(1)
@pytest.mark.number("1.1")
@pytest.mark.timeout(300)
def test_a_long_nap():
    """a nap far longer than anyone waits for"""
    assert nap.nap(300, {flags!r}, {escape!r}) == 300
'''

SETTINGS = """[limits]
test_timeout = 300
run_budget = 600
memory_gib = 4
threads = 1

[data]
public = []
heldout = []
models = []
"""


def _kit(base: Path, flags: Path, escape: bool) -> Path:
    """A kit folder with one assignment, ``a9_nap``: its reference and template alike nap."""
    kit = base / "kit"
    (kit / "tests" / A).mkdir(parents=True)
    shutil.copy(course.KIT_ROOT / "pyproject.toml", kit / "pyproject.toml")
    for name in SHARED:
        shutil.copy(course.TESTS / name, kit / "tests" / name)
    (kit / "tests" / A / "assignment.toml").write_text(SETTINGS)
    (kit / "tests" / A / "test_nap.py").write_text(
        TEST.format(a=A, flags=str(flags), escape=escape)
    )
    for tree in ("reference", "student_template"):
        (kit / tree / A).mkdir(parents=True)
        (kit / tree / A / "__init__.py").write_text("")
        (kit / tree / A / "nap.py").write_text(NAP)
    return kit


def _run_processes(token: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``token`` (every grading child inherits the
    grader's environment; the deliverable processes are found as descendants instead)."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("GRADE_INTERRUPT_RUN") == token and p.status() != "zombie":
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for p in {p.pid: p for p in processes}.values():
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            continue
    return left


def _describe(processes: list[psutil.Process]) -> str:
    lines = []
    for p in processes:
        try:
            lines.append(f"  pid {p.pid} ({p.username()}): {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            lines.append(f"  pid {p.pid}")
    return "\n".join(lines)


class _Terminal:
    """The command on a pseudo-terminal of its own, as it runs in a shell: it is the terminal's
    foreground process group, so Ctrl-C typed there (^C) signals it and whatever shares its
    group; everything it prints is read as it comes."""

    def __init__(self, command: list[str], env: dict[str, str]):
        master, slave = os.openpty()

        def controlling_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm", "COLUMNS": "100"},
            preexec_fn=controlling_terminal,
        )
        os.close(slave)
        self.master, self.output = master, bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the last process holding the terminal is gone
                return
            if not chunk:
                return
            self.output += chunk

    def interrupt(self, signum: int) -> None:
        assert signum == signal.SIGINT, "a terminal sends SIGINT"
        os.write(self.master, b"\x03")  # Ctrl-C, as typed

    def finish(self, timeout: float) -> tuple[int, str]:
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=GONE_WITHIN)
        os.close(self.master)
        return rc, self.output.decode(errors="replace").replace("\r\n", "\n")


class _Piped:
    """The command with its output piped (CI, a log file); the signal is sent to it alone."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        self.output = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
            self.output += chunk

    def interrupt(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float) -> tuple[int, str]:
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=GONE_WITHIN)
        return rc, self.output.decode(errors="replace")


def _lane_uids() -> list[int]:
    uids = []
    for n in range(1, 65):
        try:
            uids.append(pwd.getpwnam(POOL if n == 1 else f"{POOL}-{n}").pw_uid)
        except KeyError:
            continue
    return uids


CASES = [
    pytest.param("terminal", "grade", signal.SIGINT, id="ctrl-c-on-a-terminal-grade"),
    pytest.param("terminal", "validate", signal.SIGINT, id="ctrl-c-on-a-terminal-validate"),
    pytest.param("piped", "grade", signal.SIGINT, id="sigint-piped-grade"),
    pytest.param("piped", "grade", signal.SIGTERM, id="sigterm-piped-grade"),
    pytest.param(
        "piped",
        "gradescope",
        signal.SIGTERM,
        id="sigterm-piped-gradescope-as-a-student-user",
        marks=pytest.mark.skipif(os.geteuid() != 0, reason="the student user needs root"),
    ),
    pytest.param(
        "piped",
        "batch",
        signal.SIGINT,
        id="sigint-piped-batch-as-student-users",
        marks=pytest.mark.skipif(os.geteuid() != 0, reason="lane users need root"),
    ),
]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how, command, signum", CASES)
def test_an_interrupt_stops_every_process_at_once_and_says_so_in_one_line(how, command, signum):
    base = Path(tempfile.mkdtemp(prefix="nap-kit-"))
    base.chmod(0o755)  # a lane's student user reaches what it must inside
    flags = base / "flags"
    flags.mkdir()
    flags.chmod(0o777)  # the deliverable, as any user, says where its nap is
    # As a student user, a daemon of its own too: what left the process tree is the sweep's.
    escape = command in ("batch", "gradescope")
    kit = _kit(base, flags, escape)
    subs = base / "subs"  # batch: three submissions, graded two at a time
    for name in ("alice", "bob", "carol"):
        shutil.copytree(kit / "reference" / A, subs / name)
    standin = base / "autograder"  # gradescope: a stand-in /autograder
    shutil.copytree(kit / "reference" / A, standin / "submission")
    args = {
        "grade": ["grade", "-a", A, "--impl", "reference"],
        "validate": ["validate", "-a", A],
        "batch": ["batch", str(subs), "-a", A, "--users", POOL, "--out", str(base / "out")],
        "gradescope": ["gradescope", "-a", A, "--root", str(standin), "--user", POOL],
    }[command]
    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k not in (course.KIT_ENV, "PYTEST_CURRENT_TEST")}
    env["GRADE_INTERRUPT_RUN"] = token
    command_line = [sys.executable, "-m", "grader", "--kit", str(kit), *args]
    run = (_Terminal if how == "terminal" else _Piped)(command_line, env)
    tree: list[psutil.Process] = []
    try:
        # Wait until the grading is mid-test: the deliverable process (every lane's, in the
        # batch; its daemon too, as a student user) has begun its nap.
        wanted, begun, waited = 2 if command == "batch" else 1, 0, time.monotonic()
        while begun < wanted:
            assert run.proc.poll() is None and time.monotonic() - waited < 120, (
                "the command ended (or took 2 minutes) before its test began:\n"
                + run.output.decode(errors="replace")
            )
            names = [p.name for p in flags.iterdir()]
            begun = min(
                sum(n.startswith("napping-") for n in names),
                sum(n.startswith("escaped-") for n in names) if escape else wanted,
            )
            time.sleep(0.05)
        grader = psutil.Process(run.proc.pid)
        tree = grader.children(recursive=True) + _run_processes(token)
        napping = [int(p.name.split("-")[1]) for p in flags.iterdir()]
        tree += [psutil.Process(pid) for pid in napping if psutil.pid_exists(pid)]
        assert len(_alive(tree)) >= 2, f"no grading child found below the command:\n{tree}"
        sent = time.monotonic()
        run.interrupt(signum)
        try:
            rc, output = run.finish(timeout=EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the command did not exit within {EXIT_WITHIN:g} s of "
                f"{signal.Signals(signum).name} (it went on grading):\n"
                + run.output.decode(errors="replace")
            )
        exited = time.monotonic() - sent
        left = _alive(tree + _run_processes(token))
        while left and time.monotonic() - sent < GONE_WITHIN:
            time.sleep(0.05)
            left = _alive(tree + _run_processes(token))
        gone = time.monotonic() - sent
        described = _describe(left)
        students = {uid: processes_of(uid) for uid in _lane_uids()} if escape else {}
        results = standin / "results" / "results.json"
        results = json.loads(results.read_text()) if results.exists() else None
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
        for p in _alive(tree + _run_processes(token)):
            p.kill()
        for uid in _lane_uids() if escape else ():
            sweep_user(uid)
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"{how} {command} {signal.Signals(signum).name}: exited {exited:.2f} s, all gone {gone:.2f} s"
    )
    assert not left, (
        f"{len(left)} process(es) of the run still alive {GONE_WITHIN:g} s after "
        f"{signal.Signals(signum).name} (the interrupt must kill every grading child and "
        f"deliverable process at once, not leave them to their time limit):\n{described}"
    )
    assert not any(students.values()), (
        f"processes of the student users left after the interrupt: {students} (the run's sweep "
        "must find what left the process tree)"
    )
    assert "Traceback" not in output, f"an interrupt is not a crash: no traceback\n{output}"
    said = [line for line in output.splitlines() if re.search("interrupt|SIGTERM", line, re.I)]
    assert len(said) == 1, f"exactly one line must say the grading was stopped, got:\n{output}"
    assert "every process it started was killed" in said[0], said[0]
    if command == "gradescope":  # Gradescope shows the zero-score file written at the start
        assert results is not None and results["score"] == 0, results
        assert "did not finish" in results["output"], results["output"]
    assert rc == 128 + signum, (
        f"exit status {rc}: an interrupt by {signal.Signals(signum).name} is 128 + "
        f"{int(signum)}, as a shell reports it\n{output}"
    )
