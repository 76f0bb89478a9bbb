"""Support code shared by reference solutions, student templates and the graded tests."""

import sys
from pathlib import Path

from grader.course import resolve_impl, tree_name


def impl_root(spec: str) -> Path:
    """The implementation tree a full-size run imports from: ``reference``, ``template`` (also
    spelt ``student_template``, as the grader accepts both) or a folder holding the packages.

    Raises:
        SystemExit: (status 2) no such folder.
    """
    root = resolve_impl(spec)
    if not root.is_dir():
        what = (
            ""
            if tree_name(spec)
            else ": not 'reference' or 'template', and no folder of that name exists"
        )
        print(f"--impl {spec!r}{what} ({root} is missing)", file=sys.stderr)
        raise SystemExit(2)
    return root.resolve()
