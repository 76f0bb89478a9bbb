"""Where an assignment's pieces live, and grading one implementation tree end to end."""

from __future__ import annotations

import dataclasses
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader import hints, recording
from grader import verdicts as verdicts_
from grader.records import TestMeta, TestResult
from grader.runner import KIT_ROOT, Limits, Manifest, run, run_collecting

REFERENCE = KIT_ROOT / "reference"
TEMPLATE = KIT_ROOT / "student_template"
TESTS = KIT_ROOT / "tests"


def names() -> list[str]:
    """Every assignment: a package in reference/ (in a handout or autograder: in
    student_template/) with a test folder of the same name."""
    found = {
        p.name
        for tree in (REFERENCE, TEMPLATE)
        if tree.is_dir()
        for p in tree.iterdir()
        if (p / "__init__.py").exists() and (TESTS / p.name).is_dir()
    }
    return sorted(found)


def check_name(assignment: str) -> str:
    if assignment not in names():
        raise SystemExit(
            f"unknown assignment {assignment!r}; known: {', '.join(names()) or 'none'}"
        )
    return assignment


def resolve_impl(spec: str, assignment: str) -> Path:
    """``reference``, ``template`` or a path: a folder holding the package, or the package itself."""
    if spec == "reference":
        return REFERENCE
    if spec == "template":
        return TEMPLATE
    path = Path(spec).resolve()
    if path.name == assignment and not (path / assignment).exists():
        return path.parent
    return path


def test_paths(assignment: str) -> list[Path]:
    return [TESTS / assignment]


def has_in_process_tests(assignment: str) -> bool:
    """Whether some test file of the assignment still runs student code in its own process (the
    legacy ``in_process`` marker): only those need the reference's recorded verdicts."""
    return any("mark.in_process(" in p.read_text() for p in (TESTS / assignment).glob("test_*.py"))


@dataclass(frozen=True)
class DataNeeds:
    """The data files (``<data set>/<file>``) an assignment's graded tests read."""

    public: tuple[str, ...] = ()
    heldout: tuple[str, ...] = ()  # read by trusted checks only (e.g. held-out labels)


def data_needs(assignment: str) -> DataNeeds:
    """From ``tests/<assignment>/data.toml`` (none when it is missing)."""
    path = TESTS / assignment / "data.toml"
    if not path.exists():
        return DataNeeds()
    data = tomllib.loads(path.read_text())
    return DataNeeds(tuple(data.get("public", ())), tuple(data.get("heldout", ())))


def settings(assignment: str) -> dict:
    """``tests/<assignment>/assignment.toml`` (empty when there is none)."""
    path = TESTS / assignment / "assignment.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def limits_for(assignment: str, limits: Limits) -> Limits:
    """``limits`` with what the assignment declares (libraries to preload) filled in."""
    preload = tuple(settings(assignment).get("boundary", {}).get("preload", ()))
    if preload and not limits.preload:
        limits = dataclasses.replace(limits, preload=preload)
    return limits


@dataclass
class Grade:
    assignment: str
    impl: Path
    metas: list[TestMeta]
    results: dict[str, TestResult]
    seconds: float

    @property
    def score(self) -> float:
        return sum(self.results[m.nodeid].score for m in self.metas)

    @property
    def max_score(self) -> float:
        return sum(m.max_score for m in self.metas)


def select(manifest: Manifest, *, hidden: bool, files: set[str] | None = None) -> Manifest:
    """Public tests only unless ``hidden``; optionally only tests in the named test files."""
    tests = [
        m
        for m in manifest.tests
        if (hidden or m.visibility == "visible")
        and (files is None or m.nodeid.split("::")[0].rsplit("/", 1)[-1] in files)
    ]
    return Manifest(tests, manifest.errors)


def _raise_on_collect_errors(assignment: str, manifest: Manifest) -> None:
    if manifest.errors:
        errors = "\n".join(f"{e['nodeid']}: {e['error']}" for e in manifest.errors)
        raise RuntimeError(f"the kit's tests for {assignment} do not collect:\n{errors}")


