"""Regrade many submissions at once, for instructors.

    python -m grader batch SUBMISSIONS --assignment A -j 2 --out gradebook/

``SUBMISSIONS`` is a folder with one entry per student (a folder, a zip, a notebook or a module
file), or a Gradescope export zip (``submission_<id>/`` folders; ``submission_metadata.yml`` is
used for names when present). Each submission is graded with the same isolation as one grading
run, so one that hangs or crashes costs only its own tests. Writes:

- ``gradebook.csv``: one row per submission: total, then each test's score;
- ``tests.csv``: per test, how many submissions passed it, and the hints that fired most;
- ``histogram.png``: the distribution of total scores;
- ``results/<submission>.json``: each submission's Gradescope results.
"""

from __future__ import annotations

import contextlib
import csv
import math
import shutil
import statistics
import tempfile
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grader import course, sandbox
from grader.commands import progress
from grader.commands.terminal_report import handout_order
from grader.controller import grading, pipeline, results_json, zygote
from grader.controller.runner import collect
from grader.limits import Limits


@dataclass
class Graded:
    name: str
    grade: grading.Grade | None
    note: str = ""
    flags: list = field(default_factory=list)  # grader.intake.audit findings, for course staff


def _entries(source: Path, scratch: Path) -> list[tuple[str, Path]]:
    """(student name, submission folder) pairs."""
    if source.is_file() and source.suffix == ".zip":
        unpacked = scratch / "export"
        with zipfile.ZipFile(source) as zf:
            zf.extractall(unpacked)
        roots = [p for p in unpacked.iterdir() if p.is_dir()]
        source = (
            roots[0]
            if len(roots) == 1 and not roots[0].name.startswith("submission_")
            else unpacked
        )
    entries = []
    for child in sorted(source.iterdir()):
        if child.name.startswith(".") or child.name.endswith((".yml", ".yaml")):
            continue
        if child.is_dir():
            entries.append((child.name, child))
        else:  # a single file per student: give it a folder of its own
            folder = scratch / "files" / child.stem
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(child, folder / child.name)
            entries.append((child.stem, folder))
    return entries


LANE_USER = (
    "coursekit-lane"  # the pool of the lanes' users (when run as root): each lane claims one
)


def readable_by_others(path: Path) -> bool:
    """Whether any user of this machine can read ``path``: every folder above it lets others
    through, and it lets them read (a folder: list) it."""
    import stat

    try:
        if not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in path.resolve().parents)
    except OSError:
        return False


def exposed(assignment: str, source: Path) -> list[Path]:
    """What a lane's student code could read that it must not, when this machine lets every user
    read it: the submissions themselves, the instructor's solutions, the held-out data files.
    (Run as root only; nothing a student's process sees names any of them, but a readable folder
    can be found without a name.)"""
    import os

    from grader.data import data_dir

    if os.geteuid() != 0:
        return []
    secrets = [source, course.REFERENCE / assignment]
    secrets += [data_dir() / name for name in course.data_needs(assignment).heldout]
    return [p for p in secrets if p.exists() and readable_by_others(p)]


def hide_command_line() -> None:
    """The batch process's command line names the submissions folder, and every process can read
    any other's (/proc/<pid>/cmdline): replace it with the bare command before a lane starts.
    (Each upload is copied into its lane's private folder by the overlay, under its caps; the
    folder it came from is never handed to a student's process.)"""
    try:
        import setproctitle
    except ImportError:
        return
    setproctitle.setproctitle("python -m grader batch")


def grade_all(
    source: Path,
    assignment: str,
    out: Path,
    *,
    jobs: int = 2,
    limits: Limits = Limits(),
    hidden: bool = True,
    files: set[str] | None = None,
    lane_user: str | None = None,
) -> list[Graded]:
    """Grade every submission of ``source`` into ``out``; ``files`` limits the run to some test
    files (e.g. regrading only the part whose test was fixed); ``lane_user`` names the pool the
    lanes claim their users from (default ``LANE_USER``).

    Each submission is graded exactly as on Gradescope (``grader.controller.pipeline``): laid over the
    template in a folder of its own, student code running as an unprivileged user — each parallel
    lane a user it owns for the whole batch (``sandbox.claimed``), so one submission's processes
    can never touch another's, nor another batch's on the same machine.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    manifest = collect(course.test_paths(assignment), limits)
    start = time.monotonic()
    stack = contextlib.ExitStack()  # the progress line and the lanes' users, closed with the run
    lanes: dict[int, tuple[int, str | None]] = {}  # worker thread -> (lane, its user)
    lanes_lock = threading.Lock()

    def lane() -> tuple[int, str | None]:
        """This worker's lane: a number and a user it claims on its first submission."""
        me = threading.get_ident()
        with lanes_lock:
            if me not in lanes:
                user = stack.enter_context(sandbox.claimed(lane_user or LANE_USER))
                lanes[me] = (len(lanes), user)
            return lanes[me]

    with tempfile.TemporaryDirectory(prefix="batch-") as tmp:
        entries = _entries(source, Path(tmp))
        # The uploads as unpacked here and every lane's folder: root's alone (each lane's tree is
        # then made readable by its own user only; its path holds a number, never a name).
        pipeline.private([Path(tmp), out / "results"])
        line = stack.enter_context(progress.bar(f"batch {assignment}", len(entries), "submissions"))

        def one(numbered: tuple[int, tuple[str, Path]]) -> Graded:
            i, (name, folder) = numbered
            number, user = lane()
            try:
                outcome = pipeline.grade_upload(
                    assignment,
                    folder,
                    Path(tmp, "lanes", str(number), f"{i:05d}"),
                    user=user,
                    limits=limits,
                    hidden=hidden,
                    manifest=manifest,
                    files=files,
                )
            except Exception as exc:  # one broken submission never stops the batch
                return Graded(name, None, f"could not be graded: {exc}")
            finally:
                line.update(1)
            results_json.write(out / "results" / f"{name}.json", outcome.data)
            return Graded(
                name, outcome.grade, outcome.placed.report().splitlines()[0], outcome.flags
            )

        with stack, zygote.forking(), ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
            graded = list(pool.map(one, enumerate(entries)))
    seconds = time.monotonic() - start
    _write_reports(graded, assignment, out, seconds)
    return graded


