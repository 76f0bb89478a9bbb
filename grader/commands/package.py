"""Build what leaves the instructor's repository: the Gradescope autograder zip, and the handout.

Autograder zip (``python -m grader autograder -a A --out DIR``)::

    setup.sh          # Gradescope runs it once, as root: Python 3.11 or 3.12 venv, pinned packages
                      # (CPU torch), and an unprivileged user "student"
    run_autograder    # grades /autograder/submission, writes /autograder/results/results.json
    kit/              # grader, coursekit, tests of A (hidden ones too), the template of A,
                      # hints (never the mutant patches), pyproject.toml, constraints.txt,
                      # and data/: the files the tests read (tests/A/assignment.toml [data]; held-out ones
                      # root-only at grading: read by the tests' process alone)
      reference/A/    # the solution's modules, the twin of the contract checks (tests/twin.py)
      AUTOGRADER      # marks the kit as a zip's: tests/ and reference/ become root's alone

``run_autograder`` makes ``tests/``, ``reference/`` and the held-out data root's alone before any
student code runs, and student code runs as another user: it can read none of them. The zip never
contains the mutant catalogue's patches (they quote the solution outside that folder).

Handout (``python -m grader handout -a A --out DIR``): the template of A, its *public* test files
(not those that compare with the reference: ``reference_only``),
the grader, coursekit, hints, and a student README with ``make grade``. It holds and fetches
public data alone: its assignment.toml lists no held-out file (so grading there needs none), its
``make data`` fetches the public files, and a test that scores held-out data on Gradescope scores
a public stand-in there, saying so.
"""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path

from grader import course
from grader.controller import mutant_hints
from grader.controller.runner import collect
from grader.course import KIT_ROOT

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image.
set -euo pipefail
cd /autograder/source
export DEBIAN_FRONTEND=noninteractive  # python3.12 needs tzdata, which would ask for a time zone

# A Python the kit supports (pyproject.toml's requires-python; torch 2.13.0 has CPU wheels for
# both), with its venv module: the image's own, else one from its package archive. Ubuntu 22.04's
# archive has python3.11 (universe, jammy-updates), 24.04's python3.12 alone.
PYTHONS="3.11 3.12"
pick_python() {{
  local v
  for v in $PYTHONS; do
    if command -v "python$v" >/dev/null 2>&1 && "python$v" -c "import ensurepip, venv" 2>/dev/null; then
      echo "python$v"
      return 0
    fi
  done
  apt-get update >&2 || true  # lists that fail to update are read as they are
  for v in $PYTHONS; do
    # grep reads all of apt-cache's output: with -q it would stop at the match, and apt-cache,
    # killed writing the rest (SIGPIPE), would fail the pipeline (pipefail).
    if LC_ALL=C apt-cache policy "python$v-venv" | grep "Candidate: [0-9]" >/dev/null; then
      apt-get install -y --no-install-recommends "python$v" "python$v-venv" >&2 || return 1
      echo "python$v"
      return 0
    fi
  done
  echo "setup.sh: found neither Python ${{PYTHONS/ / nor }} with its venv module in this image," \\
    "nor a python3.N-venv package for them in its archive: choose Gradescope's Ubuntu 22.04 or" \\
    "24.04 base image" >&2
  return 1
}}
PYTHON=$(pick_python)
"$PYTHON" --version
"$PYTHON" -m venv /autograder/venv
# torch's CPU build comes from PyTorch's CPU wheel index: the default wheel pulls GBs of CUDA.
/autograder/venv/bin/pip install --quiet --extra-index-url https://download.pytorch.org/whl/cpu \\
    -c kit/constraints.txt -e "{spec}"
id -u student >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin student
# The kit is readable by the student user, never writable; the tests (hidden ones too) are root's:
# they run in the trusted process, student code in a process of its own (grader.boundary).
chmod -R a+rX,go-w /autograder/source /autograder/venv
chmod -R go-rwx /autograder/source/kit/tests
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. The grader writes results.json itself, always.
# GRADER_USER: the unprivileged user student code runs as; unset, "student"; set and empty, none
# (no user switch: what `--user ''` means).
cd "${{AUTOGRADER_ROOT:-/autograder}}/source/kit"
exec "${{GRADER_PYTHON:-/autograder/venv/bin/python}}" -m grader gradescope \\
    --assignment {assignment} --root "${{AUTOGRADER_ROOT:-/autograder}}" --user "${{GRADER_USER-student}}"
