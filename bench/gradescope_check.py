"""``make gradescope-check A=<a>``: the Gradescope flow inside Gradescope's default container
limits — 768 MB of memory for the whole process tree and half a CPU — with its time and peak.

    python bench/gradescope_check.py a1_lm_basics [--impl template] [--memory-mb 768] [--cpus 0.5] [--cold]

``run_autograder`` grades the reference (or template) submission in a stand-in /autograder
(``bench/run.py``'s ``standin``), inside a cgroup of its own that holds every process it starts:
cgroup v1 (``memory.limit_in_bytes``, ``cpu.cfs_quota_us``) or v2 (``memory.max``, ``cpu.max``).
Prints the score, the wall time, the cgroup's peak memory (the whole tree, as the container's
limit counts it: page cache included, which the kernel reclaims before it kills for memory), the
peaks of its anonymous memory and of its processes' summed PSS (sampled every 50 ms: what the
processes themselves hold, their share of shared pages included; and each process's share at
that moment, and each one's own peak), and the OOM kills. ``--cold`` drops the page cache first. Exit status 1 when the kernel killed a process for memory or
the reference did not get full marks; 2 when it cannot run here (needs root, cgroups, python3.11).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
CGROUP = Path("/sys/fs/cgroup")


class Peaks(threading.Thread):
    """Samples a box's anonymous memory and summed PSS every ``every`` seconds; keeps the peaks."""

    def __init__(self, box: Box, every: float = 0.05):
        super().__init__(daemon=True)
        self.box, self.every = box, every
        self.anonymous = self.pss = 0
        self.at_peak: list[tuple[int, str, int]] = []  # (PSS, command, pid) at the summed peak
        self.own_peaks: dict[int, tuple[int, str]] = {}  # pid -> (its own PSS peak, command)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.anonymous = max(self.anonymous, self.box.anonymous_bytes())
            processes = self.box.processes_pss()
            total = sum(pss for pss, _, _ in processes)
            for pss, command, pid in processes:
                if pss > self.own_peaks.get(pid, (0, ""))[0]:
                    self.own_peaks[pid] = (pss, command)
            if total > self.pss:
                self.pss, self.at_peak = total, processes


