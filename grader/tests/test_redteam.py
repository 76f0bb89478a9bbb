"""The red-team corpus (``redteam/*.toml``): every submission there tries to break or fool
the grader, and must get exactly the score and message its entry says.

Each is graded as Gradescope grades: the tests in a trusted process, student code behind the
boundary, and — when these tests run as root — running as an unprivileged user of its own, with a
folder of secrets (``{verdicts}``: as the tests are on Gradescope) and a held-out file readable by
root alone. The tests read their data from a folder laid out as the autograder zip's
(``COURSEKIT_DATA_DIR``), its held-out files root's alone as ``run_autograder`` makes them. Entries that need that user switch are skipped, saying so,
when not root. Two lanes grade in parallel, each with its own user (the grader kills every process
of the student user after a run, so two runs must not share one).

Whatever an entry expects, every grading must also leave: a valid, strict-JSON results.json under
1 MB (no leaderboard when no graded test has one), no process of the student user (as root), and
a graded tree with no link in it and nothing of the held-out file.

Only the entries whose tests are selected are graded (``-k`` picks some), with the honest
mistakes their ``no-gain`` expectations are measured against.
"""

from __future__ import annotations

import ast
import io
import json
import os
import queue
import shutil
import stat
import subprocess
import tempfile
import time
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coursekit import data as kit_data
from grader import course, sandbox
from grader.commands import autograder, package
from grader.controller import grading, mutant_hints, pipeline, results_json, runner
from grader.controller.runner import Manifest, collect
from grader.intake import submission
from grader.limits import Limits
from grader.tests.conftest import SYSTEM_PYTHON, processes_of_user, standin_python

# corpus.toml, then one file per class of attack added later (held-out data, the audit ...).
CORPUS = [
    entry
    for path in sorted(
        (Path(__file__).parent / "redteam").glob("*.toml"),
        key=lambda p: (p.name != "corpus.toml", p.name),
    )
    for entry in tomllib.loads(path.read_text()).get("attack", [])
]
A1 = "a1_lm_basics"
USERS = ("kitredteam1", "kitredteam2")
AS_ROOT = os.geteuid() == 0 and SYSTEM_PYTHON.exists()  # else no user switch
LIMITS = Limits(test_timeout=10, grace=5, exit_wait=1.0)
WRONG = "softmax-wrong-axis"  # `start = "wrong"`: the honest mistake of most entries
UPLOAD_KEYS = (
    "upload",
    "zip_in_zip",
    "links",
    "fifos",
    "zip",
    "sparse",
    "cells",
    "junk",
    "artifacts",
)
EXPECTS = ("full", "no-gain", "lose", "zero")


def _key(entry: dict) -> tuple[str, tuple[str, ...]]:
    return entry.get("assignment", A1), tuple(entry.get("tests", ["test_softmax.py"]))


def _mistake(entry: dict) -> str | None:
    """The mutant (of the assignment's catalogue) that is the entry's honest mistake, if any."""
    return entry.get("mistake") or (WRONG if entry.get("start") == "wrong" else None)


def _baseline_id(entry: dict) -> str:
    assignment, files = _key(entry)
    return f"honest:{assignment}:{','.join(files)}:{_mistake(entry)}"


def _baselines(entries: list[dict]) -> list[dict]:
    """For the ``no-gain`` entries: the same submissions without their attacks (the honest
    mistakes), each graded on every test some entry measured against it needs."""
    out: dict[str, dict] = {}
    for e in entries:
        if e["expect"] != "no-gain":
            continue
        base = out.setdefault(
            _baseline_id(e),
            {
                "id": _baseline_id(e),
                "assignment": _key(e)[0],
                "tests": list(_key(e)[1]),
                "mistake": _mistake(e),
                "expect": "-",
                "only": [],
            },
        )
        if base["only"] is not None:
            base["only"] = None if "only" not in e else sorted({*base["only"], *e["only"]})
    return list(out.values())


def _mutant(assignment: str, mutant_id: str) -> mutant_hints.Mutant:
    found = [m for m in mutant_hints.load(assignment) if m.id == mutant_id]
    assert found, f"no mutant {mutant_id!r} in {assignment}'s catalogue"
    return found[0]


