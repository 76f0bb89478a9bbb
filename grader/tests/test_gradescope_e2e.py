"""The Gradescope flow end to end: build the zip, unpack it into a stand-in for /autograder, drop
a submission in, run `run_autograder` as Gradescope would, validate results.json.

The stand-in venv is made from the system Python 3.11 (as setup.sh does on Gradescope) and sees
the kit's installed packages through a .pth file, so setup.sh's downloads are not repeated here.
As root, student code runs as an unprivileged user, as on Gradescope; otherwise that switch alone
is skipped (the run says so in its output).
"""

import io
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
from grader.commands import package
from grader.controller import mutant_hints, results_json
from grader.tests.conftest import SYSTEM_PYTHON, standin_python

A = "a1_lm_basics"
USER = "kitgrader"
pytestmark = [
    pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="needs /usr/bin/python3.11"),
    # each test grades a whole assignment the way Gradescope does (fresh interpreters, a user
    # switch): ~25 s alone, minutes on a loaded machine — not the suite's 60 s default
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def autograder():
    yield from _autograder(A)


def _autograder(assignment: str):
    root = Path(tempfile.mkdtemp(prefix="autograder-"))
    root.chmod(0o755)  # pytest's own tmp folders are private to root; the student user needs in
    yield from unpacked(package.autograder(assignment, root / "build"), root)


def unpacked(archive: Path, root: Path):
    """(root, archive, user): the autograder zip unpacked into ``root``, a stand-in for Gradescope's
    /autograder, with a venv of the system Python and the student user (as root); removed after."""
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    standin_python(root / "venv", root / "source" / "kit")
    user = None
    if os.geteuid() == 0:
        if subprocess.run(["id", USER], capture_output=True).returncode != 0:
            subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True
            )
        user = USER
    yield root, archive, user
    shutil.rmtree(root)


