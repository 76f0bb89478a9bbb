"""The course: where the kit is, its trees, and what each assignment declares.

One home for what every command needs to know about the course in front of it:

- the kit folder (``$COURSEKIT_KIT``, set by ``python -m grader --kit DIR``; else the checkout
  this package runs from; else the working directory) and its three trees: ``reference/``,
  ``student_template/`` and ``tests/``;
- what ``--impl`` names (``reference``, ``template``, or a path) and which assignments there are;
- an assignment's settings, one file, ``tests/<a>/assignment.toml``: ``[install]`` extras,
  ``[boundary]`` preload, ``[limits]``, ``[data]`` (the files its tests read, public and held
  out, and the pretrained models) and its ``[[rule]]`` list (how a deliverable must be written,
  read by ``grader.intake.audit``).
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader.limits import Limits, with_declared

KIT_ENV = "COURSEKIT_KIT"  # the kit folder, for an installed (non-editable) package
SETTINGS = "assignment.toml"  # an assignment's settings, in its test folder


def kit_root() -> Path:
    """The kit folder — ``reference/``, ``student_template/``, ``tests/``, ``pyproject.toml``."""
    if os.environ.get(KIT_ENV):
        return Path(os.environ[KIT_ENV]).expanduser().resolve()
    source = Path(__file__).resolve().parent.parent
    return source if (source / "tests").is_dir() else Path.cwd().resolve()


@functools.cache
def _trees() -> dict[str, Path]:
    root = kit_root()
    return {
        "KIT_ROOT": root,
        "REFERENCE": root / "reference",
        "TEMPLATE": root / "student_template",
        "TESTS": root / "tests",
    }


def __getattr__(name: str) -> Path:
    """``KIT_ROOT``, ``REFERENCE``, ``TEMPLATE``, ``TESTS``: found on first use, not at import
    (``python -m grader --kit DIR`` sets ``$COURSEKIT_KIT`` first), then fixed for the process."""
    if name in ("KIT_ROOT", "REFERENCE", "TEMPLATE", "TESTS"):
        return _trees()[name]
    raise AttributeError(name)


# What --impl may name instead of a path, and the folder of the kit each name is.
TREES = {
    "reference": "reference",
    "template": "student_template",
    "student_template": "student_template",
}


def tree_name(spec: str) -> str | None:
    """``reference`` or ``template`` for a name of a tree (``student_template`` too), else None."""
    if spec not in TREES:
        return None
    return "reference" if TREES[spec] == "reference" else "template"


def resolve_impl(spec: str, assignment: str | None = None) -> Path:
    """The folder ``--impl`` names: a tree, a folder holding the assignment's package, or (given
    the assignment) the package itself, or a submitted file."""
    if spec in TREES:
        return _trees()["KIT_ROOT"] / TREES[spec]
    path = Path(spec).resolve()
    if assignment and path.name == assignment and not (path / assignment).exists():
        return path.parent
    return path


def names() -> list[str]:
    """Every assignment: a package in reference/ (in a handout or autograder: in
    student_template/) with a test folder of the same name."""
    found = {
        p.name
        for tree in (_trees()["REFERENCE"], _trees()["TEMPLATE"])
        if tree.is_dir()
        for p in tree.iterdir()
        if (p / "__init__.py").exists() and (_trees()["TESTS"] / p.name).is_dir()
    }
    return sorted(found)


def test_paths(assignment: str) -> list[Path]:
    return [_trees()["TESTS"] / assignment]


def settings_path(assignment: str, tests_root: Path | None = None) -> Path:
    return (tests_root or _trees()["TESTS"]) / assignment / SETTINGS


def settings(assignment: str, tests_root: Path | None = None) -> dict:
    """``tests/<assignment>/assignment.toml`` (empty when there is none)."""
    path = settings_path(assignment, tests_root)
    return tomllib.loads(path.read_text()) if path.exists() else {}


@dataclass(frozen=True)
class DataNeeds:
    """The data files (``<data set>/<file>``) an assignment's graded tests read."""

    public: tuple[str, ...] = ()
    heldout: tuple[str, ...] = ()  # read by trusted checks only (e.g. held-out labels)
    models: tuple[str, ...] = ()  # pretrained models the tests load (by the course's names)


