"""Lay a student's submission over the template tree, whatever shape it arrives in.

Students upload the files they changed, or the whole tree, or a zip of it (sometimes a zip inside
a zip). Each submitted file is placed by this rule:

1. a path through a folder named like the assignment package goes where it says
   (``anything/a1_lm_basics/softmax.py`` -> ``softmax.py``);
2. otherwise a file whose name is unique in the template goes where the template has it
   (``softmax.py`` -> ``softmax.py``; ``lora.py`` uploaded alone -> ``lora.py``);
3. a trained artifact (``*.safetensors``) goes to ``artifacts/``;
4. a notebook (``*.ipynb``) has its definitions moved into the modules (``grader.intake.notebook``);
5. anything else is ignored, and said so.

Files the submission does not have keep the template's version (which raises NotImplementedError).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.intake import notebook

ACCEPTED = {".py", ".safetensors", ".ipynb"}
MAX_FILES = 2000
MAX_BYTES = 300 * 1024**2  # after unzipping: a zip bomb stops here
MAX_ZIP_DEPTH = 3
MAX_PROBLEMS = 30  # lines of the report about files that were skipped
SKIP_PARTS = {"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints"}


@dataclass
class Overlay:
    used: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # the template's modules, by their path

    def report(self) -> str:
        lines = []
        if self.used:
            lines.append("Graded from your submission: " + ", ".join(sorted(self.used)))
        else:
            lines.append(
                "No file of the assignment was found in your submission: upload its modules ("
                + ", ".join(self.expected[:12])
                + (", ..." if len(self.expected) > 12 else "")
                + "), alone, in a zip or in a notebook; every test below runs the template's stubs."
            )
        if self.ignored:
            lines.append(
                "Ignored (not files of this assignment): " + ", ".join(sorted(self.ignored)[:20])
            )
        lines += self.problems[:MAX_PROBLEMS]
        if len(self.problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(self.problems) - MAX_PROBLEMS} more problems.")
        return "\n".join(lines)


MAX_ENTRIES = 100_000  # files and folders looked at in one upload (its zips included)

# The order in which submitted files take the upload's budget (bytes, files): files that replace
# one of the template's first, then other modules of the package (a student's helpers), then zips
# (their entries in the same order), then artifacts and notebooks. Files that can never be placed
# are only named in the report: neither copied nor counted.
OWN, HELPER, ARCHIVE, OTHER = 0, 1, 2, 3


class _Ranker:
    """Where a submitted file stands in the queue for the upload's budget (None: never placed)."""

    def __init__(self, package: str, by_name: dict[str, list[Path]]) -> None:
        self.package, self.by_name = package, by_name
        self.template = {p for paths in by_name.values() for p in paths}

    def destination(self, rel: Path) -> Path | None:
        """Where the overlay puts ``rel`` inside the package (rules 1 and 2 of this module)."""
        parts = rel.parts
        if self.package in parts[:-1]:
            return Path(*parts[len(parts) - parts[::-1].index(self.package) :])
        if len(self.by_name.get(rel.name, [])) == 1:
            return self.by_name[rel.name][0]
        return None

    def __call__(self, rel: Path) -> int | None:
        if rel.suffix == ".zip":
            return ARCHIVE
        if rel.suffix in (".safetensors", ".ipynb"):
            return OTHER
        if rel.suffix != ".py":
            return None
        dest = self.destination(rel)
        if dest is None:
            return None
        return OWN if dest in self.template else HELPER


def _safe_extract(
    archive: Path, dest: Path, budget: list[int], depth: int, overlay: Overlay, rank: _Ranker
) -> list[tuple[Path, Path]]:
    """The files of ``archive`` worth unpacking, unpacked into ``dest`` in budget order (zips
    inside zips too, up to MAX_ZIP_DEPTH); (file, path relative to ``dest``)."""
    out: list[tuple[Path, Path]] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            queue = []
            for info in zf.infolist()[:MAX_ENTRIES]:
                name = Path(info.filename)
                if info.is_dir() or name.is_absolute() or ".." in name.parts:
                    continue
                if SKIP_PARTS & set(name.parts):
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    overlay.problems.append(
                        f"{archive.name}: {info.filename} is a link; links are not followed."
                    )
                    continue
                order = rank(name)
                if order is None:
                    overlay.ignored.append(f"{archive.name}: {info.filename}")
                    continue
                queue.append((order, info.filename, info, name))
            for _, _, info, name in sorted(queue, key=lambda q: q[:2]):
                if not _take(budget, info.file_size, overlay, f"{archive.name}: {info.filename}"):
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out_file:
                    _copy_at_most(src, out_file, info.file_size)
                if target.suffix == ".zip":
                    if depth < MAX_ZIP_DEPTH:
                        inner = target.with_suffix("")
                        for f, r in _safe_extract(target, inner, budget, depth + 1, overlay, rank):
                            out.append(
                                (
                                    f,
                                    r.relative_to(dest)
                                    if r.is_absolute()
                                    else name.with_suffix("") / r,
                                )
                            )
                    target.unlink()
                else:
                    out.append((target, name))
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        OSError,
    ) as exc:
        overlay.problems.append(
            f"{archive.name} is not a readable zip file ({type(exc).__name__})."
        )
    return out