def _returns_none(source: str) -> str:
    """``source`` with the body of every function and method replaced by ``return None``."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.body = [ast.Return(ast.Constant(None))]
    return ast.unparse(tree) + "\n"


def _zip_link(zf: zipfile.ZipFile, name: str, target: str) -> None:
    """A symbolic-link entry, as ``zip --symlinks`` writes it (the target is the entry's data)."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: the mode below is read
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def _artifact_from(source: Path, target: Path, spec: dict) -> None:
    """A safetensors artifact made from a reference one: ``metadata`` entries added, every tensor
    times ``factor_A`` / ``factor_B`` (LoRA's A / B), plus ``noise`` times its own standard
    deviation of seeded Gaussian noise, then stored as ``dtype``."""
    import torch
    from safetensors.torch import load_file, save_file

    from coursekit.a3_attention_bert.finetune import read_artifact

    meta = {**read_artifact(source)[1], **spec.get("metadata", {})}
    g = torch.Generator().manual_seed(0)
    out = {}
    for key, tensor in load_file(str(source)).items():
        factor = spec.get(
            "factor_A" if ".lora_A." in key else "factor_B" if ".lora_B." in key else "factor", 1.0
        )
        t = tensor.float() * factor
        t = t + spec.get("noise", 0.0) * t.std() * torch.randn(t.shape, generator=g)
        out[key] = t.to(getattr(torch, spec.get("dtype", "float32"))).contiguous()
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(target), metadata=meta)


