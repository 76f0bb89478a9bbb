"""Support code shared by reference solutions and student templates."""

import os
import sys
from pathlib import Path

KIT_ENV = "COURSEKIT_KIT"  # the kit folder, for an installed (non-editable) package


def kit_root() -> Path:
    """The kit folder — ``reference/``, ``student_template/``, ``tests/``, ``pyproject.toml``:
    ``$COURSEKIT_KIT`` when set (``python -m grader --kit DIR`` sets it), else the source checkout
    this package runs from (an editable install), else the working directory."""
    if os.environ.get(KIT_ENV):
        return Path(os.environ[KIT_ENV]).expanduser().resolve()
    source = Path(__file__).resolve().parent.parent
    return source if (source / "tests").is_dir() else Path.cwd().resolve()


KIT_ROOT = kit_root()
TREES = {
    "reference": "reference",
    "template": "student_template",
    "student_template": "student_template",
}


def impl_root(spec: str) -> Path:
    """The implementation tree a full-size run imports from: ``reference``, ``template`` (also
    spelt ``student_template``, as the grader accepts both) or a folder holding the packages.

    Raises:
        SystemExit: (status 2) no such folder.
    """
    root = KIT_ROOT / TREES[spec] if spec in TREES else Path(spec)
    if not root.is_dir():
        print(f"--impl {spec!r}: not 'reference' or 'template', and no folder of that name exists",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    return root.resolve()
