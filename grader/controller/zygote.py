"""Grading children forked from one interpreter that has imported torch, pytest and hypothesis.

A fresh grading child spends over a second importing the same packages before its first test.
Where one process grades many times (``validate``, ``mutants``, ``batch``, the kit's own tests),
:func:`forking` starts a *zygote*: an interpreter of the grading children's kind that imports
them once and then forks a child per request, so each child starts warm. A single grading (the
Gradescope flow, ``grader grade``) never starts one: it would cost what it saves.

The zygote runs no student code and reads requests only from the socket its grader made (a
socket pair, reachable by nobody else). A forked child becomes what ``subprocess.Popen`` would
have started: its own session, the given descriptors as 0, 1, 2 and the pipes it must keep,
the given working folder, environment and limits, then ``pytest``'s own entry point; at its end
the interpreter shuts down as a fresh one does (threads joined, exit handlers run). The zygote
reports each child's pid, then its exit status, on a socket of that child's own.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import selectors
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from grader.testprocess.preload import SHARED

# What every grading child imports before its first test (the plugins themselves are left to
# pytest, which must import them to rewrite their assertions).
PRELOAD = (
    "torch",
    "numpy",
    "hypothesis",
    "pytest",
    "_pytest.python",
    "_pytest.assertion.rewrite",
    *SHARED,
)
MAX_REQUEST = 1 << 20


@dataclass
class Job:
    """What one forked child must become (the fields of a request)."""

    args: list[str]  # pytest's arguments
    env: dict[str, str]
    cwd: str
    fds: dict[int, int]  # number in the child -> descriptor received
    memory_bytes: int
    file_bytes: int
    processes: int
    user: list[int] | None

    def run(self) -> None:
        """Become the grading child and run pytest as ``python -m pytest`` would (it ends the
        process with pytest's exit status: SystemExit)."""
        _place(self.fds)
        os.chdir(self.cwd)
        os.environ.clear()
        os.environ.update(self.env)
        import tempfile

        tempfile.tempdir = None  # TMPDIR is this child's own
        from grader.sandbox import apply_limits, become

        apply_limits(self.memory_bytes, self.file_bytes, self.processes)
        if self.user is not None:
            become(tuple(self.user))
        import runpy

        sys.argv = ["pytest", *self.args]  # what `python -m pytest` sees; runpy sets argv[0]
        runpy.run_module("pytest", run_name="__main__", alter_sys=True)


def _place(fds: dict[int, int]) -> None:
    """Make each received descriptor appear under its number in the child (and close it under
    the number it came with)."""
    above = max(fds) + 1  # copies out of each other's way, above every number wanted
    high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD, above) for target, fd in fds.items()}
    for fd in set(fds.values()):
        os.close(fd)
    for target, fd in high.items():
        os.dup2(fd, target)
        os.close(fd)


def serve(control: socket.socket) -> socket.socket | None:
    """Fork a child per request until the grader closes its end (then None). Returns, in a
    forked child only, the socket the child reads its job from.

    The zygote learns nothing of a job: a request is a socket, the child reads the job from it
    after the fork. So no path, argument or environment of one grading stays in the memory the
    next child (and the deliverable process forked from it) inherits.
    """
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                try:
                    _, fds, _, _ = socket.recv_fds(control, 16, 1)
                except OSError:
                    fds = []
                if not fds:
                    return None  # the grader has closed its end (or sent what it never sends)
                own = socket.socket(fileno=fds[0])
                session_read, session_made = os.pipe()
                pid = os.fork()
                if pid == 0:  # the child: its own session, then nothing of the zygote's open
                    os.setsid()  # before its pid is told: the grader kills it by its group
                    os.close(session_read)
                    os.close(session_made)  # (the zygote reads the end of the pipe)
                    for other in list(selector.get_map().values()):
                        if other.data is not None:
                            other.data[1].close()
                            os.close(other.fd)
                    selector.close()
                    control.close()
                    return own
                os.close(session_made)
                os.read(session_read, 1)  # returns once the child has its session (or is dead)
                os.close(session_read)
                with contextlib.suppress(OSError):
                    own.sendall(json.dumps({"pid": pid}).encode())
                selector.register(os.pidfd_open(pid), selectors.EVENT_READ, (pid, own))
            else:
                pid, own = key.data
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):
                    own.sendall(json.dumps({"rc": os.waitstatus_to_exitcode(status)}).encode())
                own.close()


