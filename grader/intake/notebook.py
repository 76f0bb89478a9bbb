"""Grade a Jupyter notebook: move its deliverable definitions into the assignment's modules.

Each module of the template keeps its own text, except that every top-level function or class
the notebook (re)defines replaces the template's stub of the same name — the last definition in
the notebook wins, as when its cells run top to bottom. The notebook's top-level imports are added
to each module it contributes to. Which cells count:

- if any code cell is tagged ``deliverable``, only the tagged cells;
- otherwise every code cell. Lines of IPython magic (``%...``, ``!...``) are dropped.

What cannot be used is said per item: a cell that does not parse, a deliverable the notebook never
defines (it keeps the template's stub, which raises NotImplementedError).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

TAG = "deliverable"


@dataclass
class Extraction:
    modules: dict[str, str] = field(default_factory=dict)  # relative path -> new source
    defined: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = []
        if self.defined:
            lines.append("From your notebook: " + ", ".join(self.defined))
        if self.missing:
            lines.append(
                "Not defined in your notebook (the template's stub is graded): "
                + ", ".join(self.missing)
            )
        return "\n".join(lines + self.problems)


def _cells(notebook: Path, problems: list[str]) -> list[str]:
    import nbformat

    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception as exc:  # nbformat raises several kinds for unreadable files
        problems.append(f"{notebook.name} could not be read as a notebook: {exc}")
        return []
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if TAG in c.get("metadata", {}).get("tags", [])]
    sources = []
    for number, cell in enumerate(tagged or code, start=1):
        text = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        try:
            ast.parse(text)
        except SyntaxError as exc:
            problems.append(
                f"Cell {number} has a syntax error (line {exc.lineno}: {exc.msg}); it was skipped."
            )
            continue
        except (RecursionError, MemoryError, ValueError):  # nesting no parser can follow
            problems.append(
                f"Cell {number} could not be parsed (too deeply nested); it was skipped."
            )
            continue
        sources.append(text)
    return sources


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def extract(notebook: Path, template_pkg: Path) -> Extraction:
    """New sources for the template's modules, with the notebook's definitions in place."""
    out = Extraction()
    definitions: dict[str, str] = {}
    imports: list[str] = []
    constants: dict[str, str] = {}  # NAME = <literal>: helpers' settings; nothing else runs
    for text in _cells(notebook, out.problems):
        for node in ast.parse(text).body:
            segment = ast.get_source_segment(text, node, padded=False) or ""
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                definitions[node.name] = segment
            elif isinstance(node, ast.Import | ast.ImportFrom) and segment not in imports:
                imports.append(segment)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and _is_literal(node.value):
                    constants[target.id] = segment
    template_names = {
        n.name
        for module in template_pkg.rglob("*.py")
        for n in ast.parse(module.read_text()).body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    helpers = [src for name, src in definitions.items() if name not in template_names]
    for module in sorted(template_pkg.rglob("*.py")):
        source = module.read_text()
        tree = ast.parse(source)
        lines = source.splitlines(keepends=True)
        wanted = [
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        replaced = False
        for node in reversed(wanted):  # bottom-up keeps earlier line numbers valid
            if node.name in definitions:
                start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
                lines[start : node.end_lineno] = [definitions[node.name] + "\n"]
                out.defined.append(node.name)
                replaced = True
            elif not node.name.startswith("_"):
                out.missing.append(node.name)
        if replaced:
            body = "".join(lines)
            extra = "\n".join(i for i in imports if i not in body)
            # After the module docstring and __future__ imports, which must stay first.
            insert_at = max(
                [
                    n.end_lineno
                    for n in tree.body[:2]
                    if isinstance(n, ast.Expr | ast.ImportFrom)
                    and (isinstance(n, ast.Expr) or n.module == "__future__")
                ]
                or [0]
            )
            head, tail = (
                body.splitlines(keepends=True)[:insert_at],
                body.splitlines(keepends=True)[insert_at:],
            )
            rel = str(module.relative_to(template_pkg))
            support = "".join(f"\n\n{c}" for c in constants.values())
            support += "".join(f"\n\n\n{h}" for h in helpers)  # the notebook's own helpers
            out.modules[rel] = (
                "".join(head) + (extra + "\n" if extra else "") + "".join(tail) + support + "\n"
            )
    out.defined = sorted(set(out.defined))
    out.missing = sorted(set(out.missing) - set(out.defined))
    return out


def apply(notebook: Path, template_pkg: Path, target_pkg: Path) -> Extraction:
    """Write the extracted modules into ``target_pkg`` (a copy of the template)."""
    result = extract(notebook, template_pkg)
    for rel, source in result.modules.items():
        (target_pkg / rel).write_text(source)
    return result