def run_autograder(root: Path, user: str | None, files: dict[str, bytes], previous: int = 0):
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    submission.mkdir()
    for name, content in files.items():
        (submission / name).parent.mkdir(parents=True, exist_ok=True)
        (submission / name).write_bytes(content)
    meta = {"previous_submissions": [{}] * previous}
    (root / "submission_metadata.json").write_text(json.dumps(meta))
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "GRADER_PYTHON": str(root / "venv" / "bin" / "python"),
    }
    env.pop("GRADER_USER", None)  # unset: "student", which a run that is not root says it skipped
    if user is not None:
        env["GRADER_USER"] = user
    proc = subprocess.run(
        ["bash", root / "source" / "run_autograder"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    results_json.validate(data)
    return data


def reference_file(name: str) -> bytes:
    return (course.REFERENCE / A / name).read_bytes()


def reference_files(**changed: str) -> dict[str, bytes]:
    """Every module of the reference, as a finished student uploads them; ``changed`` replaces
    the text of some (keyword: the file's stem)."""
    files = {p.name: p.read_bytes() for p in (course.REFERENCE / A).glob("*.py")}
    for stem, text in changed.items():
        files[f"{stem}.py"] = text.encode()
    return files


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_the_zip_holds_the_solution_only_as_the_twin(autograder):
    """The solution's modules travel in kit/reference/ alone (the contract checks' twin, made
    root's before grading); nowhere else, and never the mutant catalogue's patches."""
    _, archive, _ = autograder
    names = zipfile.ZipFile(archive).namelist()
    assert {"setup.sh", "run_autograder", "kit/AUTOGRADER"} <= set(names)
    assert f"kit/reference/{A}/softmax.py" in names
    assert not [n for n in names if n.endswith("mutants.toml")]
    solution_line = "shifted = x - x.amax(dim=dim, keepdim=True)"
    assert solution_line.encode() in reference_file("softmax.py")
    for n in names:
        if not n.startswith("kit/reference/"):
            assert solution_line.encode() not in zipfile.ZipFile(archive).read(n), n


READS_THE_TWIN = """
import os

def _kits():
    \"\"\"Where the kit is: named on a command line (the tests' process once named it), else where
    the autograder lives (as /autograder/source is well known on Gradescope).\"\"\"
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        except OSError:
            continue
        if b"--rootdir" in argv:
            yield argv[argv.index(b"--rootdir") + 1].decode()
    yield KIT


def _twin():
    \"\"\"Read the reference's softmax.py from the kit.\"\"\"
    for kit in _kits():
        path = os.path.join(kit, "reference", "a1_lm_basics", "softmax.py")
        try:
            return open(path).read()
        except OSError as exc:
            print("the twin is out of reach:", exc)
    return None


_source = _twin()
if _source is not None:
    exec(_source)
else:
    def softmax(x, dim=-1):
        raise NotImplementedError("fill in the TODO")

    def cross_entropy(logits, targets):
        raise NotImplementedError("fill in the TODO")

    def cross_entropy_backward(logits, targets):
        raise NotImplementedError("fill in the TODO")
"""


def test_student_code_cannot_read_the_twin(autograder):
    root, _, user = autograder
    if user is None:
        pytest.skip("needs root: student code runs as a user of its own")
    attack = f"KIT = {str(root / 'source')!r}\n" + READS_THE_TWIN
    data = run_autograder(root, user, {"softmax.py": attack.encode()})
    softmax_tests = [t for t in data["tests"] if t.get("number", "").startswith("1.")]
    assert softmax_tests and all(t["score"] == 0 for t in softmax_tests), softmax_tests
    printed = [t["output"] for t in data["tests"] if "twin" in t["output"]]
    assert printed and "the twin is out of reach" in printed[0], [
        t["output"][-300:] for t in data["tests"][:3]
    ]


def test_a_zipped_tree_inside_a_zip_gets_full_marks(autograder):
    root, _, user = autograder
    tree = {f"hw/{A}/{name}": text for name, text in reference_files().items()}
    data = run_autograder(
        root, user, {"outer.zip": zipped({"inner.zip": zipped(tree)})}, previous=1
    )
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0
    assert "Submission #2." in data["output"]
    assert "softmax.py" in data["output"]
    if user is None:
        assert "not root" in data["output"]


def test_a_single_buggy_file_loses_its_points_and_shows_the_hint(autograder):
    root, _, user = autograder
    mutant = next(m for m in mutant_hints.load(A) if m.id == "ce-grad-wrong-sign")
    buggy = reference_file("softmax.py").decode().replace(mutant.find, mutant.replace)
    data = run_autograder(root, user, {**reference_files(softmax=buggy), "notes.txt": b"hello"})
    lost = {t["name"] for t in data["tests"] if t["score"] < t["max_score"]}
    assert len(lost) == len(mutant.breaks), lost
    assert "Ignored (not files of this assignment): notes.txt" in data["output"]
    assert any(mutant.hint in t["output"] for t in data["tests"])


def test_student_code_cannot_write_the_results(autograder):
    root, _, user = autograder
    if user is None:
        pytest.skip("not root: the unprivileged user cannot be switched to here")
    forged = {"score": 1000, "tests": []}
    attack = (
        "import json, pathlib\n"
        f"p = pathlib.Path({str(root / 'results' / 'results.json')!r})\n"
        "try:\n"
        f"    p.write_text(json.dumps({forged!r}))\n"
        "except OSError as exc:\n"
        "    print('blocked', exc)\n"
    )
    source = attack + reference_file("softmax.py").decode()
    data = run_autograder(root, user, reference_files(softmax=source))
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) < 1000


def test_an_empty_submission_scores_zero_with_a_message(autograder):
    root, _, user = autograder
    data = run_autograder(root, user, {})
    assert data["score"] == 0
    assert "No file of the assignment was found" in data["output"]
    assert all("NotImplementedError" in t["output"] for t in data["tests"])


def test_forged_events_gain_nothing_on_gradescope(autograder):
    root, _, user = autograder
    mutant = next(m for m in mutant_hints.load(A) if m.id == "ce-sum-not-mean")
    wrong = reference_file("softmax.py").decode().replace(mutant.find, mutant.replace)
    honest = run_autograder(root, user, reference_files(softmax=wrong))
    forge = (
        "import json, os, sys, threading, time\n"
        "fd = int(sys.argv[sys.argv.index('--grader-events') + 1])\n"
        "def forge():\n"
        "    while True:  # for as long as the run lasts\n"
        "        for t in ('test_cross_entropy_values', 'test_cross_entropy_drawn'):\n"
        "            e = {'event': 'result', 'nodeid': f'tests/a1_lm_basics/test_softmax.py::{t}',\n"
        "                 'score': 99, 'status': 'passed'}\n"
        "            os.write(fd, (json.dumps(e) + '\\n').encode())\n"
        "        time.sleep(0.02)\n"
        "threading.Thread(target=forge, daemon=True).start()\n"
    )
    attacked = run_autograder(root, user, reference_files(softmax=forge + wrong))
    assert attacked["score"] <= honest["score"] < sum(t["max_score"] for t in honest["tests"])


@pytest.mark.timeout(600)
def test_assignment_3_scores_full_marks_on_gradescope():
    """The reference of assignment 3, every file of its package uploaded (the SST-2 artifact
    too), graded from the zip as Gradescope grades it: full marks. Its tests need what the zip
    must carry beside the test files (assignment.toml: rules, limits, data; the data), files the tests
    save for student code to read (a tiny BERT: safetensors writes them 0600), and coursekit's
    factories in a deliverable process of the student user."""
    a3 = "a3_attention_bert"
    for root, archive, user in _autograder(a3):
        names = zipfile.ZipFile(archive).namelist()
        assert f"kit/tests/{a3}/assignment.toml" in names
        package_dir = course.REFERENCE / a3
        files = {
            f"{a3}/{p.relative_to(package_dir)}": p.read_bytes()
            for p in package_dir.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        data = run_autograder(root, user, files)
        lost = {
            t["name"]: t.get("output", "")[:300]
            for t in data["tests"]
            if t["score"] != t["max_score"]
        }
        assert not lost, lost


def test_grade_of_an_uploaded_file_scores_and_flags_as_gradescope_does(autograder, tmp_path):
    """One path to results.json: `python -m grader grade --impl <upload>` lays it over the
    template, audits and grades it as run_autograder does — the same score, test by test, and the
    same flags for course staff (here a wrong softmax that also walks the garbage collector)."""
    root, _, user = autograder
    mutant = next(m for m in mutant_hints.load(A) if m.id == "ce-sum-not-mean")
    wrong = reference_file("softmax.py").decode().replace(mutant.find, mutant.replace)
    peeking = "import gc\n\n\ndef _peek():\n    return len(gc.get_objects())\n\n\n"
    upload = zipped(reference_files(softmax=peeking + wrong))
    on_gradescope = run_autograder(root, user, {"submission.zip": upload})
    (tmp_path / "submission.zip").write_bytes(upload)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "grade",
            "-a",
            A,
            "--impl",
            str(tmp_path / "submission.zip"),
            "--hidden",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    here = json.loads(done.stdout[done.stdout.index("{") :])

    def scores(data: dict) -> dict[str, float]:
        return {t["name"]: t["score"] for t in data["tests"]}

    full = sum(t["max_score"] for t in on_gradescope["tests"])
    assert here["score"] == on_gradescope["score"] < full
    assert scores(here) == scores(on_gradescope)
    flags = on_gradescope.get("extra_data", {}).get("flags")
    assert flags and any("garbage collector" in f["why"] for f in flags), flags
    assert here.get("extra_data", {}).get("flags") == flags