def data_needs(assignment: str, tests_root: Path | None = None) -> DataNeeds:
    """The ``[data]`` table of the assignment's settings."""
    data = settings(assignment, tests_root).get("data", {})
    return DataNeeds(
        tuple(data.get("public", ())), tuple(data.get("heldout", ())), tuple(data.get("models", ()))
    )


def handout_settings(assignment: str) -> str:
    """The handout's assignment.toml: the kit's, with no held-out file in ``[data]`` (a handout
    holds none, so its tests score public stand-ins and say so). Checked: everything else reads
    the same as the kit's file."""
    text = settings_path(assignment).read_text()
    needs = data_needs(assignment)

    def items(names: tuple[str, ...]) -> str:
        return "[" + "".join(f'\n    "{n}",' for n in names) + ("\n]" if names else "]")

    table = (
        "[data]\n# A handout holds public data alone: tests that score held-out files on Gradescope\n"
        "# score a public stand-in here, and say so.\n"
        f"public = {items(needs.public)}\nheldout = []\nmodels = {items(needs.models)}\n"
    )
    # The [data] table runs from its header to the next table header (or the end).
    written = re.sub(r"(?ms)^\[data\]\n.*?(?=^\[|\Z)", lambda _: table + "\n", text, count=1)
    original, handout = tomllib.loads(text), tomllib.loads(written)
    original.pop("data", None)
    if handout.pop("data", {}).get("heldout") != [] or handout != original:
        raise ValueError(f"tests/{assignment}/{SETTINGS}: its [data] table could not be rewritten")
    return written


def _extras(declared: dict) -> list[str]:
    """The pyproject.toml extras an assignment's settings name (``[install] extras``)."""
    return list(declared.get("install", {}).get("extras", []))


def install_spec(assignment: str, folder: str = ".") -> str:
    """What pip installs for the assignment (its handout's ``make setup``, the autograder's
    setup.sh): ``folder`` with the extras of pyproject.toml its settings name, and no other."""
    extras = _extras(settings(assignment))
    return f"{folder}[{','.join(extras)}]" if extras else folder


@functools.cache
def _pyproject() -> dict:
    """The kit's pyproject.toml, read once (empty when there is none)."""
    path = _trees()["KIT_ROOT"] / "pyproject.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


@functools.cache
def _packages_of_extras() -> dict[str, frozenset[str]]:
    """Each extra of pyproject.toml -> the import names of its packages."""
    extras = _pyproject().get("project", {}).get("optional-dependencies", {})
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


def limits_for(assignment: str, limits: Limits) -> Limits:
    """``limits`` with what the assignment declares filled in (``[limits]``, ``[boundary]
    preload`` and ``trusted_apart``, the packages its install leaves out): one place per assignment, used by ``grade``,
    ``batch``, ``validate``, ``mutants`` and Gradescope's ``run_autograder`` alike."""
    declared = settings(assignment)
    boundary = declared.get("boundary", {})
    return with_declared(
        limits,
        declared.get("limits", {}),
        f"tests/{assignment}/{SETTINGS}",
        preload=tuple(boundary.get("preload", ())),
        trusted_apart=bool(boundary.get("trusted_apart", False)),
        absent=absent_packages(declared),
    )


HOOKS = ("data", "models")  # the course's modules the grader calls (grader.data.course_module)


def hooks() -> dict[str, str]:
    """pyproject.toml's ``[tool.grader]``: the dotted module of each of the course's ``HOOKS``."""
    declared = _pyproject().get("tool", {}).get("grader", {})
    missing = [h for h in HOOKS if not isinstance(declared.get(h), str)]
    if missing:
        raise LookupError(f"pyproject.toml's [tool.grader] names no module for {missing}")
    return {h: declared[h] for h in HOOKS}


def course_packages() -> list[str]:
    """The course's top-level packages (those of its ``HOOKS``: ``coursekit``; none when
    pyproject.toml names no hook)."""
    try:
        return sorted({module.split(".")[0] for module in hooks().values()})
    except LookupError:
        return []
