"""Generate ``student_template/`` from the marked solution regions of ``reference/``.

In a reference file, a solution region is::

    def double(x):
        '''Docstring with shapes (kept).'''
        # BEGIN SOLUTION
        # TODO: multiply x by two.                      <- kept in the stub
        #       Plain arithmetic is enough.             <- continuation, kept
        y = 2 * x                                       <- removed
        return y                                        <- removed
        # END SOLUTION

and becomes the TODO lines followed by ``raise NotImplementedError("double: ...")``. A region at
module level is removed (its TODO lines are kept) and raises nothing. Files without regions are
copied unchanged; ``__pycache__`` and trained outputs under ``artifacts/`` (but its README) are
never copied.
"""

from __future__ import annotations

import ast
import difflib
import filecmp
import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.course import KIT_ROOT

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
TODO = re.compile(r"^\s*# TODO\b")
CONTINUATION = re.compile(r"^\s*#\s{2,}\S")  # "#   more words": continues a TODO


class MarkerError(ValueError):
    """A reference file's solution markers are malformed."""


def _enclosing_functions(source: str) -> dict[int, str]:
    """Line number -> qualified name of the innermost function containing it."""
    tree = ast.parse(source)
    owner: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    for line in range(child.lineno, (child.end_lineno or child.lineno) + 1):
                        owner[line] = name
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return owner


def stub_source(source: str, filename: str = "<reference>") -> str:
    """The student version of one reference file."""
    try:
        owners = _enclosing_functions(source)
    except SyntaxError as exc:
        raise MarkerError(f"{filename}: the reference file does not parse: {exc}") from exc
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        begin = BEGIN.match(lines[i])
        if not begin:
            if END.match(lines[i]):
                raise MarkerError(f"{filename}:{i + 1}: END SOLUTION without BEGIN")
            out.append(lines[i])
            i += 1
            continue
        start = i
        indent = begin["indent"]
        i += 1
        keep_todo = False
        while i < len(lines) and not END.match(lines[i]):
            if BEGIN.match(lines[i]):
                raise MarkerError(f"{filename}:{i + 1}: nested BEGIN SOLUTION")
            if TODO.match(lines[i]) or (keep_todo and CONTINUATION.match(lines[i])):
                out.append(lines[i])
                keep_todo = True
            else:
                keep_todo = False
            i += 1
        if i == len(lines):
            raise MarkerError(f"{filename}:{start + 1}: BEGIN SOLUTION without END")
        i += 1  # skip END
        if indent:
            func = owners.get(start + 1, "this function")
            out.append(f'{indent}raise NotImplementedError("{func}: fill in the TODO above")\n')
    stub = "".join(out)
    try:
        ast.parse(stub)
    except SyntaxError as exc:
        raise MarkerError(f"{filename}: the generated stub does not parse: {exc}") from exc
    return stub


def generate(reference: Path, out: Path) -> None:
    """Write the template tree for every assignment package in ``reference`` into ``out``."""
    for src in sorted(reference.rglob("*")):
        rel = src.relative_to(reference)
        if "__pycache__" in rel.parts or src.is_dir():
            continue
        if "artifacts" in rel.parts[:-1] and rel.name != "README.md":
            continue  # trained weights and their reports are the reference's, never the students'

        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".py":
            dst.write_text(stub_source(src.read_text(), str(rel)))
        else:
            shutil.copyfile(src, dst)


MANIFEST = ".generated.json"  # what the last generation wrote: file -> sha256 of its text


def _tree_files(root: Path) -> set[Path]:
    """The files that generation owns: not caches, not trained artifacts (a student's own)."""
    files = set()
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_file() and "__pycache__" not in rel.parts and rel.as_posix() != MANIFEST:
            if "artifacts" not in rel.parts[:-1] or rel.name == "README.md":
                files.add(rel)
    return files


def differences(expected: Path, actual: Path) -> list[str]:
    """Human-readable differences between the generated tree and the committed one."""
    want, have = _tree_files(expected), _tree_files(actual)
    problems = [f"missing from {actual.name}/: {p}" for p in sorted(want - have)]
    problems += [f"not generated from reference/ (remove it): {p}" for p in sorted(have - want)]
    for rel in sorted(want & have):
        if not filecmp.cmp(expected / rel, actual / rel, shallow=False):
            diff = difflib.unified_diff(
                (actual / rel).read_text().splitlines(),
                (expected / rel).read_text().splitlines(),
                f"committed/{rel}",
                f"generated/{rel}",
                lineterm="",
                n=1,
            )
            problems.append("\n".join(list(diff)[:30]))
    return problems


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(tree: Path) -> dict[str, str]:
    return {rel.as_posix(): _digest(tree / rel) for rel in sorted(_tree_files(tree))}


@dataclass
class Synced:
    """What a regeneration did (or, with ``check``, would find)."""

    problems: list[str] = field(default_factory=list)  # differences from the generated tree
    kept: list[str] = field(default_factory=list)  # files changed since generated: left alone


def sync(
    check: bool, reference: Path | None = None, template: Path | None = None, force: bool = False
) -> Synced:
    """Regenerate ``student_template/``; with ``check``, only report how it differs.

    Student work is never lost: a file that differs from what the last generation wrote (its
    digest in ``MANIFEST``) is kept as it is and reported — unless ``force`` — and files that
    generation never wrote (a student's own, trained artifacts) are left alone."""
    reference = reference or KIT_ROOT / "reference"
    template = template or KIT_ROOT / "student_template"
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp, "student_template")
        fresh.mkdir()
        generate(reference, fresh)
        done = Synced(
            differences(fresh, template) if template.exists() else ["no student_template/"]
        )
        recorded = template / MANIFEST
        if (
            check
            and template.exists()
            and (not recorded.exists() or json.loads(recorded.read_text()) != _manifest(fresh))
        ):
            done.problems.append(f"{MANIFEST} does not list the generated files' digests")
        if not check and done.problems:
            done.kept = _update(fresh, template, force)
    return done


def _update(fresh: Path, template: Path, force: bool) -> list[str]:
    recorded = template / MANIFEST
    before = json.loads(recorded.read_text()) if recorded.exists() else {}
    want, have = _tree_files(fresh), _tree_files(template)
    after, kept = {}, []
    for rel in sorted(want):
        new, old, key = fresh / rel, template / rel, rel.as_posix()
        same = old.exists() and filecmp.cmp(new, old, shallow=False)
        if old.exists() and not same and not force and before.get(key) != _digest(old):
            kept.append(key)  # changed since it was generated: a student's work
            if key in before:
                after[key] = before[key]
            continue
        if not same:
            old.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(new, old)
        after[key] = _digest(old)
    for rel in sorted(have - want):  # generated once, no longer: removed only if untouched
        if before.get(rel.as_posix()) == _digest(template / rel):
            (template / rel).unlink()
    recorded.write_text(json.dumps(after, indent=1, sort_keys=True) + "\n")
    return kept
