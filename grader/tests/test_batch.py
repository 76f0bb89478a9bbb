"""Batch regrading: a hanging and a crashing submission never stop the batch, and no submission
can change another's score (each lane's student code runs as a user of its own)."""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from grader import course
from grader.commands import batch
from grader.controller import grading, mutant_hints, runner
from grader.limits import Limits
from grader.tests.conftest import SYSTEM_PYTHON, disk_filler, small_tmpfs, standin_python

A = "a1_lm_basics"
SOFTMAX = {"test_softmax.py"}  # one test file keeps the batch quick; every file works alike


def reference_files(folder, patch=None):
    """All of the reference's modules in ``folder`` (what a finished student uploads)."""
    folder.mkdir(parents=True)
    for src in (course.REFERENCE / A).glob("*.py"):
        text = src.read_text()
        if patch is not None and src.name == patch.file:
            text = text.replace(patch.find, patch.replace)
        (folder / src.name).write_text(text)


@pytest.mark.timeout(300)  # five gradings, one hanging and one crashing child after child
def test_a_batch_with_hanging_and_crashing_submissions(tmp_path):
    subs = tmp_path / "subs"
    reference_files(subs / "alice")
    mutant = next(m for m in mutant_hints.load(A) if m.id == "ce-sum-not-mean")
    reference_files(subs / "bob", patch=mutant)
    (subs / "carol").mkdir()  # hangs in every function
    (subs / "carol" / "softmax.py").write_text(
        "def softmax(x, dim=-1):\n    while True:\n        pass\n"
    )
    with zipfile.ZipFile(subs / "dave.zip", "w") as zf:  # crashes the process at import
        zf.writestr(f"{A}/softmax.py", "import os\nos._exit(3)\n")
    (subs / "erin.txt").write_text("not a submission")
    out = tmp_path / "out"
    graded = batch.grade_all(
        subs, A, out, jobs=2, limits=Limits(test_timeout=3, grace=2, exit_wait=1), files=SOFTMAX
    )
    scores = {g.name: g.grade.score for g in graded if g.grade}
    full = next(g.grade.max_score for g in graded if g.grade)
    assert scores["alice"] == full
    assert 0 < scores["bob"] < full
    assert scores["carol"] == 0 and scores["dave"] == 0 and scores["erin"] == 0
    rows = list(csv.DictReader(open(out / "gradebook.csv")))
    assert [r["submission"] for r in rows] == ["alice", "bob", "carol", "dave", "erin"]
    tests = list(csv.DictReader(open(out / "tests.csv")))
    ce = next(t for t in tests if t["test"] == "1.3")
    assert ce["passed"] == "1" and ce["most_common_hint"].startswith(
        "cross_entropy returns the mean"
    )
    assert (out / "histogram.png").stat().st_size > 1000
    assert len(list((out / "results").glob("*.json"))) == 5