def _write_reports(graded: list[Graded], assignment: str, out: Path, seconds: float) -> None:
    # Columns and rows in handout order (4.1 before 9.1 before 10.1), not the order of the files.
    metas = handout_order(next((g.grade.metas for g in graded if g.grade), []))
    with open(out / "flags.csv", "w", newline="") as f:  # for course staff: read, then judge
        w = csv.writer(f)
        w.writerow(["submission", "kind", "rule", "file", "line", "what", "code"])
        for g in graded:
            for f in g.flags:
                w.writerow([g.name, f.kind, f.rule, f.file, f.line, f.why, f.code.strip()[:160]])
    with open(out / "gradebook.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["submission", "score", "max_score", *[m.number or m.name for m in metas], "note"]
        )
        for g in graded:
            if g.grade is None:
                w.writerow([g.name, 0, "", *[""] * len(metas), g.note])
            else:
                scores = [g.grade.results[m.nodeid].score for m in metas]
                w.writerow(
                    [g.name, f"{g.grade.score:g}", f"{g.grade.max_score:g}", *scores, g.note]
                )
    fired: dict[str, Counter] = {m.nodeid: Counter() for m in metas}
    passed = Counter()
    for g in graded:
        if g.grade is None:
            continue
        for m in metas:
            r = g.grade.results[m.nodeid]
            passed[m.nodeid] += r.status == "passed"
            for hint in r.hints:  # the grader's, never a line of the output (it holds prints)
                fired[m.nodeid][hint[:80]] += 1
    n = sum(g.grade is not None for g in graded)
    with open(out / "tests.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["test", "name", "pass_rate", "passed", "graded", "most_common_hint", "hint_count"]
        )
        for m in metas:
            top = fired[m.nodeid].most_common(1)
            w.writerow(
                [
                    m.number or m.nodeid,
                    m.name,
                    f"{passed[m.nodeid] / max(n, 1):.2f}",
                    passed[m.nodeid],
                    n,
                    top[0][0] if top else "",
                    top[0][1] if top else 0,
                ]
            )
    _histogram(
        [g.grade.score for g in graded if g.grade],
        sum(m.max_score for m in metas),
        out / "histogram.png",
        assignment,
    )
    per_minute = len(graded) / seconds * 60 if seconds else 0.0
    flagged = sum(bool(g.flags) for g in graded)
    (out / "summary.txt").write_text(
        f"{len(graded)} submissions of {assignment} in {seconds:.1f} s ({per_minute:.1f} per minute); "
        f"{len(graded) - n} could not be graded; {flagged} flagged for staff (flags.csv).\n"
    )


def histogram_bins(max_score: float, most: int = 20) -> list[float]:
    """Bin edges on the point scale, counted down from ``max_score`` in bins of a whole number of
    points (1, 2, 5, 10, … wide, so that at most ``most`` bins cover the scale). The last bin is
    [max - width, max] and ends on the maximum (numpy closes the last bin), so a full score is
    drawn with the scores within one bin of it and never in a bin that reaches past it; the first
    bin starts at 0, narrower when the width does not divide the maximum."""
    width = next(w for w in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500) if max_score / w <= most)
    below = math.ceil(max_score / width - 1e-9)  # a sum of float points may overshoot 70 by 1e-14
    inner = [max_score - k * width for k in range(below - 1, -1, -1)]
    return [0.0, *(float(e) for e in inner)]


def histogram_figure(scores: list[float], max_score: float, title: str):
    """The score histogram as a matplotlib figure; the legend sits above the plot, clear of
    every bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    bins = histogram_bins(max(max_score, max(scores, default=0.0), 1.0))
    width = bins[-1] - bins[-2]
    ax.hist(scores, bins=bins, color="tab:blue", edgecolor="white", label="submissions")
    if scores:
        median = statistics.median(scores)
        ax.axvline(median, color="black", linestyle="--", label=f"median {median:g}")
    ax.set_xlim(bins[0], bins[-1])
    step = math.ceil(len(bins) / 8)  # ticks on bin edges, counted down from the maximum
    ax.set_xticks(sorted({0.0, *(e for e in bins[::-1][::step] if e >= step * width / 2)}))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts are whole submissions
    ax.set_xlabel(f"total score (points, out of {max_score:g}; bins of {width:g})")
    ax.set_ylabel("submissions")
    ax.set_title(f"{title}: {len(scores)} submissions")
    fig.legend(loc="outside upper right", ncols=2, frameon=False)  # above the axes, off the bars
    return fig


def _histogram(scores: list[float], max_score: float, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig = histogram_figure(scores, max_score, title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
