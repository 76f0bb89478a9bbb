"""``python -m grader new NAME``: a new assignment that validates at once.

It writes every place an assignment lives (``PLACES``, at the end), each with a small worked example to
replace: the reference package with one marked solution region, its test folder with settings,
an example graded test and an empty mistake catalogue, and the course's folder for the
assignment's own code. Then it generates the student template and validates: the reference scores
full marks, the template zero. README.md, "Adding an assignment", walks through the same places.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from grader import course

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(ValueError):
    """The name cannot be an assignment's, or the assignment exists already."""


def check_name(name: str, root: Path) -> None:
    if not NAME.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(
            f"{name!r} cannot name an assignment: it is a Python package name, lower case, "
            "letters, digits and underscores, starting with a letter (e.g. a4_transformers)"
        )
    taken = [p.format(a=name) for p, _, _ in PLACES if (root / p.format(a=name)).exists()]
    taken += [f"{t}/{name}" for t in ("reference", "tests") if (root / t / name).exists()]
    if taken:
        raise ScaffoldError(f"{name!r} exists already: {sorted(set(taken))[0]}")


def files(name: str) -> dict[str, str]:
    """The text of each place (``PLACES``), for assignment ``name``."""
    return {place.format(a=name): text.format(a=name) for place, _, text in PLACES}


def create(name: str, root: Path | None = None) -> list[Path]:
    """Write the new assignment's places under the kit ``root``; returns the files written."""
    root = root or course.KIT_ROOT
    check_name(name, root)
    written = []
    for relative, text in files(name).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


_README = """# {a}

What students build, part by part, with the shapes of every input and output. The graded tests
import each deliverable by its module and name (`{a}.example.scale`): keep the names, signatures
and shapes stated here.

## Part 1 — `example.py`

`scale(x, factor)`: `factor · x`, elementwise, for a floating-point `x` of any shape; the result
has the shape and dtype of `x`.
"""

_EXAMPLE = '''"""Part 1: the example deliverable (replace it with the handout's).

Shapes: any; the result has the input's.
"""

from torch import Tensor


def scale(x: Tensor, factor: float) -> Tensor:
    """``factor · x``, elementwise.

    Inputs:
        x: any shape, floating point.
        factor: a number.
    Returns:
        Tensor of the shape and dtype of ``x``.
    """
    # BEGIN SOLUTION
    # TODO: multiply x by factor (one line; no loop needed).
    return x * factor
    # END SOLUTION
'''

_SETTINGS = """# Settings of {a}'s grading, read by grader.course (one file: install, limits, data, rules).

[limits]
# Used by `grade`, `batch`, `validate`, `mutants` and Gradescope's run_autograder alike; a
# command-line option overrides one (`--budget`, ...).
test_timeout = 60  # s, a test without a timeout mark of its own
run_budget = 600  # s, the whole grading run
memory_gib = 4  # address space per test process (torch maps far more than it touches)
threads = 1  # compute threads per test process, as on Gradescope

[data]
# The data files the graded tests read (`<data set>/<file>`, declared in coursekit/data.py).
# `heldout` files are what graded figures are scored on: root's alone on Gradescope, never in a
# handout, never given to student code.
public = []
heldout = []
models = []  # pretrained models the tests load (coursekit/pretrained.py)

# How a deliverable must be written, checked on the submitted source (grader.intake.audit):
# [[rule]]
# id = "..."  # named by the test that grades it
# files = ["example.py"]
# forbid = ["*some_library_function*"]
# why = "what the handout asks, shown to the student"
"""

_TEST = '''"""{a}, part 1 — ``scale``. Oracle: ``factor * x`` computed here, in float64."""

import pytest
import torch
from compare import assert_close
from hypothesis import given
from strategies import moderate_floats, tensors

from grader.testprocess.deliverables import deliverable

example = deliverable("{a}.example")


@pytest.mark.points(1)
@pytest.mark.number("1.1")
def test_scale_of_a_small_matrix(check):
    """scale of a 2x3 matrix by 2 and by -0.5"""
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]], dtype=torch.float64)
    for factor in (2.0, -0.5):
        with check(f"factor {{factor}}"):
            assert_close(example.scale(x, factor), factor * x, what=f"scale(x, {{factor}})")


@pytest.mark.points(2)
@pytest.mark.number("1.2")
@given(x=tensors(), factor=moderate_floats)
def test_scale_of_drawn_inputs(x, factor):
    """scale keeps shape and dtype, and agrees with factor · x over drawn shapes and values"""
    assert_close(
        example.scale(x, factor),
        factor * x,
        what=f"scale(x, {{factor}}) for x of shape {{tuple(x.shape)}}",
        hint="multiply every element by factor; keep the input's shape and dtype",
    )
'''

_MUTANTS = """# Realistic student mistakes, each a one-place patch of a reference file. `python -m grader mutants`
# grades every mutant and requires it to lose points on exactly the tests listed in `breaks`;
# a student who fails those same tests is shown the `hint`. For example:
#
# [[mutant]]
# id = "scale-adds-instead"
# file = "example.py"
# find = "return x * factor"
# replace = "return x + factor"
# breaks = ["test_example.py::test_scale_of_a_small_matrix",
#           "test_example.py::test_scale_of_drawn_inputs"]
# hint = "scale multiplies by factor: x * factor, not x + factor."
"""

# Where an assignment lives, relative to the kit — what `new` writes, in this order — with what
# each place holds and the text it starts with (``{a}``: the assignment's name).
PLACES = (
    (
        "reference/{a}/__init__.py",
        "the package students complete (the reference's copy)",
        '"""{a}: the deliverables of the handout."""\n',
    ),
    ("reference/{a}/README.md", "the handout's part of it: deliverables, shapes, rules", _README),
    (
        "reference/{a}/example.py",
        "a deliverable, its solution between BEGIN/END SOLUTION marks",
        _EXAMPLE,
    ),
    (
        "tests/{a}/assignment.toml",
        "its settings: install extras, limits, data files, rules",
        _SETTINGS,
    ),
    (
        "tests/{a}/test_example.py",
        "a graded test: points, number, a property over drawn inputs",
        _TEST,
    ),
    ("tests/{a}/mutants.toml", "its catalogue of realistic mistakes (empty: add them)", _MUTANTS),
    (
        "coursekit/{a}/__init__.py",
        "the course's own code for it (training loops, loaders)",
        '"""The kit\'s code for {a}: what its tests and full-size runs use beside the deliverables."""\n',
    ),
)