@pytest.mark.timeout(180)
def test_a_gradescope_export_zip(tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("submission_metadata.yml", "submission_1: {}\n")
        for src in (course.REFERENCE / A).glob("*.py"):
            zf.writestr(f"submission_1/{src.name}", src.read_text())
        zf.writestr("submission_2/README.md", "empty")
    graded = batch.grade_all(export, A, tmp_path / "out", jobs=2, files=SOFTMAX)
    assert sorted(g.name for g in graded) == ["submission_1", "submission_2"]
    assert all(g.grade is not None for g in graded), [g.note for g in graded]
    by = {g.name: g.grade.score for g in graded}
    assert by["submission_1"] > 0 and by["submission_2"] == 0


# ---------------------------------------------------------------------------------------------
# Isolation between the submissions of one batch: each lane is a user of its own.

AS_ROOT = os.geteuid() == 0 and SYSTEM_PYTHON.exists()
needs_root = pytest.mark.skipif(
    not AS_ROOT,
    reason="needs root and /usr/bin/python3.11: each lane's student code runs as a user of its own",
)
LIMITS = Limits(test_timeout=30, grace=5, exit_wait=1)  # room for a loaded machine


@pytest.fixture
def lane_users(monkeypatch):
    """Lane users of these tests' own (a sweep never reaches another module's run), and an
    interpreter they can run (this venv's may live under /root)."""
    monkeypatch.setattr(batch, "LANE_USER", "kitbatch-lane")
    root = Path(tempfile.mkdtemp(prefix="batch-python-"))
    root.chmod(0o755)
    monkeypatch.setattr(runner, "PYTHON", str(standin_python(root / "venv", editable_kit=True)))
    yield
    shutil.rmtree(root, ignore_errors=True)


def _reachable(prefix: str) -> Path:
    """A folder the lane users can reach (pytest's tmp_path is root's alone): the worst case."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


VANDAL = '''
import glob, os, signal, threading, time

OUT = {out!r}


def _vandal():
    """For the length of this grading: overwrite every other submission's files and results,
    and signal every process, as often as possible."""
    end, tally = time.monotonic() + 120, {{"written": 0, "denied": 0, "signalled": 0}}
    while time.monotonic() < end:
        for pattern in ("/tmp/batch-*/lanes/*/*/tree/*/*.py", "/tmp/batch-*/lanes/*/*/*",
                        "/tmp/batch-*/export/*/*", "/tmp/batch-*/files/*/*", OUT + "/results/*",
                        OUT + "/*.csv", "/tmp/grader-deliverable-*/output.log",
                        "/tmp/grader-deliverable-*/scratch/*", "/tmp/grader-run-*/*/*"):
            for path in glob.glob(pattern):
                try:
                    with open(path, "w") as f:
                        f.write("raise SystemExit('vandalised')\\n")
                    tally["written"] += 1
                except OSError:
                    tally["denied"] += 1
        for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                try:
                    if pid not in (os.getpid(), PARENT):  # its own grading goes on
                        os.kill(pid, sig)
                        tally["signalled"] += 1
                except OSError:
                    pass
        if tally["denied"] and not tally.get("told"):
            print("vandal, first round:", tally, flush=True)
            tally["told"] = 1
        time.sleep(0.3)


PARENT = os.getpid()
if os.fork() == 0:
    os.setsid()
    os.closerange(3, 1024)  # not the parent's socket: its grading must see it end
    _vandal()
    os._exit(0)
time.sleep(15)  # its own grading lasts as long as the others'
'''


@needs_root
@pytest.mark.timeout(400)
def test_a_submission_cannot_change_another_lanes_score(lane_users):
    """While one submission overwrites what it can of the batch (other lanes' trees, uploads,
    results and logs) and signals every process, the others are graded as if it were not there."""
    subs, out = _reachable("batch-subs-"), _reachable("batch-out-")
    try:
        wrong = next(
            m for m in mutant_hints.load(A) if m.id == "ce-grad-wrong-sign"
        )  # loses 1.5, 1.6
        (subs / "a-mallory").mkdir()
        (subs / "a-mallory" / "softmax.py").write_text(VANDAL.format(out=str(out)))
        reference_files(subs / "b-alice")
        reference_files(subs / "c-bob", patch=wrong)
        # Three lanes: all three graded at once.
        graded = batch.grade_all(subs, A, out, jobs=3, limits=LIMITS, files=SOFTMAX)
        by = {g.name: g for g in graded}
        full = by["b-alice"].grade.max_score
        assert by["b-alice"].grade.score == full, by["b-alice"].grade.results
        lost = sum(
            m.max_score
            for m in by["c-bob"].grade.metas
            if mutant_hints.test_key(m.nodeid) in wrong.breaks
        )
        assert by["c-bob"].grade.score == full - lost
        for name, score in (("b-alice", full), ("c-bob", full - lost)):
            data = json.loads((out / "results" / f"{name}.json").read_text())
            assert data["score"] == score
        rows = {r["submission"]: r for r in csv.DictReader(open(out / "gradebook.csv"))}
        assert float(rows["b-alice"]["score"]) == full
        mallory = (out / "results" / "a-mallory.json").read_text()
        assert "vandal, first round:" in mallory and "'written': 0," in mallory, mallory[:3000]
    finally:
        shutil.rmtree(subs, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


COPIER = '''
import glob, os

_mine = os.path.realpath(__file__)


def _copied(name):
    """The function ``name`` of another submission of this batch, if one can be read."""
    for pattern in ("/tmp/batch-*/export/*/softmax.py", "/tmp/batch-*/export/*/*/softmax.py",
                    "/tmp/batch-*/lanes/*/*/tree/a1_lm_basics/softmax.py"):
        for path in sorted(glob.glob(pattern)):
            try:
                text = open(path).read()
            except OSError:
                continue
            if os.path.realpath(path) != _mine and "NotImplementedError" not in text:
                scope = {}
                exec(compile(text, path, "exec"), scope)
                return scope[name]
    raise NotImplementedError(f"{name}: fill in the TODO above")


def softmax(x, dim=-1):
    return _copied("softmax")(x, dim)


def cross_entropy(logits, targets):
    return _copied("cross_entropy")(logits, targets)


def cross_entropy_backward(logits, targets):
    return _copied("cross_entropy_backward")(logits, targets)
'''


@needs_root
@pytest.mark.timeout(400)
def test_a_submission_cannot_copy_another_submission(lane_users, tmp_path):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("submission_1/softmax.py", COPIER)
        for src in (course.REFERENCE / A).glob("*.py"):
            zf.writestr(f"submission_2/{src.name}", src.read_text())
    out = _reachable("batch-out-")
    try:
        graded = batch.grade_all(export, A, out, jobs=2, limits=LIMITS, files=SOFTMAX)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    by = {g.name: g.grade for g in graded}
    assert by["submission_2"].score == by["submission_2"].max_score
    assert by["submission_1"].score == 0, "a submission scored with a classmate's code"


@pytest.fixture
def small_tmp(monkeypatch):
    """A 16 MiB tmpfs as the machine's /tmp (world-writable) for the batch's own folders."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with small_tmpfs(_reachable("batch-disk-"), "1777") as mount:
        monkeypatch.setattr(tempfile, "tempdir", str(mount))
        try:
            yield mount
        finally:
            monkeypatch.undo()


@needs_root
@pytest.mark.timeout(400)
def test_a_disk_filled_by_one_submission_does_not_cost_the_next_one(lane_users, small_tmp):
    subs = _reachable("batch-subs-")
    out = _reachable("batch-out-")
    try:
        (subs / "a-filler").mkdir()
        (subs / "a-filler" / "softmax.py").write_text(
            disk_filler(small_tmp) + (course.REFERENCE / A / "softmax.py").read_text()
        )
        reference_files(subs / "b-alice")
        graded = batch.grade_all(subs, A, out, jobs=1, limits=LIMITS, files=SOFTMAX)
    finally:
        shutil.rmtree(subs, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    by = {g.name: g for g in graded}
    assert by["b-alice"].grade is not None, by["b-alice"].note
    assert by["b-alice"].grade.score == by["b-alice"].grade.max_score


@pytest.mark.parametrize("max_score", [1, 12, 20, 21, 67, 70, 72.5, 76, 250])
def test_histogram_bins_follow_the_point_scale_and_close_on_the_maximum(max_score):
    """Bins of whole points counted down from the maximum: the last bin is [max - width, max], so a
    full score is drawn with the scores within one bin of it and no bin reaches past the maximum."""
    import numpy as np

    from grader.commands.batch import histogram_bins

    edges = histogram_bins(max_score)
    widths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    width = widths[-1]
    assert edges[0] == 0 and len(widths) <= 20, edges
    assert edges[-1] == max_score, f"the last edge {edges[-1]} must be the maximum {max_score}"
    assert width in (1, 2, 5, 10, 20, 25, 50, 100), edges
    assert set(widths[1:]) <= {width} and 0 < widths[0] <= width, (
        f"only the first bin may be narrower: {edges}"
    )
    last = np.histogram([max_score], bins=edges)[0][-1]
    assert last == 1, f"a full score {max_score} is not counted in the last bin {edges[-2:]}"
    below = max(max_score - width - 0.5, 0)  # more than a bin under full marks
    assert np.histogram([below], bins=edges)[0][-1] == (max_score <= width), edges


def test_the_histogram_legend_is_clear_of_the_bars_and_the_plot():
    """The legend sits outside the axes: over the plot it hid the tallest bar (often full marks)."""
    import matplotlib.pyplot as plt

    scores = [70.0] * 12 + [5.0 * k for k in range(15)]  # the tallest bar is the last
    fig = batch.histogram_figure(scores, 70.0, A)
    try:
        fig.canvas.draw()
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        assert legends, "the histogram has no legend"
        (ax,) = fig.axes
        bars = [p.get_window_extent() for p in ax.patches if p.get_height() > 0]
        plot = ax.get_window_extent()
        for legend in legends:
            box = legend.get_window_extent()
            where = f"the legend at (x, y, w, h) = {box.bounds} pixels"
            assert not any(box.overlaps(bar) for bar in bars), f"{where} covers a bar"
            assert not box.overlaps(plot), f"{where} overlaps the plot at {plot.bounds}"
    finally:
        plt.close(fig)


def test_gradebook_and_tests_csv_list_tests_in_handout_order(tmp_path):
    """Columns of gradebook.csv and rows of tests.csv by the tests' numbers compared part by part
    (4.1 < 9.1 < 9.2 < 10.1), whatever order their files were collected in; unnumbered last."""
    from grader.records import TestMeta, TestResult

    in_file_order = ["9.1", "9.2", "10.1", "4.1", None, "4.10", "4.2"]
    metas = [
        TestMeta(nodeid=f"tests/{A}/test_{i}.py::test_{i}", name=f"t{i}", max_score=1.0, number=n)
        for i, n in enumerate(in_file_order)
    ]
    numbered = [n for n in in_file_order if n is not None]
    handout = sorted(numbered, key=lambda n: [int(part) for part in n.split(".")])
    expected = [*handout, metas[in_file_order.index(None)].nodeid]
    assert numbered != handout  # the files' order is not already the handout's
    results = {m.nodeid: TestResult(m.nodeid, 1.0, "passed") for m in metas}
    grade = grading.Grade(A, tmp_path, metas, results, 1.0)
    batch._write_reports([batch.Graded("ann", grade)], A, tmp_path, 1.0)
    with open(tmp_path / "gradebook.csv") as f:
        header = next(csv.reader(f))
    columns = header[header.index("max_score") + 1 : header.index("note")]
    assert columns == [*handout, "t" + str(in_file_order.index(None))], columns
    rows = [r["test"] for r in csv.DictReader(open(tmp_path / "tests.csv"))]
    assert rows == expected, f"tests.csv lists {rows}, the handout's order is {expected}"


# ---------------------------------------------------------------------------------------------
# What a lane's student code can see of the others: command lines, working folders, environments.

SNOOP = '''
import glob, os

_SKIP = ("/usr", "/proc", "/sys", "/dev", "/etc", "/lib", "/bin", "/sbin", "/opt", "/var/lib")


def _named_paths():
    """Every absolute path some process's command line, environment or working folder names."""
    found = set()
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        for what in ("cmdline", "environ"):
            try:
                data = open(f"/proc/{pid}/{what}", "rb").read()
            except OSError:
                continue
            for part in data.replace(b"=", b"\\0").replace(b":", b"\\0").split(b"\\0"):
                if part.startswith(b"/"):
                    found.add(part.decode(errors="replace"))
        try:
            found.add(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            pass
    return sorted(p for p in found if not p.startswith(_SKIP))


def _classmates():
    """softmax.py files of classmates in the folders named, or beside them (not in the folders
    every user may write: finding files there needs no name, and says nothing of names)."""
    hits = set()
    for path in _named_paths():
        beside = os.path.dirname(path)
        for top in {path} if beside in ("/tmp", "/var/tmp", "/dev/shm", "/") else {path, beside}:
            for depth in ("", "*/", "*/*/", "*/*/*/"):
                for f in glob.glob(os.path.join(top, depth + "softmax.py")):
                    try:
                        text = open(f).read()
                    except OSError:
                        continue
                    mine = os.path.realpath(f) == os.path.realpath(__file__)
                    if "a classmate" + "'s own work" in text and not mine:
                        hits.add(f)
    return sorted(hits)


_HITS = _classmates()
print("snooped:", _HITS or "nothing")
if _HITS:
    exec(open(_HITS[0]).read())
else:
    def softmax(x, dim=-1):
        raise NotImplementedError("fill in the TODO")

    def cross_entropy(logits, targets):
        raise NotImplementedError("fill in the TODO")

    def cross_entropy_backward(logits, targets):
        raise NotImplementedError("fill in the TODO")
'''


def _cli_batch(subs: Path, out: Path, users: str, jobs: int, files: str) -> subprocess.Popen:
    """``python -m grader batch`` as an instructor runs it, in a process of its own."""
    env = {**os.environ, "GRADER_CHILD_PYTHON": runner.PYTHON}
    cmd = [
        sys.executable,
        "-m",
        "grader",
        "batch",
        str(subs),
        "-a",
        A,
        "-j",
        str(jobs),
        "--out",
        str(out),
        "--files",
        files,
        "--users",
        users,
        "--test-timeout",
        "30",
    ]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _gradebook(out: Path) -> dict[str, float]:
    return {r["submission"]: float(r["score"]) for r in csv.DictReader(open(out / "gradebook.csv"))}


@needs_root
@pytest.mark.timeout(400)
def test_no_process_a_student_can_see_names_another_submission(lane_users):
    """A submission reads every command line, environment and working folder it can and walks
    the folders they name for a classmate's softmax.py (the submissions folder is world-readable,
    as an instructor's often is). The batch's own command line names that folder, so the batch
    replaces it; lanes grade in root's folders named by number."""
    subs, out = _reachable("batch-subs-"), _reachable("batch-out-")
    try:
        (subs / "a-snoop").mkdir()
        (subs / "a-snoop" / "softmax.py").write_text(SNOOP)
        reference_files(subs / "b-alice")
        text = (subs / "b-alice" / "softmax.py").read_text()
        (subs / "b-alice" / "softmax.py").write_text("# a classmate's own work\n" + text)
        proc = _cli_batch(subs, out, "kitbatch-lane", 2, "test_softmax.py")
        printed, _ = proc.communicate(timeout=380)
        assert proc.returncode == 0, printed[-3000:]
        scores = _gradebook(out)
        snoop = (out / "results" / "a-snoop.json").read_text()
        assert "snooped: nothing" in snoop, snoop[:2000]
        assert scores["a-snoop"] == 0 and scores["b-alice"] > 0
        assert "b-alice" not in snoop and str(subs) not in snoop
    finally:
        shutil.rmtree(subs, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


@needs_root
@pytest.mark.timeout(600)
def test_two_batches_and_a_grade_at_once_score_as_alone(lane_users):
    """Every run sweeps the processes and files of its student user when it starts and ends; two
    batches started together from one pool of users, and a `grade` beside them, must not kill
    each other's student code (two batches of the same lane users once scored 68, 68, 68 and 67
    of 70 for four copies of the reference)."""
    files = "test_softmax.py,test_gradcheck.py,test_network.py"
    root = _reachable("batch-twice-")
    try:
        runs = []
        for k in range(2):
            subs = root / f"subs{k}"
            reference_files(subs / "alice")
            reference_files(subs / "bob")
            runs.append(
                (_cli_batch(subs, root / f"out{k}", "kitbatch-lane", 1, files), root / f"out{k}")
            )
        grade = subprocess.run(
            [
                sys.executable,
                "-m",
                "grader",
                "grade",
                "-a",
                A,
                "--impl",
                "reference",
                "--hidden",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=400,
            env={**os.environ, "GRADER_CHILD_PYTHON": runner.PYTHON},
        )
        assert grade.returncode == 0, grade.stdout[-2000:] + grade.stderr[-2000:]
        alone = json.loads(grade.stdout[grade.stdout.index("{") :])
        assert alone["score"] == sum(t["max_score"] for t in alone["tests"])
        for proc, out in runs:
            printed, _ = proc.communicate(timeout=500)
            assert proc.returncode == 0, printed[-3000:]
            data = json.loads((out / "results" / "alice.json").read_text())
            full = sum(t["max_score"] for t in data["tests"])
            assert _gradebook(out) == {"alice": full, "bob": full}, printed[-3000:]
    finally:
        shutil.rmtree(root, ignore_errors=True)


@needs_root
def test_batch_names_what_every_user_can_read():
    """As root, `batch` warns when the submissions, the solutions or held-out files are readable
    by every user: a lane's code could find them without being told where they are."""
    private, public = _reachable("batch-private-"), _reachable("batch-public-")
    private.chmod(0o700)
    try:
        assert public in batch.exposed(A, public)
        assert private not in batch.exposed(A, private)
    finally:
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(public, ignore_errors=True)


def test_the_hint_counts_are_the_graders_never_a_line_student_code_printed(tmp_path):
    """tests.csv counts the "Possible cause" hints the grader attached (TestResult.hints), not
    lines of the output that read like one: the output holds what student code printed."""
    from grader.records import TestMeta, TestResult

    meta = TestMeta(
        nodeid=f"tests/{A}/test_softmax.py::test_x", name="x", max_score=1.0, number="1.1"
    )

    def graded(name: str, printed: str, hint: list[str]) -> batch.Graded:
        result = TestResult(meta.nodeid, 0.0, "failed", output=printed, hints=hint)
        grade = grading.Grade(A, tmp_path, [meta], {meta.nodeid: result}, 1.0)
        return batch.Graded(name, grade)

    forged = "--- your code printed ---\n" + "Possible cause: the grader is wrong\n" * 3
    honest = "\n\nPossible cause: softmax must normalise along `dim`"
    subs = [
        graded("ann", forged, []),
        graded("ben", forged + honest, ["softmax must normalise"]),
        graded("cat", honest, ["softmax must normalise"]),
    ]
    batch._write_reports(subs, A, tmp_path, 1.0)
    (row,) = list(csv.DictReader(open(tmp_path / "tests.csv")))
    assert (row["most_common_hint"], row["hint_count"]) == ("softmax must normalise", "2")
