"""The kit's own tests: the grading engine, its schema, isolation, and every assignment's
validate and mutants checks."""

import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


# `make test` spreads the test files over both cores (pytest-xdist, `--dist loadfile`: a file's
# tests share its fixtures, so they run in one worker); the longest files start first.
LONGEST_FIRST = (
    "test_redteam.py",
    "test_mutants.py",
    "test_alternatives.py",
    "test_batch.py",
    "test_gradescope_e2e.py",
    "test_assignments.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def warm_children():
    """The kit's tests grade hundreds of times: every grading child is forked from a zygote that
    has imported torch, pytest and hypothesis once (``grader.controller.zygote``), as ``validate``,
    ``mutants`` and ``batch`` do. The fresh-start path is the Gradescope flow's, which the
    end-to-end tests run in processes of their own."""
    from grader.controller import zygote

    with zygote.forking():
        yield


SYSTEM_PYTHON = Path("/usr/bin/python3.11")


@contextlib.contextmanager
def module_process(folder: Path, name: str, source: str):
    """A deliverable process (``grader.boundary.client.Boundary``) whose graded tree is
    ``folder`` holding one module, ``name``, written from ``source``."""
    from grader.boundary.client import Boundary

    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    process = Boundary(folder, python=sys.executable, env=dict(os.environ))
    try:
        yield process
    finally:
        process.close()


@contextlib.contextmanager
def within_a_test(process):
    """``process`` between a test's start and end, as grading brackets every test."""
    process.begin_test(60.0)
    try:
        yield process
    finally:
        process.end_test()


def standin_python(venv: Path, *paths: Path, editable_kit: bool = False) -> Path:
    """A venv of the system Python 3.11 that sees this venv's packages (and ``paths``): an
    interpreter an unprivileged user can run (this one may live under /root), as on Gradescope.

    ``editable_kit``: also this checkout's ``grader`` and ``coursekit`` (its editable install,
    through ``site.addsitedir``); nothing else of the kit's folder becomes importable.
    """
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", venv], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    purelib = sysconfig.get_paths()["purelib"]
    last = f"import site; site.addsitedir({purelib!r})" if editable_kit else purelib
    lines = [*map(str, paths), last]
    (site / "kit.pth").write_text("\n".join(lines) + "\n")
    return venv / "bin" / "python"


def processes_of_user(uid: int) -> list[int]:
    """Live processes whose real, effective, saved or file-system uid is ``uid``, read from
    /proc/<pid>/status (readable whatever the process does: a non-dumpable one's /proc files turn
    root's), together with those ``grader.sandbox.processes_of`` finds."""
    from grader.sandbox import processes_of

    found = set(processes_of(uid))
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if str(uid) in fields.get("Uid", "").split():
            if fields.get("State", "").strip()[:1] not in ("Z", "X"):
                found.add(int(entry.name))
    return sorted(found)


_DISK_FILLER = """
import os as _os, threading as _threading, time as _time


def _fill():
    \"\"\"Fill the disk, then keep taking whatever space is freed, for as long as the run lasts.\"\"\"
    chunk, n = b"\\0" * (1 << 20), 0
    while True:
        n += 1
        try:
            with open(_os.path.join(FOLDER, f"fill-{_os.getpid()}-{n}"), "wb") as f:
                while True:
                    f.write(chunk)
                    f.flush()
        except OSError:
            _time.sleep(0.01)


_threading.Thread(target=_fill, daemon=True).start()
"""


def disk_filler(folder: Path | str) -> str:
    """Student code (to put at the top of a module) that fills ``folder``'s disk from a thread
    and keeps it full for as long as its process lives."""
    return _DISK_FILLER.replace("FOLDER", repr(str(folder)))


@contextlib.contextmanager
def small_tmpfs(mount: Path, mode: str):
    """A 16 MiB tmpfs mounted on the empty folder ``mount`` (``mode`` its permissions, e.g.
    "1777"), unmounted and removed afterwards; the test is skipped where that cannot be done."""
    if os.geteuid() != 0:
        mount.rmdir()
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=16m,mode={mode}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"this machine cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        shutil.rmtree(mount, ignore_errors=True)