"""

STUDENT_README = """# {assignment}

1. Set up once: `make setup` (creates `.venv` with the pinned packages, torch from PyTorch's CPU
   wheel index; needs Python 3.11 or 3.12), then `make data` (downloads the public data files the tests
   read into `~/.cache/coursekit/data`, or set `COURSEKIT_DATA_DIR` to a folder that already
   holds them).
2. Fill in the `TODO`s in `student_template/{assignment}/`.
3. `make grade` runs the public tests through the grader and prints your points, what differed
   where, and hints for common mistakes. Gradescope runs the same tests plus hidden ones. If data
   is missing, `make grade` says so and grades nothing: that is a setup problem, not a mistake
   in your code (`.venv/bin/python -m grader grade -a {assignment}` exits with status 3 then;
   `make` exits 2 whenever a command fails).
4. Figures that training tests and artifact checks measure (perplexity, accuracy) are scored
   here on public dev data, and on Gradescope on held-out data that is in no handout: the
   thresholds leave a margin for the difference, and the test's message says which data it used.

5. **Upload to Gradescope** (the assignment's page, "Submit"): your modules of
   `student_template/{assignment}/` — the `.py` files you filled in, with their names unchanged
   (and `artifacts/` where a part asks for trained weights) — as files or as one zip of them.
   Gradescope lays them over the template and grades them with these tests and hidden ones.

Plain pytest also works, on your folder by default: `.venv/bin/python -m pytest tests/{assignment}`.
"""

STUDENT_MAKEFILE = """PY := .venv/bin/python
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
.PHONY: setup data grade
setup: .venv/.installed
.venv/.installed: pyproject.toml constraints.txt
\ttest -x $(PY) || python3 -m venv .venv
\t$(PIP) --retries 0 --extra-index-url $(TORCH_INDEX) torch
\t$(PIP) -e "{spec}"
\ttouch $@
data: setup
\t$(PY) -m coursekit.data {files}
grade: setup
\t$(PY) -m grader grade --assignment {assignment} --impl template
"""

SHARED_TEST_FILES = ("conftest.py", "compare.py", "strategies.py", "twin.py", "instruments.py")


def _public_files(assignment: str) -> list[str]:
    """The public data files the assignment's graded tests read (its settings' ``[data]``): a handout's."""
    return list(course.data_needs(assignment).public)


def _copy(src: Path, dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "*.egg-info")
    if src.is_dir():
        shutil.copytree(src, dst, ignore=ignore)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def _hints_json(assignment: str, dst: Path) -> None:
    """The catalogue's hints without its patches (``find``/``replace`` quote the solution)."""
    data = [
        {"id": m.id, "breaks": list(m.breaks), "hint": m.hint}
        for m in mutant_hints.load(assignment)
    ]
    dst.write_text(json.dumps(data, indent=1))


def _data(assignment: str, dest: Path) -> None:
    """Write the data files the tests read (``[data]`` of ``tests/<assignment>/assignment.toml``) into ``dest``:
    copies, and derived files (a sample, a part of a corpus) made from their sources."""
    from grader.data import course_module

    materialize = course_module("data").materialize
    needs = course.data_needs(assignment)
    for name in (*needs.public, *needs.heldout):
        materialize(name, dest)


AUTOGRADER_MARK = (
    "AUTOGRADER"  # in an autograder zip's kit folder (grader.commands.autograder reads it)
)