def _job(own: socket.socket) -> Job:
    """Read this child's job from its socket (the grader sends it once the child exists)."""
    message, fds, _, _ = socket.recv_fds(own, MAX_REQUEST, 8)
    own.close()
    request = json.loads(message)
    request["fds"] = dict(zip(map(int, request["fds"]), fds, strict=True))
    return Job(**request)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    gc.disable()  # what is imported lives as long as the zygote: no collection walks it
    for name in [*PRELOAD, *filter(None, sys.argv[2].split(","))]:
        __import__(name)
    gc.freeze()  # and none in a child either (a forked child inherits the frozen heap)
    gc.enable()
    control.sendall(b"ready")
    own = serve(control)
    if own is not None:
        _job(own).run()


# ------------------------------------------------------------------------------- the grader's side


class Forked:
    """A child the zygote forked: what the runner uses of ``subprocess.Popen`` (pid, poll, wait)."""

    def __init__(self, reply: socket.socket, pid: int):
        self.reply, self.pid = reply, pid
        self.returncode: int | None = None

    def _read(self, timeout: float | None) -> None:
        """Take the exit status if it has come within ``timeout`` s (None: wait for it)."""
        if self.returncode is not None:
            return
        self.reply.settimeout(timeout)
        try:
            message = self.reply.recv(1024)
        except (TimeoutError, BlockingIOError):  # not yet
            return
        except OSError:
            message = b""
        # No status (the zygote itself died): as good as killed, for the grader's purposes.
        self.returncode = json.loads(message)["rc"] if message else -9
        self.reply.close()

    def poll(self) -> int | None:
        self._read(timeout=0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit status; like ``Popen.wait``, ``subprocess.TimeoutExpired`` after ``timeout`` s."""
        self._read(timeout)
        if self.returncode is None:
            import subprocess

            raise subprocess.TimeoutExpired(f"forked child {self.pid}", timeout)
        return self.returncode


class Zygote:
    """One zygote process and the socket its requests go through."""

    def __init__(self, python: str, preload: tuple[str, ...], env: dict[str, str], cwd: str):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        import subprocess

        self.proc = subprocess.Popen(
            [
                python,
                "-P",
                "-m",
                "grader.controller.zygote",
                str(theirs.fileno()),
                ",".join(preload),
            ],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,  # a terminal's Ctrl-C reaches the grader alone, which stops it
        )
        theirs.close()
        self.control = ours
        self.lock = threading.Lock()
        self.alive = self.control.recv(16) == b"ready"

    def spawn(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        fds: dict[int, int],
        memory_bytes: int,
        file_bytes: int,
        processes: int = 0,
        user: tuple[int, int] | None = None,
    ) -> Forked:
        """Fork a child that runs ``pytest args``; ``fds``: number in the child -> ours."""
        request = {
            "args": args,
            "env": env,
            "cwd": cwd,
            "fds": list(fds),
            "memory_bytes": memory_bytes,
            "file_bytes": file_bytes,
            "processes": processes,
            "user": list(user) if user else None,
        }
        mine, its = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with self.lock:
                if not self.alive:
                    raise OSError("the zygote has ended")
                try:
                    socket.send_fds(self.control, [b"fork"], [its.fileno()])
                except OSError:
                    self.alive = False
                    raise
            answer = mine.recv(1024)
            if not answer:
                raise OSError("the zygote did not fork")
            socket.send_fds(mine, [json.dumps(request).encode()], list(fds.values()))
        except OSError:
            mine.close()
            raise
        finally:
            its.close()
        return Forked(mine, json.loads(answer)["pid"])

    def close(self) -> None:
        self.control.close()  # the zygote ends when it reads the end of its socket
        try:
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - it must not outlive us
            self.proc.kill()
            self.proc.wait()


_active: dict[tuple[str, int, tuple[str, ...]], Zygote] | None = None
_active_lock = threading.Lock()


@contextlib.contextmanager
def forking() -> Iterator[None]:
    """While this lasts, grading children are forked from a zygote (one per interpreter and
    thread count, started on first use) instead of started afresh. Reentrant."""
    global _active
    with _active_lock:
        outer = _active is not None
        if not outer:
            _active = {}
    try:
        yield
    finally:
        if not outer:
            with _active_lock:
                zygotes, _active = _active, None
            for z in zygotes.values():
                z.close()


def zygote_for(
    python: str, threads: int, preload: tuple[str, ...], env: dict[str, str], cwd: str
) -> Zygote | None:
    """The zygote for children of ``python`` with ``threads`` threads that import ``preload``
    (an assignment's ``[boundary] preload``: transformers for a3), when :func:`forking` is on;
    started now if need be, None if it could not start. A child of one assignment never comes
    from another's zygote: what an assignment's install lacks stays unimported."""
    with _active_lock:
        if _active is None:
            return None
        key = (python, threads, preload)
        z = _active.get(key)
        if z is None or not z.alive:
            try:
                z = _active[key] = Zygote(python, preload, env, cwd)
            except OSError:
                return None
        return z if z.alive else None


if __name__ == "__main__":
    main()
