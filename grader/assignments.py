"""Where an assignment's pieces live, and grading one implementation tree end to end."""

from __future__ import annotations

import dataclasses
import functools
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader import hints, sandbox
from grader.records import TestMeta, TestResult
from grader.runner import KIT_ROOT, GiB, Limits, Manifest, run, run_collecting

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


@dataclass(frozen=True)
class DataNeeds:
    """The data files (``<data set>/<file>``) an assignment's graded tests read."""

    public: tuple[str, ...] = ()
    heldout: tuple[str, ...] = ()  # read by trusted checks only (e.g. held-out labels)
    models: tuple[str, ...] = ()  # pretrained models the tests load (coursekit.a3_finetune names)


def data_needs(assignment: str) -> DataNeeds:
    """From ``tests/<assignment>/data.toml`` (none when it is missing)."""
    path = TESTS / assignment / "data.toml"
    if not path.exists():
        return DataNeeds()
    data = tomllib.loads(path.read_text())
    return DataNeeds(
        tuple(data.get("public", ())), tuple(data.get("heldout", ())), tuple(data.get("models", ()))
    )


def settings(assignment: str) -> dict:
    """``tests/<assignment>/assignment.toml`` (empty when there is none)."""
    path = TESTS / assignment / "assignment.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def _extras(declared: dict) -> list[str]:
    """The pyproject.toml extras an assignment's settings name (``[install] extras``)."""
    return list(declared.get("install", {}).get("extras", []))


def install_spec(assignment: str, folder: str = ".") -> str:
    """What pip installs for the assignment (its handout's ``make setup``, the autograder's
    setup.sh): ``folder`` with the extras of pyproject.toml its assignment.toml names
    (``[install] extras``), and no other."""
    extras = _extras(settings(assignment))
    return f"{folder}[{','.join(extras)}]" if extras else folder


@functools.cache
def _packages_of_extras() -> dict[str, frozenset[str]]:
    """Each extra of pyproject.toml -> the import names of its packages (read once)."""
    path = KIT_ROOT / "pyproject.toml"
    if not path.exists():
        return {}
    extras = tomllib.loads(path.read_text()).get("project", {}).get("optional-dependencies", {})
    return {
        extra: frozenset(
            re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("-", "_") for r in reqs
        )
        for extra, reqs in extras.items()
    }


def absent_packages(declared: dict) -> tuple[str, ...]:
    """Import names of the packages of pyproject.toml's extras that an assignment's install
    leaves out (its settings, ``declared``, do not name them): its grading may not import them."""
    extras = _packages_of_extras()
    wanted = set(_extras(declared))
    kept = set().union(*(extras.get(e, frozenset()) for e in wanted))
    left_out = set().union(*(p for e, p in extras.items() if e not in wanted))
    return tuple(sorted(left_out - kept))


# [limits] keys of tests/<a>/assignment.toml -> (Limits field, conversion)
DECLARED_LIMITS = {
    "test_timeout": ("test_timeout", float),  # s, a test without a timeout mark of its own
    "run_budget": ("run_budget", float),  # s, the whole grading run
    "memory_gib": ("memory_bytes", lambda gib: int(gib * GiB)),  # address space per process
    "threads": ("threads", int),  # compute threads per test process
}


def limits_for(assignment: str, limits: Limits) -> Limits:
    """``limits`` with what the assignment declares filled in (``tests/<a>/assignment.toml``:
    ``[limits]`` and ``[boundary] preload``): one place per assignment, used by ``grade``,
    ``batch``, ``validate``, ``mutants`` and Gradescope's ``run_autograder`` alike. A value
    given on the command line (``limits.explicit``) or set by the caller (not the default) wins."""
    declared = settings(assignment)
    changes: dict = {}
    unknown = set(declared.get("limits", {})) - set(DECLARED_LIMITS)
    if unknown:
        raise ValueError(f"tests/{assignment}/assignment.toml [limits]: unknown {sorted(unknown)}; "
                         f"known: {sorted(DECLARED_LIMITS)}")  # fmt: skip
    default = Limits()
    for key, value in declared.get("limits", {}).items():
        name, convert = DECLARED_LIMITS[key]
        if name not in limits.explicit and getattr(limits, name) == getattr(default, name):
            changes[name] = convert(value)
    preload = tuple(declared.get("boundary", {}).get("preload", ()))
    if preload and not limits.preload:
        changes["preload"] = preload
    absent = absent_packages(declared)
    if absent and not limits.absent:
        changes["absent"] = absent
    return dataclasses.replace(limits, **changes) if changes else limits


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
) -> Grade:
    """Grade ``impl``: every test that calls student code reaches it through the boundary
    (``grader.boundary``), in a deliverable process of ``user`` when given; trusted checks, which
    run no student code, last, once that process has ended."""
    with sandbox.claimed(user) as owned:  # a user of this run's own (reentrant: see claimed)
        return _grade(assignment, impl, hidden, limits, manifest, files, owned)


def _grade(
    assignment: str,
    impl: Path,
    hidden: bool,
    limits: Limits,
    manifest: Manifest | None,
    files: set[str] | None,
    user: str | None,
) -> Grade:
    start = time.monotonic()
    limits = limits_for(assignment, limits)
    paths = test_paths(assignment)
    if files is not None:
        paths = [p / f for p in paths for f in sorted(files)]
    # One child: tests that reach student code through the boundary, with a deliverable process
    # of the student user beside it, then the trusted checks (no student code), once that process
    # and everything the student's code started have ended (the two never hold memory at once).
    if manifest is None:  # learnt from the grading child's own collection: one start saved
        manifest, results = run_collecting(
            paths, impl, limits, user=user, visible_only=not hidden, part="boundary"
        )
        _raise_on_collect_errors(assignment, manifest)
        chosen = manifest
    else:
        _raise_on_collect_errors(assignment, manifest)
        chosen = select(manifest, hidden=hidden, files=files)
        results = (
            run(paths, impl, chosen, limits, user=user, part="boundary") if chosen.tests else {}
        )
    hints.attach(assignment, chosen.tests, results)
    return Grade(assignment, impl, chosen.tests, results, time.monotonic() - start)