def grade(
    assignment: str,
    impl: Path,
    *,
    hidden: bool = False,
    limits: Limits = Limits(),
    manifest: Manifest | None = None,
    files: set[str] | None = None,
    user: str | None = None,
    verdicts: Path | None = None,
) -> Grade:
    """Grade ``impl``. With ``verdicts`` (a folder of the reference's expected-value records, see
    :func:`reference_records`), every recorded comparison is judged here, in the trusted parent,
    from what the student's run recorded; a test keeps the lower of that and its in-process score."""
    start = time.monotonic()
    limits = limits_for(assignment, limits)
    paths = test_paths(assignment)
    if files is not None:
        paths = [p / f for p in paths for f in sorted(files)]
    with tempfile.TemporaryDirectory(prefix="grader-records-") as tmp:
        records = (Path(tmp, "student"), "actual") if verdicts is not None else None
        if records is not None:
            Path(tmp).chmod(0o755)  # the unprivileged child writes its records in there
        # Each part in a child of its own (grader.records.TestMeta.part): tests that reach
        # student code through the boundary, in a child of the invoking user with a deliverable
        # process of the student user beside it; trusted checks, which run no student code, in a
        # child with no deliverable process (the two never hold their memory at once); legacy
        # in_process tests in a child that is the student user, judged from what it recorded.
        if manifest is None:  # learnt from the grading child's own collection: one start saved
            manifest, results = run_collecting(
                paths, impl, limits, user=user, visible_only=not hidden, part="boundary"
            )
            _raise_on_collect_errors(assignment, manifest)
            chosen = manifest
        else:
            _raise_on_collect_errors(assignment, manifest)
            chosen = select(manifest, hidden=hidden, files=files)
            results = {}
            if any(m.part == "boundary" for m in chosen.tests):
                results = run(paths, impl, chosen, limits, user=user, part="boundary")
        if any(m.part == "checks" for m in chosen.tests):
            results.update(run(paths, impl, chosen, limits, part="checks"))
        if any(m.part == "legacy" for m in chosen.tests):
            results.update(
                run(paths, impl, chosen, limits, user=user, records=records, part="legacy")
            )
        if records is not None:
            apply_verdicts(chosen.tests, results, verdicts, records[0])
    hints.attach(assignment, chosen.tests, results)
    return Grade(assignment, impl, chosen.tests, results, time.monotonic() - start)


def apply_verdicts(
    metas: list[TestMeta], results: dict[str, TestResult], reference: Path, student: Path
) -> None:
    """Lower each test's score to what its recorded values earn against the reference's records."""
    for meta in metas:
        if not meta.in_process:
            continue  # judged in a process that runs no student code: its own verdict stands
        expected = recording.read(reference, meta.nodeid)
        if not expected:
            continue  # the test compares nothing through the helper: in-process verdict only
        fraction, messages = verdicts_.judge(expected, recording.read(student, meta.nodeid))
        res = results[meta.nodeid]
        res.score = min(res.score, round(meta.max_score * fraction, 4))
        if res.score < meta.max_score:
            res.status = "failed"
        if messages:
            res.output = "\n\n".join([*messages, res.output]).strip()


def reference_records(
    assignment: str, out: Path, limits: Limits = Limits(), files: set[str] | None = None
) -> Path:
    """Run the reference with every test (hidden too), recording expected values into ``out``;
    ``files``: only those test files."""
    paths = test_paths(assignment)
    if files is not None:
        paths = [p / f for p in paths for f in sorted(files)]
    manifest, results = run_collecting(
        paths, REFERENCE, limits, records=(out, "expected"), part="legacy"
    )
    _raise_on_collect_errors(assignment, manifest)
    failing = [n for n, r in results.items() if r.status != "passed"]
    if failing:
        raise RuntimeError(f"the reference fails {failing}: its records cannot be trusted")
    return out
