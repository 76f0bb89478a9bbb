"""Operating-system limits for processes that run student code, and cleaning up after them."""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path


def apply_limits(memory_bytes: int, file_bytes: int, processes: int = 0) -> None:
    """Limit the calling process (and what it starts): address space, file size, no core dumps,
    and — when it runs as a user of its own — how many processes that user may have."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # A write past RLIMIT_FSIZE then fails with an OSError in the code that wrote it.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def become(user: tuple[int, int]) -> None:
    """Drop root for good: the calling process is ``user`` (uid, gid) alone, no other group."""
    os.setgroups([])
    os.setgid(user[1])
    os.setuid(user[0])


def ensure_user(name: str) -> str | None:
    """The unprivileged user ``name``, created when missing (root only; None otherwise)."""
    if os.geteuid() != 0:
        return None
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
    return name


# --------------------------------------------------------------------------- users a run owns

MAX_CLAIMS = 64  # users of one pool: name, name-2, ..., name-64
_held: dict[str, int] = {}  # claimed by this process: user -> the thread that claimed it
_held_lock = threading.Lock()


def _lock_folder() -> Path:
    """Root's own folder of claim locks (no student user can open, hence hold, a lock there)."""
    folder = (
        Path("/run/coursekit-users")
        if Path("/run").is_dir()
        else (Path.home() / ".cache" / "coursekit" / "users")
    )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.lstat()
    if not folder.is_dir() or folder.is_symlink() or info.st_uid != 0:
        raise RuntimeError(f"{folder} must be a folder of root's own (it holds the users' claims)")
    folder.chmod(0o700)
    return folder


@contextlib.contextmanager
def claimed(base: str | None) -> Iterator[str | None]:
    """A student user this run owns while it lasts: the first of ``base``, ``base-2``, ...,
    ``base-64`` that no other run on this machine holds (created when missing).

    A run sweeps every process and temporary file of its student user when it starts and ends;
    with a user of its own that touches nothing of another run — in this process (a ``batch``
    lane, a test beside it) or in another (two batches, a ``grade``, CI beside a course's
    grading). The claim is an ``flock`` on a file in root's own folder: released when the run
    ends, or by the kernel when its process dies. Claiming again from the thread that holds
    the user returns it (``grade_upload`` claims, then ``grading.grade`` within it).
    Without root, or without ``base``, ``base`` itself (nothing to own: no user switch).
    """
    if base is None or os.geteuid() != 0:
        yield base
        return
    me = threading.get_ident()
    with _held_lock:
        if _held.get(base) == me:
            reentrant = True
        else:
            reentrant = False
    if reentrant:
        yield base
        return
    folder = _lock_folder()
    for n in range(1, MAX_CLAIMS + 1):
        name = base if n == 1 else f"{base}-{n}"
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            ensure_user(name)
            with _held_lock:
                _held[name] = me
            yield name
        finally:
            with _held_lock:
                _held.pop(name, None)
            os.close(fd)  # the lock goes with it
        return
    raise RuntimeError(f"every user from {base} to {base}-{MAX_CLAIMS} is in use by another run")


def lookup_user(name: str | None) -> tuple[int, int] | None:
    """(uid, gid) of ``name``; None when not given. Switching users needs root."""
    if name is None:
        return None
    import pwd

    entry = pwd.getpwnam(name)
    if os.geteuid() != 0:
        raise PermissionError(f"running student code as {name!r} needs root")
    return entry.pw_uid, entry.pw_gid


def processes_of(uid: int) -> list[int]:
    """Live (not zombie) processes owned by ``uid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _children() -> dict[int, list[int]]:
    """Parent pid -> its live (not zombie) children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state not in ("Z", "X"):
            children.setdefault(int(ppid), []).append(int(entry.name))
    return children


def kill_descendants(pid: int | None = None, rounds: int = 100) -> int:
    """SIGKILL every process below ``pid`` (this one by default) in the process tree, whatever
    its session or process group; how many. Each is stopped (SIGSTOP) as soon as a walk of /proc
    finds it, so none forks past the walk, or dies and hands its children to init before they
    are found; walks repeat (at most ``rounds``) until one finds nothing new, then all are
    killed at once. A process that left the tree before the first walk (``setsid`` after a
    double fork) is not below it: the student user's are :func:`sweep_user`'s."""
    top = os.getpid() if pid is None else pid
    stopped: set[int] = set()
    for _ in range(rounds):
        children, found, frontier = _children(), [], [top]
        while frontier:
            below = [c for p in frontier for c in children.get(p, ())]
            found += below
            frontier = below
        new = [p for p in found if p not in stopped]
        if not new:
            break
        for p in new:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGSTOP)
        stopped.update(new)
    for p in stopped:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)
    return len(stopped)


KILL = shutil.which("kill") or "/bin/kill"


