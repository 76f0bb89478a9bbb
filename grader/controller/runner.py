"""Run graded tests against an implementation tree in an isolated child process.

The parent (this module) never imports student code. It

1. *collects* the tests in a child whose implementation tree is an empty folder, so it knows every
   test and its maximum points before any student code can run (the manifest);
2. *runs* them in a child pytest with resource limits (address space, file size, no core dumps),
   its own session (so the whole process group can be killed) and its own temporary folder,
   reading one JSON event per line from a pipe;
3. enforces the per-test time limit (+ grace, in case the in-process pytest-timeout cannot fire)
   and a whole-run budget, and when the child dies — ``os._exit``, a segfault, the memory limit,
   a kill — gives the running test 0 with the cause and starts a fresh child for the rest.

A test never reported by a child gets 0: nothing counts as passed unless a child said so.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.controller.zygote import zygote_for
from grader.course import KIT_ROOT
from grader.limits import Limits
from grader.records import TestMeta, TestResult, validated_result
from grader.sandbox import (
    apply_limits,
    become,
    child_python,
    interpreter_for,
    kill_descendants,
    lookup_user,
    remove_files_of,
    sweep_user,
)
from grader.testprocess.failure_messages import grader_out_of_time, truncate

PLUGINS = ("grader.testprocess.plugin", "pytest_timeout", "_hypothesis_pytestplugin")
# The interpreter of the grading children: this one, unless the student user cannot execute it
# (a Python under /root): then one it can, with the same packages (the kit's tests set it).
PYTHON = child_python()


@dataclass
class Manifest:
    tests: list[TestMeta]
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)


# Progress displays (grader.commands.progress) listening to every run in this process: each is called
# with ("collected", number of tests) when a run learns its tests, and ("result", nodeid) for
# each result. A listener's failure never touches grading.
_listeners: list = []


@contextlib.contextmanager
def listening(listener):
    _listeners.append(listener)
    try:
        yield listener
    finally:
        _listeners.remove(listener)


def _notify(kind: str, value) -> None:
    for listener in list(_listeners):
        try:
            listener(kind, value)
        except Exception:  # noqa: BLE001 - a display must not break a grading run
            pass


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped the grading (:func:`stopped_by`)."""


_stop = threading.Event()  # set: no run of this process starts another child
_sweeping: dict[int, int] = {}  # id of a run under way -> the student uid it grades as (owns)


def _raise_if_stopped() -> None:
    if _stop.is_set():
        raise Interrupted("the grading was stopped")


def stop_everything() -> None:
    """Kill every process this one started — grading children (each in a session of its own),
    their deliverable processes, a zygote and what it forked — and every process of the student
    users the runs under way grade as (users they still own); no run starts a child after this."""
    _stop.set()
    kill_descendants()
    for uid in set(_sweeping.values()):  # one step of the interpreter: a signal handler's too
        sweep_user(uid)


@contextlib.contextmanager
def stopped_by(signals=(signal.SIGINT, signal.SIGTERM)):
    """While this lasts, each of ``signals`` stops the grading at once (:func:`stop_everything`)
    and raises :class:`Interrupted` in the main thread: the grading unwinds (its folders
    removed, its users swept, then released), and runs in other threads stop before their next
    child. A second signal kills again and raises nothing. The yielded object's ``signum`` is
    the signal that came (None: none). Main thread only (elsewhere it changes nothing)."""
    import types

    caught = types.SimpleNamespace(signum=None)
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum, frame) -> None:
        first = caught.signum is None
        caught.signum = caught.signum or signum
        with contextlib.suppress(Exception):
            stop_everything()  # again at a second signal: what started since goes too
        if first:
            raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _stop.clear()