class Box:
    """A memory and CPU cgroup (v1 or v2) that a child joins before it runs."""

    def __init__(self, name: str, memory_bytes: int, cpus: float):
        self.v2 = (CGROUP / "cgroup.controllers").exists()
        period = 100_000
        if self.v2:
            self.dirs = [CGROUP / name]
            self.dirs[0].mkdir()
            (self.dirs[0] / "memory.max").write_text(str(memory_bytes))
            (self.dirs[0] / "memory.swap.max").write_text("0")
            (self.dirs[0] / "cpu.max").write_text(f"{int(cpus * period)} {period}")
        else:
            self.dirs = [CGROUP / "memory" / name, CGROUP / "cpu" / name]
            for d in self.dirs:
                d.mkdir()
            (self.dirs[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
            (self.dirs[1] / "cpu.cfs_period_us").write_text(str(period))
            (self.dirs[1] / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))

    def join(self) -> None:
        """In the child, before exec: this process and all it starts count against the box."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def peak_bytes(self) -> int:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        return int((self.dirs[0] / name).read_text())

    def anonymous_bytes(self) -> int:
        """Memory the kernel cannot reclaim without swap: anonymous pages and shared memory."""
        stat = dict(
            line.split() for line in (self.dirs[0] / "memory.stat").read_text().splitlines()
        )
        keys = ("anon", "shmem") if self.v2 else ("total_rss", "total_shmem")
        return sum(int(stat.get(k, 0)) for k in keys)

    def processes_pss(self) -> list[tuple[int, str, int]]:
        """(proportional set size in bytes, command line, pid) of each process in the box."""
        found = []
        for pid in (self.dirs[0] / "cgroup.procs").read_text().split():
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue  # it ended meanwhile
            for line in text.splitlines():
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                    found.append((pss, command.decode(errors="replace"), int(pid)))
                    break
        return found

    def oom_kills(self) -> int:
        name = "memory.events" if self.v2 else "memory.oom_control"
        for line in (self.dirs[0] / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(50):  # the last processes may still be leaving
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def drop_page_cache() -> None:
    """Empty the kernel's page cache (root): a page some other process cached first is charged to
    that process's cgroup, not the box's, so a warm cache hides part of the run's memory."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3")
    except OSError as exc:
        print(f"(page cache kept: {exc.strerror}; the cgroup peak may leave out shared libraries)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("assignment")
    p.add_argument("--impl", choices=("reference", "template"), default="reference")
    p.add_argument("--memory-mb", type=int, default=768, help="the container's memory (MB)")
    p.add_argument("--cpus", type=float, default=0.5, help="the container's CPU share")
    p.add_argument(
        "--cold",
        action="store_true",
        help="drop the page cache first, so every file page the run reads (libraries, model, "
        "data) is charged to its cgroup, as in a fresh container: the cgroup peak then grows to "
        "the limit as the kernel fills and reclaims the cache; what counts is no OOM kill",
    )
    args = p.parse_args(argv)
    from grader.tests.conftest import SYSTEM_PYTHON

    if (
        os.geteuid() != 0
        or not (CGROUP / "memory").exists()
        and not (CGROUP / "cgroup.controllers").exists()
    ):
        print("gradescope-check needs root and cgroups (it makes a cgroup and a student user)")
        return 2
    if not SYSTEM_PYTHON.exists():
        print(f"gradescope-check needs {SYSTEM_PYTHON} (Gradescope's Python) to build the stand-in")
        return 2
    from run import standin

    box = Box(f"coursekit-check-{os.getpid()}", args.memory_mb * 1024 * 1024, args.cpus)
    try:
        with standin(args.assignment, args.impl) as (root, env, command):
            if args.cold:
                drop_page_cache()
            peaks = Peaks(box)
            peaks.start()
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, preexec_fn=box.join)
            seconds = time.perf_counter() - start
            peaks.stopped.set()
            peaks.join()
            results = root / "results" / "results.json"
            data = json.loads(results.read_text()) if results.exists() else None
        peak, kills = box.peak_bytes(), box.oom_kills()
    finally:
        box.remove()
    if data is None:
        print(
            f"no results.json (run_autograder exit {done.returncode}):\n{done.stderr.decode()[-2000:]}"
        )
        return 1
    score, total = data["score"], sum(t.get("max_score", 0) for t in data["tests"])
    lost = [t["name"] for t in data["tests"] if t.get("score", 0) < t.get("max_score", 0)]
    print(
        f"{args.assignment} ({args.impl}) in {args.memory_mb} MB / {args.cpus:g} CPU: "
        f"{score:g} / {total:g} points, {seconds:.1f} s, peak {peak / 2**20:.0f} MiB (page cache "
        f"included), anonymous {peaks.anonymous / 2**20:.0f} MiB, summed PSS "
        f"{peaks.pss / 2**20:.0f} MiB, {kills} OOM kill{'s' if kills != 1 else ''}"
    )
    print("at the summed PSS peak, by process:")
    for pss, command, pid in sorted(peaks.at_peak, reverse=True):
        print(f"  {pss / 2**20:5.0f} MiB  pid {pid}  {command[:100]}")
    print("each process's own PSS peak (over 50 MiB), in the order they started:")
    for pid, (pss, command) in sorted(peaks.own_peaks.items()):
        if pss > 50 * 2**20:
            print(f"  {pss / 2**20:5.0f} MiB  pid {pid}  {command[:100]}")
    if args.impl == "reference" and lost:
        print("lost points:\n  " + "\n  ".join(lost[:20]))
    return 1 if kills or (args.impl == "reference" and score < total) else 0


if __name__ == "__main__":
    sys.exit(main())