def sweep_user(uid: int, attempts: int = 50) -> int:
    """Kill every process of ``uid`` (the student user's) until none is left; how many rounds.

    Each round runs ``kill -9 -1`` *as that user*: the kernel signals every process the user owns
    in one step, under the lock that ``fork`` takes, so a process cannot fork its way past it.
    Rounds repeat until ``/proc`` shows none of the user's processes (a fork bomb needs a few).
    Needs root; a no-op for one's own uid.
    """
    if os.geteuid() != 0 or uid == 0:
        return 0
    import pwd

    try:
        gid = pwd.getpwuid(uid).pw_gid
    except KeyError:
        gid = uid
    for round_ in range(1, attempts + 1):
        try:
            subprocess.run(
                [KILL, "-9", "-1"],
                user=uid,
                group=gid,
                extra_groups=[],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            for pid in processes_of(uid):  # no kill(1) to run: one by one
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if not processes_of(uid):
            return round_
        time.sleep(0.01 * round_)
    return attempts


def child_python() -> str:
    """The interpreter of the grading children and of the deliverable process: this one, unless
    ``GRADER_CHILD_PYTHON`` names another (one the student user can run, with the same packages)."""
    return os.environ.get("GRADER_CHILD_PYTHON") or sys.executable


_interpreters: dict[tuple[str, int], str] = {}


def interpreter_for(python: str, user: tuple[int, int] | None) -> str:
    """An interpreter ``user`` can run with this one's packages: ``python`` itself when it can
    (as on Gradescope: a venv under /autograder), else a stand-in venv of the system's Python of
    the same version that sees this interpreter's packages (a Python under /root cannot be run
    by another user). Raises ``RuntimeError`` with what to do when there is neither."""
    if user is None:
        return python
    key = (python, user[0])
    if key in _interpreters:
        return _interpreters[key]
    if _runs_as(python, user):
        _interpreters[key] = python
        return python
    import sys
    import sysconfig
    import tempfile

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(f"python{version}", path="/usr/bin:/usr/local/bin")
    if system is None:
        raise RuntimeError(
            f"the student user cannot run {python}, and there is no system python{version} to "
            "stand in: set GRADER_CHILD_PYTHON to an interpreter it can run"
        )
    venv = Path(tempfile.mkdtemp(prefix="grader-python-"))
    venv.chmod(0o755)
    subprocess.run(
        [system, "-m", "venv", "--without-pip", str(venv / "v")], check=True, capture_output=True
    )
    site = next((venv / "v" / "lib").glob("python3*/site-packages"))
    purelib = sysconfig.get_paths()["purelib"]
    (site / "kit.pth").write_text(f"import site; site.addsitedir({purelib!r})\n")
    for path in [venv, *venv.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o555)
    stand_in = str(venv / "v" / "bin" / "python")
    if not _runs_as(stand_in, user):
        raise RuntimeError(
            f"the student user can run neither {python} nor a stand-in: set GRADER_CHILD_PYTHON "
            "to an interpreter it can run"
        )
    _interpreters[key] = stand_in
    return stand_in


# Finds torch and the grader and can read their files, without importing them: importing torch
# to find out cost 1.5 s of every grading at one core (the answer is the same).
_CAN_RUN = (
    "import importlib.util as u, os, sys\n"
    "specs = [u.find_spec(m) for m in ('torch', 'grader')]\n"
    "sys.exit(not all(s and s.origin and os.access(s.origin, os.R_OK) for s in specs))"
)


def _runs_as(python: str, user: tuple[int, int]) -> bool:
    """``user`` can start ``python`` and read the packages a deliverable process imports."""
    try:
        done = subprocess.run(
            [python, "-c", _CAN_RUN],
            user=user[0],
            group=user[1],
            extra_groups=[],
            capture_output=True,
            timeout=120,
            cwd="/",
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc's malloc_trim): after
    each test, so what one test allocated does not stay counted for the whole run.

    What is still alive then lives on (data sets the tests loaded, modules imported on first use
    such as torch._dynamo by the first optimizer): frozen, so the next test's collection walks
    only what was made since — the full walk, on both sides of the boundary, was a fifth of a1's
    grading time at one core. The price: a reference cycle among frozen objects that dies later
    is not collected again, in a process that lives for one grading."""
    import gc

    gc.collect()
    gc.freeze()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def not_dumpable() -> None:
    """Make this process non-dumpable (Linux's PR_SET_DUMPABLE = 0): another process of the same
    user can then neither ptrace it nor open its /proc entries (its memory, its file
    descriptors). It protects the grader when student code runs as the grader's own user (a run
    that is not root, so no user of its own)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")


def remove_files_of(uid: int, places: tuple[str, ...] = SHARED_WRITABLE) -> int:
    """Delete what ``uid`` (the student user) left in the folders every user may write (and this
    process's temporary folder): a full disk or a planted file must not outlive the grading that
    made it. How many entries."""
    if os.geteuid() != 0 or uid == 0:
        return 0
    import tempfile

    removed = 0
    for place in dict.fromkeys((*places, tempfile.gettempdir())):
        try:
            entries = list(os.scandir(place))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed += 1
            except OSError:
                continue
    return removed