def child_env(extra: dict[str, str] | None = None, threads: int = 1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADER_", "PYTEST_"))}
    env.update(
        OMP_NUM_THREADS=str(threads),  # torch reads it at start-up
        MKL_NUM_THREADS=str(threads),
        HYPOTHESIS_PROFILE="grading",  # derandomized, no example database
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",  # never write __pycache__ into a graded tree
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
        # Only the plugins grading needs (PLUGINS, loaded by name): no plugin of whatever else is
        # installed runs in the child, and pytest does not assertion-rewrite every installed
        # plugin's package on each start (hypothesis's: ~2 s a child, as bytecode is never cached).
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    # The data folder as this process sees it (the user's cache, unless COURSEKIT_DATA_DIR says
    # otherwise; a child's HOME is a temporary folder): the children read it, never download.
    from grader.data import DOWNLOAD_ENV, ENV, data_dir

    env.update({ENV: str(data_dir()), DOWNLOAD_ENV: "0"})
    env.update(extra or {})
    return env


def _limit_child(limits: Limits, user: tuple[int, int] | None = None):
    def apply() -> None:
        apply_limits(limits.memory_bytes, limits.file_bytes, limits.processes if user else 0)
        if user is not None:  # drop root for good: student code runs unprivileged
            become(user)

    return apply


def kill_user_processes(uid: int) -> int:
    """Kill every process of ``uid`` (the student user's) until none is left: a process that
    left the child's process group (``setsid`` after a double fork) must not outlive the run."""
    return sweep_user(uid)


PLUGIN_ARGS = ("-p", "no:cacheprovider", *(a for p in PLUGINS for a in ("-p", p)))


def pytest_args(tests: list[Path], impl: Path, limits: Limits, *extra: str) -> list[str]:
    """pytest's arguments for a child, but for the plugins (``PLUGIN_ARGS``)."""
    if limits.test_timeout is not None:
        extra = ("-o", f"timeout={limits.test_timeout:g}", *extra)
    # --tb=native: the messages come from grader.testprocess.failure_messages, never from pytest's tracebacks, which
    # it draws in full for every failure all the same (1.5 s of a3's template at one core).
    return [
        "-c",
        str(KIT_ROOT / "pyproject.toml"),
        "--rootdir",
        str(KIT_ROOT),
        "-q",
        "--tb=native",
        "--impl",
        str(impl),
        *extra,
        *map(str, tests),
    ]


def pytest_command(args: list[str], folder: Path) -> list[str]:
    """A fresh child's command: the arguments in a file of ``folder`` (pytest's ``@file``), the
    plugins alone on the command line (pytest loads them before it reads the file). Any user can
    read a process's command line: none names the kit's folder or a submission's.
    -P: the working directory is not put on sys.path (the kit root must not be importable)."""
    path = folder / "pytest.args"
    path.write_text("".join(f"{a}\n" for a in args))
    return [PYTHON, "-P", "-m", "pytest", *PLUGIN_ARGS, f"@{path}"]


def forked_child(
    args: list[str],
    env: dict[str, str],
    limits: Limits,
    fds: dict[int, int],
    user: tuple[int, int] | None = None,
):
    """A pytest child (``args``) forked from a zygote when one is on (``grader.controller.zygote.forking``),
    stdin from /dev/null and ``fds`` (number in the child -> ours); None: start one afresh."""
    z = zygote_for(
        PYTHON,
        limits.threads,
        tuple(limits.preload),
        child_env(None, limits.threads),
        str(KIT_ROOT),
    )
    if z is None:
        return None
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        return z.spawn(
            [*PLUGIN_ARGS, *args],
            env=env,
            cwd=str(KIT_ROOT),
            fds={0: devnull, **fds},
            memory_bytes=limits.memory_bytes,
            file_bytes=limits.file_bytes,
            processes=limits.processes if user else 0,
            user=user,
        )
    except OSError:
        return None  # the zygote has gone: a fresh child instead
    finally:
        os.close(devnull)


def collect(tests: list[Path], limits: Limits = Limits()) -> Manifest:
    """Collect the tests with an empty implementation tree: no student code can run."""
    _raise_if_stopped()
    with tempfile.TemporaryDirectory(prefix="grader-collect-") as tmp:
        empty = Path(tmp, "impl")
        empty.mkdir()
        out = Path(tmp, "manifest.json")
        args = pytest_args(tests, empty, limits, "--collect-only", "--grader-manifest", str(out))
        env = child_env({"TMPDIR": tmp}, limits.threads)
        log = Path(tmp, "log")
        with open(log, "wb") as printed:
            child = forked_child(args, env, limits, {1: printed.fileno(), 2: printed.fileno()})
            if child is None:
                child = subprocess.Popen(
                    pytest_command(args, Path(tmp)),
                    cwd=KIT_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=printed,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_limit_child(limits),
                )
        try:
            rc = child.wait(timeout=limits.startup_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)  # its own session: the whole group
            child.wait()
            raise
        if not out.exists():
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"collection failed (exit {rc}):\n{tail}")
        data = json.loads(out.read_text())
    return Manifest([TestMeta.from_json(t) for t in data["tests"]], data["errors"])


def _death_cause(returncode: int | None, limits: Limits, trusted: bool = False) -> str:
    from grader.boundary.errors import death_cause

    return death_cause(returncode, limits.memory_bytes, trusted)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class _Child:
    """One pytest child and its event pipe."""

    def __init__(
        self,
        tests: list[Path],
        impl: Path,
        only: list[str] | None,
        workdir: Path,
        limits: Limits,
        user: tuple[int, int] | None = None,
        extra: tuple[str, ...] = (),
    ):
        only_file = workdir / "only.json"
        only_file.write_text(json.dumps(only))
        selection = ("--grader-only", str(only_file)) if only is not None else ()
        self.user = user
        read_fd, write_fd = os.pipe()
        args = pytest_args(
            tests, impl, limits, "--grader-events", str(write_fd), *selection, *extra
        )
        command = pytest_command(args, workdir)  # a fresh child's (the arguments in a file)
        tmp = workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        if user is not None:
            os.chown(tmp, *user)  # the child's own scratch space; only.json stays read-only
            for path in (workdir.parent, workdir, only_file, workdir / "pytest.args"):  # read-only
                path.chmod(path.stat().st_mode | 0o555)
        env = child_env(
            {"TMPDIR": str(tmp), "HOME": str(tmp), "MPLCONFIGDIR": str(tmp)}, limits.threads
        )
        # The child's own output comes through a pipe this process drains (the last bytes are kept
        # for diagnostics), never a file: a disk that student code filled cannot stop pytest from
        # printing, so it cannot end the session of tests that need no disk.
        log_read, log_write = os.pipe()
        try:
            fds = {1: log_write, 2: log_write, write_fd: write_fd}
            self.proc = forked_child(args, env, limits, fds, user)
            if self.proc is None:
                self.proc = subprocess.Popen(
                    command,
                    cwd=KIT_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_write,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                    preexec_fn=_limit_child(limits, user),
                )
        finally:
            os.close(write_fd)
            os.close(log_write)
        os.set_blocking(log_read, False)
        self.log_fd = log_read
        self.log = bytearray()
        self.fd = read_fd
        self.buffer = b""
        self.received = 0
        self.flooded = False

    MAX_LINE = 1 << 20  # one event; the longest real one (a result) is a few kB
    MAX_TOTAL = 64 << 20  # all events of one child

    LOG_KEPT = 64 << 10  # the end of the child's own output, for diagnostics

    def drain_log(self) -> None:
        """Read what the child printed so far (it never blocks on a full pipe); keep the end."""
        while self.log_fd is not None:
            try:
                chunk = os.read(self.log_fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                os.close(self.log_fd)
                self.log_fd = None
                return
            self.log += chunk
            del self.log[: max(0, len(self.log) - self.LOG_KEPT)]

    def read_events(self, timeout: float) -> list[dict] | None:
        """Events that arrived within ``timeout`` s; [] on time-out, None at end of stream (or
        when the stream breaks its bounds: a line or a total too long is not our plugin's)."""
        fds = [self.fd] if self.log_fd is None else [self.fd, self.log_fd]
        ready, _, _ = select.select(fds, [], [], max(timeout, 0.0))
        if self.log_fd is not None and self.log_fd in ready:
            self.drain_log()
        if self.fd not in ready:
            return []
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return None
        self.received += len(chunk)
        if self.received > self.MAX_TOTAL:
            self.flooded = True
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > self.MAX_LINE:
            self.buffer = b""  # garbage without an end: drop it
        events = []
        for line in lines:
            if len(line) > self.MAX_LINE:
                continue
            try:
                event = json.loads(line, parse_constant=_reject_constant)
            except (ValueError, RecursionError):
                continue  # not ours (or garbage written to our pipe): ignore it
            if isinstance(event, dict):
                events.append(event)
        return events

    def finish(self, wait: float = 5.0) -> int | None:
        """Give the child ``wait`` s to exit (threads left running keep it alive), then kill its group."""
        end = time.monotonic() + wait
        while self.proc.poll() is None and time.monotonic() < end:
            if self.log_fd is None:
                time.sleep(0.01)
            elif select.select([self.log_fd], [], [], min(0.05, max(end - time.monotonic(), 0)))[0]:
                self.drain_log()  # its last words (pytest's summary) must not block its exit
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # also any process the student code started
        except (ProcessLookupError, PermissionError):
            pass
        rc = self.proc.wait()
        if self.user is not None:
            kill_user_processes(self.user[0])
        self.drain_log()
        if self.log_fd is not None:
            os.close(self.log_fd)
            self.log_fd = None
        os.close(self.fd)
        return rc

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, limit: int) -> str:
        self.drain_log()
        return bytes(self.log[-limit:]).decode("utf-8", "replace")


class _Run:
    """One grading run: children started one after another until every test has a result."""

    def __init__(
        self,
        tests,
        impl,
        limits: Limits,
        user: tuple[int, int] | None,
        extra: tuple[str, ...],
        mode: str = "in-process",
        sweep: int | None = None,
        preload: tuple[str, ...] = (),
    ):
        self.tests, self.impl, self.limits, self.user = tests, impl, limits, user
        self.sweep = sweep  # the student user's uid: none of its processes outlives the run
        self.extra = ("--grader-mode", mode, *extra)
        self.preload = preload  # the options that preload libraries for student code
        # Trusted checks apart: children that run student code leave them for a child of their
        # own, started after, which preloads nothing and starts no deliverable process.
        self.apart = limits.trusted_apart and mode == "graded"
        self.metas: dict[str, TestMeta] | None = None  # the tests this run must report
        self.errors: list[dict[str, str]] = []
        self.results: dict[str, TestResult] = {}
        self.deadline = time.monotonic() + limits.run_budget

    def zero(self, nodeid: str, why: str) -> None:
        self.results[nodeid] = TestResult(nodeid=nodeid, score=0.0, status="failed", output=why)
        _notify("result", nodeid)

    def todo(self) -> list[str]:
        return [n for n in self.metas or {} if n not in self.results]

    def checks_only(self, only: list[str] | None) -> bool:
        """Whether a child running ``only`` runs trusted checks alone, apart from student code."""
        return bool(self.apart and only and self.metas and all(self.metas[n].trusted for n in only))

    def child_options(self, only: list[str] | None) -> tuple[str, ...]:
        if self.checks_only(only):
            return (*self.extra, "--grader-checks-only")
        if self.apart:
            return (*self.extra, *self.preload, "--grader-defer-trusted")
        return (*self.extra, *self.preload)

    def test_limit(self, nodeid: str) -> float:
        """pytest-timeout's limit for the test: its own mark, else the run's, else the default."""
        own = self.metas[nodeid].timeout
        return own or self.limits.test_timeout or self.limits.default_test_timeout

    def limit_for(self, nodeid: str | None) -> float:
        if nodeid is None:
            return self.limits.startup_timeout
        return self.test_limit(nodeid) + self.limits.grace

    def attempt(self, workdir: Path, only: list[str] | None) -> bool:
        """Run one child; False when nothing more can be learnt by starting another.

        The clock, not the pipe, drives this loop: every turn checks the running test's limit and
        the run's budget before reading, so a child that floods the pipe cannot stop the parent
        from stopping it. Events are believed only in the order pytest makes them: one
        ``collected`` first, then for each test of the manifest a ``start`` and its ``result``
        (a second ``start`` does not restart a test's clock; a result is taken once, for the test
        that is running, and validated against what the manifest says about that test).
        """
        try:
            child = _Child(
                self.tests,
                self.impl,
                only,
                workdir,
                self.limits,
                self.user,
                self.child_options(only),
            )
        except OSError as exc:  # its files could not be written: no test can run now
            self.cannot_start(exc)
            return False
        finished_before = len(self.results)
        current: str | None = None
        phase_start = time.monotonic()
        done = killed_for = None
        started: set[str] = set()
        while not done:
            limit_at = min(phase_start + self.limit_for(current), self.deadline)
            now = time.monotonic()
            if now >= limit_at:
                killed_for = "budget" if now >= self.deadline else "timeout"
                child.kill()
                break
            events = child.read_events(limit_at - now)
            if events is None:
                break
            for event in events:
                kind, nodeid = event.get("event"), event.get("nodeid")
                if kind == "collected" and self.metas is None:
                    # The child's collection ran before any student code could (imports of
                    # deliverables are refused while collecting), so its manifest is trusted.
                    self._learn_manifest(event)
                elif self.metas is None:
                    continue
                elif kind == "start" and nodeid in self.metas and current is None:
                    if nodeid in started or nodeid in self.results:
                        continue  # a test runs once; its clock starts once
                    started.add(nodeid)
                    current, phase_start = nodeid, time.monotonic()
                elif kind == "result" and nodeid == current and nodeid not in self.results:
                    self.results[nodeid] = validated_result(event, self.metas[nodeid])
                    _notify("result", nodeid)
                    current, phase_start = None, time.monotonic()
                elif kind == "done":
                    done = True
        rc = child.finish(wait=self.limits.exit_wait if done else 0.5)
        if self.metas is None:
            tail = truncate(child.log_tail(self.limits.log_tail_bytes))
            raise RuntimeError(f"the tests did not collect (exit {rc}):\n{tail}")
        if child.flooded and current is not None and current not in self.results:
            self.zero(
                current,
                "The test wrote more to the grader's pipe than any test can: it was stopped.",
            )
            return True
        if done:
            # A session that ended with tests not run (an interrupt, an internal error): the test
            # that was running when it ended scores 0, and the rest run in a fresh child (as
            # after a crash) as long as each child makes progress; none is zeroed unrun.
            if current is not None and current not in self.results:
                self.zero(
                    current,
                    "The test session ended while this test ran (an interrupt "
                    "raised by the code it ran, or an internal error of pytest).",
                )
            if self.todo() and len(self.results) > finished_before:
                return True
            if self.checks_only(self.todo()) and not self.checks_only(only):
                return True  # it left the trusted checks to a child of their own
            for nodeid in self.todo():
                self.zero(nodeid, "No result was reported for this test (it did not run).")
            return False
        if current is not None and current not in self.results:
            self.zero(current, self.cause(killed_for, current, rc))
            return True
        if killed_for is None and len(self.results) > finished_before:
            return True  # died between tests after some progress: a fresh child takes the rest
        # Died or hung outside any test without progress: retrying would not help.
        tail = truncate(child.log_tail(self.limits.log_tail_bytes))
        why = (
            f"The whole run's time budget ({self.limits.run_budget:g} s) ran out."
            if killed_for == "budget"
            else f"The grader could not run this test: the test process stopped outside any "
            f"test (exit {rc}). Its last output:\n{tail}"
        )
        for nodeid in self.todo():
            self.zero(nodeid, why)
        return False

    def _learn_manifest(self, event: dict) -> None:
        tests = event.get("tests")
        if not isinstance(tests, list):
            raise RuntimeError("the grading child sent a malformed manifest")
        self.metas = {}
        for m in tests:
            meta = TestMeta.from_json(m)
            self.metas[meta.nodeid] = meta
        errors = event.get("errors", [])
        self.errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        _notify("collected", len(self.metas))

    def cause(self, killed_for: str | None, nodeid: str, rc: int | None) -> str:
        trusted = self.metas[nodeid].trusted
        if killed_for == "timeout":
            t = self.test_limit(nodeid)
            if trusted:
                return grader_out_of_time(f"{t:g} s")
            return (
                f"Time limit exceeded: this test ran for more than {t:g} s and was stopped. Look "
                "for an infinite loop, or Python loops over tensor elements that should be vectorised."
            )
        if killed_for == "budget":
            return f"The whole run's time budget ({self.limits.run_budget:g} s) ran out."
        return _death_cause(rc, self.limits, trusted)

    def go(self) -> None:
        _raise_if_stopped()
        try:
            if self.sweep is not None:
                _sweeping[id(self)] = self.sweep  # an interrupt sweeps it at once
                sweep_user(self.sweep)  # nothing left over from an earlier run
            self._go()
        finally:
            try:
                if self.sweep is not None:
                    sweep_user(self.sweep)
                    remove_files_of(self.sweep)
            finally:
                _sweeping.pop(id(self), None)  # before the user is released (sandbox.claimed)

    def _go(self) -> None:
        try:
            folder = tempfile.TemporaryDirectory(prefix="grader-run-")
        except OSError as exc:
            self.cannot_start(exc)
            return
        with folder as tmp:
            attempt, only = 0, None if self.metas is None else self.todo()
            while only is None or only:
                _raise_if_stopped()  # Ctrl-C: no child after the one it killed
                attempt += 1
                if attempt > 1 and self.sweep is not None:
                    # Before another child: what the student's code left in the folders every
                    # user may write goes, so a disk it filled costs only the tests that ran
                    # while it was full, never the rest of the run.
                    sweep_user(self.sweep)
                    remove_files_of(self.sweep)
                workdir = Path(tmp, f"child{attempt}")
                try:
                    workdir.mkdir()
                except OSError as exc:
                    self.cannot_start(exc)
                    break
                more = self.attempt(workdir, only)
                if time.monotonic() >= self.deadline:
                    for nodeid in self.todo():
                        self.zero(
                            nodeid, "Not run: the whole run's time budget ran out before this test."
                        )
                if not more:
                    break
                only = self.todo()

    def cannot_start(self, exc: OSError) -> None:
        """No child can start (the grader's own files cannot be written, most often a full
        disk): the tests not run yet score 0, saying so; those that finished keep their results."""
        if self.metas is None:
            raise exc
        why = (
            f"Not run: the grader could not start a process for this test ({exc.strerror or exc}). "
            "If your code writes large files, write less; otherwise the grading machine had a "
            "problem (course staff can regrade)."
        )
        for nodeid in self.todo():
            self.zero(nodeid, why)


def _mode_args(
    mode: str, user: str | None, limits: Limits
) -> tuple[tuple[int, int] | None, tuple[str, ...], tuple[str, ...], int | None]:
    """(the user the pytest child runs as, its extra options, its options that preload libraries
    for student code, the student's uid to sweep).

    "graded": the tests run in a child of the invoking user and only their
    deliverable process runs as ``user``; trusted checks, which run no student code, come last in
    the same child, after the deliverable process (and every process of ``user``) has ended, or
    with ``limits.trusted_apart`` in a child of their own after that child has ended.
    "in-process" (the engine's own tests of this runner, never grading) runs every test in one child
    that is ``user`` itself.
    """
    ids = lookup_user(user)
    sweep = ids[0] if ids is not None else None
    if mode == "graded":
        boundary = {
            "memory_bytes": limits.memory_bytes,
            "file_bytes": limits.file_bytes,
            "processes": limits.processes,
            "threads": limits.threads,
        }
        extra: tuple[str, ...] = ("--grader-limits", json.dumps(boundary))
        preload = ("--grader-preload", ",".join(limits.preload)) if limits.preload else ()
        if limits.absent:
            extra += ("--grader-absent", ",".join(limits.absent))
        if user is not None:
            extra += ("--grader-user", user, "--grader-python", interpreter_for(PYTHON, ids))
        return None, extra, preload, sweep
    return ids, (), (), sweep


def run(
    tests: list[Path],
    impl: Path,
    manifest: Manifest,
    limits: Limits = Limits(),
    user: str | None = None,
    mode: str = "in-process",
) -> dict[str, TestResult]:
    """Run every test of ``manifest`` against ``impl``; a result for each, whatever happens.

    ``user``: student code runs as this (unprivileged) user; needs root.
    ``mode``: "graded" grades (student code behind the boundary, trusted checks after it);
    "in-process" runs every test in one child, in-process (the engine's tests of this runner only).
    """
    ids, extra, preload, sweep = _mode_args(mode, user, limits)
    r = _Run(tests, impl, limits, ids, extra, mode, sweep, preload)
    r.metas = {m.nodeid: m for m in manifest.tests}
    r.go()
    return r.results


def run_collecting(
    tests: list[Path],
    impl: Path,
    limits: Limits = Limits(),
    user: str | None = None,
    visible_only: bool = False,
    mode: str = "in-process",
) -> tuple[Manifest, dict[str, TestResult]]:
    """Like :func:`run`, with the manifest taken from the first child's own collection.

    Saves a whole interpreter start; safe because collection never imports student code.
    """
    ids, extra, preload, sweep = _mode_args(mode, user, limits)
    if visible_only:
        extra = ("--grader-visible-only", *extra)
    r = _Run(tests, impl, limits, ids, extra, mode, sweep, preload)
    r.go()
    return Manifest(list((r.metas or {}).values()), r.errors), r.results
