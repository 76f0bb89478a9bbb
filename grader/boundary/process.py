"""The deliverable process's life: started (forked from the test process, or fresh), given a
time limit per test, stopped; and every exchange with it, which turns a timeout, a death or a
reply that breaks the protocol into the error of the test that asked (``_ask``).

``grader.boundary.client.Boundary`` adds the requests; this module knows nothing of them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.boundary import errors
from grader.boundary.channel import Channel
from grader.boundary.wire import PeerGone, WireError, WireTimeout, socket_pair
from grader.limits import ProcessLimits


class DeliverableProcess:
    """The deliverable process of one test run: started, told where tests begin and end, stopped."""

    def __init__(
        self,
        impl_root: Path,
        python: str,
        env: dict[str, str],
        limits: ProcessLimits = ProcessLimits(),
        user: tuple[int, int] | None = None,
    ) -> None:
        self.impl_root, self.python, self.env = impl_root, python, env
        self.limits, self.user = limits, user
        self.proc: subprocess.Popen | None = None
        self.channel: Channel | None = None
        self.generation = 0
        self.deadline: float | None = None
        self.test_limit: float | None = None
        self.restarts = 0
        self.broken: str | None = None  # why the last process ended, told to the next call
        self.log_read = 0
        # Under /tmp itself when student code runs as another user: it must reach its folders
        # (this process's own temporary folder is private).
        base = "/tmp" if user is not None and os.path.isdir("/tmp") else None
        self.workdir = Path(tempfile.mkdtemp(prefix="grader-deliverable-", dir=base))
        self.workdir.chmod(0o711)
        self.shared = self.workdir / "shared"  # the tests' files that student code reads
        self.shared.mkdir(mode=0o755)
        self.shared.chmod(0o755)
        self.published: dict[Path, int | None] = {}  # shared folders -> listing stamp made readable
        self.student_dirs = 0
        self.scratch = self.workdir / "scratch"
        self.log_path = self.workdir / "output.log"

    # what a requester adds ------------------------------------------------------------------

    def _serve(self, msg: dict[str, Any], blob: bytearray) -> tuple[dict[str, Any], list]:
        """Answer a request of the deliverable process (the requester's business)."""
        raise WireError("this side serves no request")

    def _forget(self, when: str) -> None:
        """Forget what the requester holds of the process: at a "test start", a "test end", or
        a new "process" (the last one's objects are gone)."""

    # lifecycle ---------------------------------------------------------------------------

    def start(self, fork: bool = False) -> None:
        """Start the process. ``fork``: as a copy of this one (torch already imported, so it is
        ready at once) — only before any test is collected, while this process holds nothing
        of the tests; otherwise a fresh interpreter (``python -m grader.boundary.server``)."""
        if self.proc is not None:
            return
        self.generation += 1
        self._forget("process")
        if self.scratch.exists():
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir()
        if self.user is not None:
            os.chown(self.scratch, *self.user)
        ours, theirs = socket_pair()
        lim = self.limits
        env = {
            **self.env,
            "TMPDIR": str(self.scratch),
            "HOME": str(self.scratch),
            "MPLCONFIGDIR": str(self.scratch),
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.log_read = self.log_path.stat().st_size
        processes = lim.processes if self.user is not None else 0
        try:
            if fork:
                self.proc = _fork_server(theirs, log, env, self, processes)
            else:
                cmd = [
                    self.python,
                    "-P",
                    "-m",
                    "grader.boundary.server",
                    "--fd",
                    str(theirs.fileno()),
                    "--impl",
                    str(self.impl_root),
                    "--message-mib",
                    str(lim.caps.message_bytes // 1024**2),
                    "--memory",
                    str(lim.memory_bytes),
                    "--file-bytes",
                    str(lim.file_bytes),
                    "--processes",
                    str(processes),
                ]
                kwargs: dict[str, Any] = {}
                if self.user is not None:
                    kwargs = {"user": self.user[0], "group": self.user[1], "extra_groups": []}
                self.proc = subprocess.Popen(
                    cmd,
                    cwd=self.scratch,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,
                    **kwargs,
                )
        finally:
            theirs.close()
            log.close()
        self.channel = Channel(ours, lim.caps, self._serve, may_serve=lambda: True)
        self.hello_pending = True

    def ready(self) -> None:
        """Wait until the process answers (started if need be)."""
        self._ready()

    def _ready(self) -> None:
        if self.published:
            self._publish_shared()
        if self.proc is None:
            if self.broken is not None and self.restarts >= self.limits.restarts_per_test:
                raise errors.DeliverableCrashed(
                    f"{self.broken}\n(The deliverable process failed {self.restarts + 1} times in "
                    "this test; the rest of the test was not run.)"
                )
            if self.broken is not None:
                self.restarts += 1
            self.start()
        if self.hello_pending:
            self.hello_pending = False
            self._ask({"op": "hello"}, [], startup=True)

    def stop(self) -> None:
        """End the process and everything it started."""
        proc, self.proc = self.proc, None
        if self.channel is not None:
            try:
                self.channel.sock.close()
            except OSError:
                pass
            self.channel = None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.user is not None:
            from grader.sandbox import sweep_user

            sweep_user(self.user[0])
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _died(self, why: str) -> str:
        """Stop the process (at once, unless it closed the connection itself: then it is on
        its way out and its exit status tells why); return the cause the test reports."""
        proc = self.proc
        rc = None
        if proc is not None and why == "gone":
            try:
                rc = proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                rc = None
        self.stop()
        cause = errors.death_cause(rc, self.limits.memory_bytes) if why == "gone" else why
        self.broken = cause
        return cause

    # tests -------------------------------------------------------------------------------

    def shared_dir(self, name: str) -> Path:
        """A new folder for files a test writes and student code reads: readable by the student
        user, never writable by it (the test can trust what it wrote there)."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.shared))
        path.chmod(0o755)
        self.published[path] = None
        return path

    def _publish_shared(self) -> None:
        """Make what the tests wrote in shared folders readable by student code before a call.
        Libraries write through private temporary files (a saved model's ``model.safetensors``
        comes out 0600): fixed here, once per change of a folder's listing."""
        for folder, seen in self.published.items():
            try:
                stamp = folder.stat().st_mtime_ns
            except OSError:
                continue
            if stamp == seen:
                continue
            for root, dirs, files in os.walk(folder):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    if not os.path.islink(path):
                        os.chmod(path, 0o755 if name in dirs else 0o644)
            self.published[folder] = stamp

    def student_dir(self) -> Path:
        """A new folder student code may write (a Trainer's output_dir): its contents are data
        from student code, as untrusted as any reply."""
        self.student_dirs += 1
        path = self.workdir / f"student-{self.student_dirs}"
        path.mkdir(mode=0o700)
        if self.user is not None:
            os.chown(path, *self.user)
        return path

    def begin_test(self, limit: float | None) -> None:
        # Each test's output starts from an empty file, so the file-size limit is per test (the
        # process writes with O_APPEND: after truncation it writes at the new end).
        try:
            os.truncate(self.log_path, 0)
        except OSError:
            pass
        self.log_read = 0
        self.test_limit = limit
        self.deadline = None if limit is None else time.monotonic() + limit
        self.restarts = 0
        self.broken = None
        self._forget("test start")

    def end_test(self) -> str:
        """Forget this test's objects; return what the student's code printed during it."""
        self.deadline = None
        if self.proc is not None and self.channel is not None and not self.hello_pending:
            try:
                self._ask({"op": "reset"}, [], limit=10.0)
            except errors.StudentError:
                pass
        self._forget("test end")
        return self.printed()

    def printed(self, limit: int = 64_000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_read)
                data = f.read(limit)
                self.log_read = f.seek(0, os.SEEK_END)
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    # requests ----------------------------------------------------------------------------

    def _ask(self, header: dict, blobs: list, *, startup: bool = False, limit: float | None = None):
        if limit is None:
            limit = self.limits.startup_timeout if startup else self.limits.call_timeout
        deadline = time.monotonic() + limit
        if self.deadline is not None and not startup:
            deadline = min(deadline, self.deadline + 5.0)  # pytest-timeout normally fires first
        assert self.channel is not None
        try:
            reply, blob = self.channel.ask(header, blobs, deadline)
        except WireTimeout:
            what = "start" if startup else "answer"
            cause = self._died(
                f"Time limit exceeded: the student's code did not {what} within "
                f"{limit if self.deadline is None else self.test_limit:g} s (the process running "
                "it was stopped). Look for an infinite loop, or Python loops over tensor "
                "elements that should be vectorised."
            )
            raise errors.DeliverableTimeout(cause) from None
        except PeerGone:
            raise errors.DeliverableCrashed(self._died("gone")) from None
        except WireError as exc:
            cause = self._died(
                f"The student's process sent something the grader cannot accept: {exc}"
            )
            raise errors.BoundaryViolation(cause) from None
        except BaseException:  # pytest-timeout, an interrupt: the call was abandoned midway
            self._died("The previous call was abandoned (time limit or interrupt).")
            raise
        return reply, blob


class _Forked:
    """A forked deliverable process, with the part of ``subprocess.Popen`` the boundary uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -9
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() >= end:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]


def _fork_server(
    theirs, log, env: dict[str, str], boundary: DeliverableProcess, processes: int
) -> _Forked:
    """Fork the deliverable process from this one. The copy keeps only what it needs: the socket
    and the log as its output, default signal handlers, the student user's identity, the kit's
    paths off ``sys.path``; then it runs the server loop and never returns here."""
    import importlib
    import signal
    import sys

    from grader.boundary import server

    lim = boundary.limits
    pid = os.fork()
    if pid:
        return _Forked(pid)
    try:  # the child: nothing below may return into pytest
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        keep = theirs.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        for sig in (signal.SIGALRM, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, 0)
        os.chdir(boundary.scratch)
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None  # cached by this process from its own TMPDIR: now the scratch's
        # The kit's root and its tests go off sys.path; the course's package (coursekit),
        # imported before that, still serves the factories of build() through its package path.
        from grader.course import KIT_ROOT as kit  # the kit folder, wherever the package is
        from grader.course import course_packages

        for package in course_packages():
            importlib.import_module(package)

        sys.path[:] = [p for p in sys.path if p and Path(p).resolve() not in (kit, kit / "tests")]
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        if boundary.user is not None:
            from grader.sandbox import become

            become(boundary.user)
        server.serve(
            keep, str(boundary.impl_root), lim.caps, lim.memory_bytes, lim.file_bytes, processes
        )
    finally:
        os._exit(70)