def _copy_at_most(src, out, size: int) -> None:
    """Copy no more than the entry's declared size (a lying header cannot write more)."""
    left = size
    while left > 0:
        chunk = src.read(min(left, 1 << 20))
        if not chunk:
            break
        out.write(chunk)
        left -= len(chunk)


def _take(budget: list[int], size: int, overlay: Overlay, where: str) -> bool:
    """Count one file of ``size`` bytes against the upload's budget (bytes, files); a file that
    does not fit is skipped, saying so (the files after it may still fit)."""
    if size > budget[0] or budget[1] < 1:
        if len(overlay.problems) < MAX_PROBLEMS:
            overlay.problems.append(
                f"{where}: skipped, the submission is too large (more than "
                f"{MAX_BYTES // 1024**2} MB or {MAX_FILES} files in all)."
            )
        return False
    budget[0] -= size
    budget[1] -= 1
    return True


def _regular_files(root: Path, overlay: Overlay) -> list[Path]:
    """Every regular file under ``root`` (at most MAX_ENTRIES entries looked at), sorted; links
    and special files are not followed (a link could point at anything the grader can read), and
    are named in the report."""
    found = []
    seen = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in [*dirs, *files]:
            seen += 1
            if seen > MAX_ENTRIES:
                overlay.problems.append(
                    f"More than {MAX_ENTRIES:,} files and folders: the rest were not looked at."
                )
                return sorted(found)
            path = Path(folder, name)
            rel = path.relative_to(root)
            if SKIP_PARTS & set(rel.parts):
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                overlay.problems.append(f"{rel} is a link; links are not followed.")
            elif name in files and stat.S_ISREG(mode):
                found.append(path)
            elif name in files:
                overlay.problems.append(f"{rel} is not a regular file; ignored.")
        dirs[:] = [d for d in dirs if not Path(folder, d).is_symlink()]
    return sorted(found)


def _gather(
    submission: Path, scratch: Path, overlay: Overlay, rank: _Ranker
) -> list[tuple[Path, Path]]:
    """(file, path relative to its root) for every submitted file that can be placed, zips
    unpacked. The assignment's own files take the budget first (a folder of junk before them
    cannot push them out); every byte taken counts: a file's size as the file system reports it
    (a sparse file's too), and every zip entry's size once unpacked."""
    budget = [MAX_BYTES, MAX_FILES]
    queue = []
    for path in _regular_files(submission, overlay):
        rel = path.relative_to(submission)
        order = rank(rel)
        if order is None:
            overlay.ignored.append(str(rel))
        else:
            queue.append((order, str(rel), path, rel))
    files = []
    for _, _, path, rel in sorted(queue, key=lambda q: q[:2]):
        if not _take(budget, path.lstat().st_size, overlay, str(rel)):
            continue
        if path.suffix == ".zip":
            files += _safe_extract(path, scratch / rel.with_suffix(""), budget, 1, overlay, rank)
        else:
            files.append((path, rel))
    return files


def overlay(submission: Path, template_pkg: Path, target_pkg: Path) -> Overlay:
    """Copy ``template_pkg`` to ``target_pkg`` and place the submitted files over it."""
    result = Overlay()
    if target_pkg.exists():
        shutil.rmtree(target_pkg)
    shutil.copytree(template_pkg, target_pkg, ignore=shutil.ignore_patterns("__pycache__"))
    package = template_pkg.name
    by_name: dict[str, list[Path]] = {}
    for p in template_pkg.rglob("*"):
        if p.is_file():
            by_name.setdefault(p.name, []).append(p.relative_to(template_pkg))
    result.expected = sorted(
        f"{package}/{rel}"
        for rels in by_name.values()
        for rel in rels
        if rel.suffix == ".py" and rel.name != "__init__.py" and "__pycache__" not in rel.parts
    )
    placed: dict[Path, int] = {}  # target -> rule strength (lower wins)
    notebooks: list[tuple[Path, Path]] = []
    rank = _Ranker(package, by_name)
    with tempfile.TemporaryDirectory() as scratch:
        for path, rel in _gather(submission, Path(scratch), result, rank):
            if path.suffix == ".ipynb":
                notebooks.append((path, rel))
                continue
            dest = rank.destination(rel)
            if dest is not None:
                strength = 0 if package in rel.parts[:-1] else 1
            elif rel.suffix == ".safetensors":
                dest, strength = Path("artifacts") / rel.name, 1
            else:
                result.ignored.append(str(rel))
                continue
            if placed.get(dest, 99) <= strength:
                result.problems.append(
                    f"{rel}: another submitted file already gives {dest}; kept that one."
                )
                continue
            placed[dest] = strength
            (target_pkg / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target_pkg / dest)
        for path, rel in notebooks:  # after the .py files: a notebook's definitions win
            extracted = notebook.apply(path, template_pkg, target_pkg)
            result.used += [f"{rel}: {name}" for name in extracted.defined]
            result.problems += [
                p for p in extracted.report().splitlines() if not p.startswith("From")
            ]
    result.used += [str(p) for p in placed]
    return result