def _command(pid: int) -> str:
    try:
        return (
            f"{pid}: "
            + Path("/proc", str(pid), "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        )
    except OSError:
        return f"{pid}: (gone)"


@dataclass
class Outcome:
    scores: dict[str, float] = field(default_factory=dict)
    max_scores: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    report: str = ""
    data: dict = field(default_factory=dict)
    results_text: str = ""
    results_intact: bool = True
    has_board: bool = False  # whether some graded test puts values on a leaderboard
    seconds: float = 0.0
    leftover: list[str] = field(default_factory=list)  # processes of the student user after it
    links_in_tree: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)  # tree files holding the held-out text
    staff_notes: list[str] = field(default_factory=list)  # what trusted checks noted for staff
    next_full: bool | None = None
    skipped: str = ""


class Harness:
    def __init__(self, root: Path, entries: list[dict]):
        self.root = root
        self.lanes: queue.Queue[str | None] = queue.Queue()
        for user in USERS if AS_ROOT else (None, None):
            self.lanes.put(user)
        self.heldout = root / "heldout" / "labels.tsv"
        self.heldout.parent.mkdir()
        self.heldout_text = "held-out sentence no submission may see\t1"
        self.heldout.write_text(f"sentence\tlabel\n{self.heldout_text}\n")
        self.manifests: dict[tuple, Manifest] = {}
        self.verdicts = root / "verdicts" / "records"  # {verdicts}: secrets, root's alone
        self.verdicts.mkdir(parents=True)
        (self.verdicts / "expected.json").write_text('{"records": []}')
        for key in sorted({_key(e) for e in entries} | {(A1, ("test_softmax.py",))}):
            assignment, files = key
            paths = [course.TESTS / assignment / f for f in files]
            self.manifests[key] = collect(paths, LIMITS)  # the limits the tests run under
        self.data = root / "data"  # the zip's kit/data: what the tests read, held-out files too
        for assignment in sorted({_key(e)[0] for e in entries} | {A1}):
            package._data(assignment, self.data)
        for path in [self.data, *self.data.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if AS_ROOT:  # what gradescope_run does: secrets and held-out data are root's alone
            for path in [root / "verdicts", *(root / "verdicts").rglob("*")]:
                path.chmod(0o700 if path.is_dir() else 0o600)
            self.heldout.chmod(0o600)
            for assignment in sorted({_key(e)[0] for e in entries} | {A1}):
                pipeline.private(autograder.heldout_files(assignment, self.data))

    def fill(self, text: str, results: Path, assignment: str = A1) -> str:
        for name, value in (
            ("results", results),
            ("verdicts", self.verdicts),
            ("heldout", self.heldout),
            ("reference", course.REFERENCE / assignment),
        ):
            text = text.replace("{" + name + "}", str(value))
        return text

    def upload(self, entry: dict, upload: Path, results: Path) -> None:
        """The files a student uploads, as the entry describes them."""
        assignment = entry.get("assignment", A1)
        ref = course.REFERENCE / assignment
        upload.mkdir()
        for name, source in entry.get("upload", {}).items():
            (upload / name).parent.mkdir(parents=True, exist_ok=True)
            (upload / name).write_bytes((ref / source).read_bytes())
        for name, target in entry.get("links", {}).items():
            (upload / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(self.fill(target, results, assignment), upload / name)
        for name in entry.get("fifos", []):
            os.mkfifo(upload / name)
        for pattern, count in entry.get("junk", {}).items():  # many small files
            for i in range(count):
                (upload / pattern.format(i)).parent.mkdir(parents=True, exist_ok=True)
                (upload / pattern.format(i)).write_bytes(b"junk")
        for name, size in entry.get("sparse", {}).items():  # holes: no disk used
            with open(upload / name, "wb") as f:
                f.truncate(size)
        for name, spec in entry.get("zip", {}).items():
            with zipfile.ZipFile(upload / name, "w") as zf:
                for arcname, source in spec.get("files", {}).items():
                    zf.writestr(arcname, (ref / source).read_bytes())
                for arcname, target in spec.get("links", {}).items():
                    _zip_link(zf, arcname, self.fill(target, results, assignment))
        for name, spec in entry.get("artifacts", {}).items():
            _artifact_from(ref / spec["from"], upload / name, spec)
        if "cells" in entry:
            import nbformat

            nb = nbformat.v4.new_notebook()
            for cell in entry["cells"]:
                nb.cells.append(nbformat.v4.new_code_cell(self.fill(cell, results, assignment)))
            nbformat.write(nb, str(upload / "hw.ipynb"))
        if entry.get("zip_in_zip"):
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w") as zf:
                for f in ref.glob("*.py"):
                    zf.writestr(f"hw/{assignment}/{f.name}", f.read_bytes())
            with zipfile.ZipFile(upload / "outer.zip", "w") as zf:
                zf.writestr("inner.zip", inner.getvalue())

    def tree(self, entry: dict, work: Path, results: Path) -> tuple[Path, str]:
        assignment = entry.get("assignment", A1)
        tree = work / "tree"
        if any(k in entry for k in UPLOAD_KEYS):
            upload = work / "upload"
            self.upload(entry, upload, results)
            placed = submission.overlay(upload, course.TEMPLATE / assignment, tree / assignment)
            report = placed.report()
        else:
            package = tree / assignment
            shutil.copytree(
                course.REFERENCE / assignment,
                package,
                ignore=shutil.ignore_patterns("__pycache__", "artifacts"),
            )
            mistake = _mistake(entry)
            module = entry.get("module") or (
                _mutant(assignment, mistake).file if mistake else "softmax.py"
            )
            if mistake:
                m = _mutant(assignment, mistake)
                text = (package / m.file).read_text()
                assert text.count(m.find) == 1, f"{entry['id']}: mutant {mistake} not found once"
                (package / m.file).write_text(text.replace(m.find, m.replace))
            target = package / module
            text = target.read_text()
            for p in entry.get("patch", []):
                assert text.count(p["find"]) == 1, f"{entry['id']}: {p['find']!r} not found once"
                text = text.replace(p["find"], self.fill(p["replace"], results, assignment))
            target.write_text(self.fill(entry.get("prepend", ""), results, assignment) + text)
            for name, content in entry.get("files", {}).items():
                if content:
                    (package / name).write_text(self.fill(content, results, assignment))
                else:
                    (package / name).unlink()
            if entry.get("every_function_returns_none"):
                for path in package.glob("*.py"):
                    path.write_text(_returns_none(path.read_text()))
            report = ""
        for path in [work, *work.rglob("*")]:  # readable by the student user, as on Gradescope
            if not path.is_symlink():  # (chmod would change the link's target)
                path.chmod(0o755 if path.is_dir() else 0o644)
        return tree, report

    def _manifest(self, entry: dict) -> Manifest:
        manifest = self.manifests[_key(entry)]
        if entry.get("only"):
            wanted = set(entry["only"])
            tests = [m for m in manifest.tests if m.nodeid.rsplit("::", 1)[1] in wanted]
            assert {m.nodeid.rsplit("::", 1)[1] for m in tests} == wanted, entry["id"]
            manifest = Manifest(tests, manifest.errors)
        return manifest

    def _grade(self, entry: dict, tree: Path, user: str | None) -> grading.Grade:
        key = _key(entry)
        return grading.grade(
            key[0],
            tree,
            hidden=True,
            limits=LIMITS,
            manifest=self._manifest(entry),
            files=set(key[1]),
            user=user,
        )

    def grade(self, entry: dict) -> Outcome:
        if entry.get("needs_user") and not AS_ROOT:
            return Outcome(skipped="needs root to run student code as a user of its own")
        work = self.root / "work" / entry["id"]
        work.mkdir(parents=True)
        results = self.root / "results" / entry["id"] / "results.json"
        results.parent.mkdir(parents=True)
        tree, report = self.tree(entry, work, results)
        out = Outcome(report=report)
        user = self.lanes.get()
        try:
            g = self._grade(entry, tree, user)
            if user is not None:  # before the lane's user grades anything else
                uid = sandbox.lookup_user(user)[0]
                out.leftover = [_command(pid) for pid in processes_of_user(uid)]
            if entry.get("next_full"):  # the next grading by the same user is unaffected
                clean = work / "next" / entry.get("assignment", A1)
                shutil.copytree(
                    course.REFERENCE / entry.get("assignment", A1),
                    clean,
                    ignore=shutil.ignore_patterns("__pycache__", "artifacts"),
                )
                for path in [clean.parent, *clean.parent.rglob("*")]:
                    path.chmod(0o755 if path.is_dir() else 0o644)
                after = self._grade(entry, clean.parent, user)
                out.next_full = after.score == after.max_score
        finally:
            self.lanes.put(user)
        out.seconds = g.seconds
        out.data = results_json.build(g.metas, g.results, execution_time=g.seconds, output=report)
        results_json.write(results, out.data)  # the parent writes it, as gradescope_run does
        time.sleep(entry.get("settle", 0))
        out.results_text = results.read_text()
        out.results_intact = json.loads(out.results_text) == json.loads(json.dumps(out.data))
        out.has_board = any(m.leaderboard for m in g.metas)
        for path in tree.rglob("*"):
            if path.is_symlink():
                out.links_in_tree.append(str(path.relative_to(tree)))
            elif path.is_file() and self.heldout_text.encode() in path.read_bytes():
                out.leaked.append(str(path.relative_to(tree)))
        names = [m.nodeid.rsplit("::", 1)[1] for m in g.metas]
        for m in g.metas:  # by test name; "file::name" where files share a name
            name = m.nodeid.rsplit("::", 1)[1]
            name = name if names.count(name) == 1 else mutant_hints.test_key(m.nodeid)
            out.scores[name] = g.results[m.nodeid].score
            out.max_scores[name] = m.max_score
            out.outputs[name] = g.results[m.nodeid].output
            out.staff_notes += g.results[m.nodeid].staff_notes
        return out


def _selected_entries(request: pytest.FixtureRequest) -> list[dict]:
    """The corpus entries whose test_attack is in this session (all of them without ``-k``)."""
    ids = {
        item.callspec.params["entry"]["id"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_attack" and hasattr(item, "callspec")
    }
    return [e for e in CORPUS if e["id"] in ids]


@pytest.fixture(scope="module")
def graded(request) -> dict[str, Outcome]:
    if AS_ROOT:
        for user in USERS:
            if subprocess.run(["id", user], capture_output=True).returncode != 0:
                subprocess.run(
                    ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                    check=True,
                )
    root = Path(tempfile.mkdtemp(prefix="redteam-"))
    root.chmod(0o755)  # pytest's own tmp folders are private to root; the student users need in
    saved = runner.PYTHON
    try:
        if AS_ROOT:  # this venv's interpreter may live under /root, out of the users' reach
            runner.PYTHON = str(standin_python(root / "venv", editable_kit=True))
        selected = _selected_entries(request)
        entries = [*_baselines(selected), *selected]
        harness = Harness(root, entries)
        saved_data = os.environ.get(kit_data.ENV)
        os.environ[kit_data.ENV] = str(harness.data)  # the grading children read it
        with ThreadPoolExecutor(max_workers=len(USERS)) as pool:
            # The slowest first, so that the two lanes finish together.
            order = sorted(entries, key=lambda e: -e.get("within", 0))
            outcomes = dict(
                zip([e["id"] for e in order], pool.map(harness.grade, order), strict=True)
            )
        yield outcomes
    finally:
        runner.PYTHON = saved
        if "saved_data" in locals():
            os.environ.pop(kit_data.ENV, None)
            os.environ.update({kit_data.ENV: saved_data} if saved_data is not None else {})
        shutil.rmtree(root, ignore_errors=True)


def test_the_corpus_is_big_and_well_formed():
    ids = [e["id"] for e in CORPUS]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)
    for e in CORPUS:
        assert e["expect"] in EXPECTS, e["id"]
        assert e.get("what"), e["id"]
        assert (e["expect"] == "lose") == bool(e.get("lost")), e["id"]
        assert e["expect"] != "no-gain" or _mistake(e), f"{e['id']}: no-gain against what mistake?"
        if _mistake(e):
            _mutant(_key(e)[0], _mistake(e))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _param(entry: dict):
    marks = []
    if entry.get("finding"):  # an attack that succeeds today: the test says what must happen
        marks.append(pytest.mark.xfail(strict=True, reason=f"finding: {entry['finding']}"))
    return pytest.param(entry, id=entry["id"], marks=marks)


@pytest.mark.timeout(1800)  # the whole corpus, graded once for every entry's test below
@pytest.mark.parametrize("entry", [_param(e) for e in CORPUS])
def test_attack(graded, entry):
    out = graded[entry["id"]]
    if out.skipped:
        pytest.skip(out.skipped)
    results_json.validate(out.data)  # the results are always valid ...
    json.loads(out.results_text, parse_constant=_reject_constant)  # ... strict JSON (no NaN) ...
    assert len(out.results_text.encode()) < 1_000_000  # ... and small enough for Gradescope
    assert out.results_intact, "results.json was changed after the grader wrote it"
    assert out.has_board or "leaderboard" not in out.data, out.data.get("leaderboard", [])[:3]
    assert not out.leftover, f"processes of the student user outlived the run: {out.leftover}"
    assert not out.links_in_tree, f"links were placed in the graded tree: {out.links_in_tree}"
    assert not out.leaked, f"the held-out file reached the graded tree: {out.leaked}"
    if "within" in entry:
        assert out.seconds <= entry["within"], f"graded in {out.seconds:.0f} s"
    if entry.get("next_full"):
        assert out.next_full, "the next grading by the same user lost points"
    full = {n: s == out.max_scores[n] for n, s in out.scores.items()}
    if entry["expect"] == "full":
        assert all(full.values()), {n: out.outputs[n] for n, ok in full.items() if not ok}
    elif entry["expect"] == "zero":
        assert not any(out.scores.values()), {n: s for n, s in out.scores.items() if s}
    elif entry["expect"] == "no-gain":
        honest = graded[_baseline_id(entry)]
        mine = set(out.scores)
        assert sum(honest.scores[n] for n in mine) < sum(honest.max_scores[n] for n in mine)
        for name, score in out.scores.items():
            assert score <= honest.scores[name], f"{name}: {score} > {honest.scores[name]}"
    else:
        lost = set(entry["lost"])
        assert lost <= set(out.scores), f"unknown tests in lost: {lost - set(out.scores)}"
        for name, ok in full.items():
            assert ok != (name in lost), (
                f"{name}: {out.scores[name]} / {out.max_scores[name]}\n{out.outputs[name]}"
            )
    if entry.get("staff_note"):
        assert any(entry["staff_note"] in n for n in out.staff_notes), out.staff_notes
    if entry.get("report"):
        assert entry["report"] in out.report, out.report
    if entry.get("message"):
        first = entry.get("lost", [None])[0]
        texts = [out.outputs[first]] if first else [out.report, *out.outputs.values()]
        assert any(entry["message"] in t for t in texts), "\n----\n".join(t[:1500] for t in texts)