def _kit(assignment: str, dest: Path, *, test_files: list[Path], handout: bool = False) -> None:
    for name in ("pyproject.toml", "constraints.txt"):
        _copy(KIT_ROOT / name, dest / name)
    if handout:  # plain `pytest` there grades the student's own folder (a handout has no reference)
        ini = (dest / "pyproject.toml").read_text()
        ours = ini.replace('grader_impl = "reference"', 'grader_impl = "student_template"', 1)
        if ours == ini:
            raise ValueError('pyproject.toml has no grader_impl = "reference" line to change')
        (dest / "pyproject.toml").write_text(ours)
    _copy(KIT_ROOT / "grader", dest / "grader")
    _copy(KIT_ROOT / "coursekit", dest / "coursekit")
    for name in SHARED_TEST_FILES:
        _copy(KIT_ROOT / "tests" / name, dest / "tests" / name)
    for f in test_files:
        _copy(f, dest / "tests" / assignment / f.name)
    _hints_json(assignment, dest / "tests" / assignment / "hints.json")
    settings = course.settings_path(assignment)  # its data, rules and grading settings
    if settings.exists():
        written = course.handout_settings(assignment) if handout else settings.read_text()
        (dest / "tests" / assignment).mkdir(parents=True, exist_ok=True)
        (dest / "tests" / assignment / settings.name).write_text(written)
    template = dest / "student_template" / assignment
    _copy(course.TEMPLATE / assignment, template)
    if not handout:
        (dest / "reference").mkdir()  # the ini's default tree; empty on purpose


def _all_test_files(assignment: str) -> list[Path]:
    return sorted(p for p in (course.TESTS / assignment).glob("*.py"))


def public_test_files(assignment: str) -> list[Path]:
    """Test files whose every test is visible and none compares with the reference (a handout
    carries no reference); a file mixing visibilities is an error."""
    manifest = collect(course.test_paths(assignment))
    vis: dict[str, set[str]] = {}
    needs_reference: set[str] = set()
    for m in manifest.tests:
        name = m.nodeid.split("::")[0].rsplit("/", 1)[-1]
        vis.setdefault(name, set()).add(m.visibility)
        if m.reference_only:
            needs_reference.add(name)
    mixed = [f for f, v in vis.items() if len(v) > 1]
    if mixed:
        raise ValueError(f"put hidden tests in files of their own: {mixed} mix visibilities")
    return [
        f
        for f in _all_test_files(assignment)
        if vis.get(f.name, {"visible"}) == {"visible"} and f.name not in needs_reference
    ]


def _zip(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo.from_file(path, path.relative_to(folder))
                with open(path, "rb") as f:
                    zf.writestr(info, f.read(), zipfile.ZIP_DEFLATED)
    return archive


def autograder(assignment: str, out: Path) -> Path:
    """Build ``out/autograder-<assignment>.zip``; returns its path."""
    stage = out / f"autograder-{assignment}"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    _kit(assignment, stage / "kit", test_files=_all_test_files(assignment))
    _data(assignment, stage / "kit" / "data")  # held-out files are made root-only at grading
    # The contract checks' twin (tests/twin.py): the solution's modules, root's alone at grading.
    for module in sorted((course.REFERENCE / assignment).glob("*.py")):
        _copy(module, stage / "kit" / "reference" / assignment / module.name)
    (stage / "kit" / AUTOGRADER_MARK).write_text(
        "This kit is an autograder zip's: run_autograder makes tests/, reference/ and the "
        "held-out data root's alone before any student code runs.\n"
    )
    setup = SETUP_SH.format(spec=course.install_spec(assignment, "kit"))
    for name, text in (
        ("setup.sh", setup),
        ("run_autograder", RUN_AUTOGRADER.format(assignment=assignment)),
    ):
        path = stage / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return _zip(stage, out / f"autograder-{assignment}.zip")


def handout(assignment: str, out: Path) -> Path:
    """Build ``out/handout-<assignment>/`` (and a zip of it); returns the folder."""
    stage = out / f"handout-{assignment}"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    _kit(assignment, stage, test_files=public_test_files(assignment), handout=True)
    (stage / "README.md").write_text(STUDENT_README.format(assignment=assignment))
    (stage / "Makefile").write_text(
        STUDENT_MAKEFILE.format(
            assignment=assignment,
            files=" ".join(_public_files(assignment)),
            spec=course.install_spec(assignment),
        )
    )
    _zip(stage, out / f"handout-{assignment}.zip")
    return stage
