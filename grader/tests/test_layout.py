"""The engine's layout, read from its imports: layers that only look down, no circles, and the
line between the grader and the course's own code (coursekit).

Every import counts, at module level or inside a function, but for those under ``if
TYPE_CHECKING:`` (annotations only: never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[2]

# Lowest first: a module may import its own layer and the layers below it, never one above.
LAYERS = (
    ("base", ("grader.course", "grader.limits", "grader.records", "grader.sandbox", "grader.data")),
    ("boundary", ("grader.boundary",)),
    ("test process", ("grader.testprocess",)),
    ("intake", ("grader.intake",)),
    ("controller", ("grader.controller",)),
    ("commands", ("grader.commands", "grader.__main__")),
)
# What the course's code may use of the grader: the tests' API and the course's own settings.
PUBLIC = ("grader.testprocess.deliverables", "grader.data", "grader.course")


def _module_name(path: Path) -> str:
    parts = path.relative_to(KIT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that the file at ``path`` imports (``from a import b`` counts as
    ``a.b`` when that is a module)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in found if m in known}


def _graph() -> dict[str, set[str]]:
    files = [
        p
        for root in ("grader", "coursekit")
        for p in (KIT / root).rglob("*.py")
        if "tests" not in p.relative_to(KIT).parts
    ]
    names = {_module_name(p): p for p in files}
    known = set(names)
    return {name: _imports(path, known) - {name} for name, path in names.items()}


def _layer(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def _packages(module: str) -> set[str]:
    """A module's enclosing packages (importing ``a.b.c`` runs ``a`` and ``a.b`` first)."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_every_grader_module_belongs_to_a_layer():
    graph = _graph()
    loose = [m for m in graph if m.startswith("grader.") and _layer(m) is None]
    assert not loose, f"modules of no layer (add them to LAYERS): {loose}"


def test_no_layer_imports_one_above_it():
    upward = [
        f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"
        for m, deps in sorted(_graph().items())
        if m.startswith("grader.") and _layer(m) is not None
        for d in sorted(deps)
        if d.startswith("grader.") and _layer(d) is not None and _layer(d) > _layer(m)
    ]
    assert not upward, "imports that run back up the layers:\n" + "\n".join(upward)


def test_no_module_imports_itself_back():
    graph = _graph()
    circles = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for dep in graph.get(node, ()):
                if dep == start and start not in _packages(path[-1]):
                    circles.append(" -> ".join([*path, dep]))
                elif dep not in seen and dep not in _packages(start):
                    seen.add(dep)
                    stack.append((dep, [*path, dep]))
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles)))


def test_the_grader_never_imports_the_course_and_the_course_only_the_public_api():
    graph = _graph()
    into_grader = [
        f"{m} imports {d}"
        for m, deps in graph.items()
        if m.startswith("grader")
        for d in deps
        if d.startswith("coursekit")
    ]
    assert not into_grader, "\n".join(into_grader)
    internals = [
        f"{m} imports {d}"
        for m, deps in graph.items()
        if m.startswith("coursekit")
        for d in deps
        if d.startswith("grader") and d != "grader" and d not in PUBLIC
    ]
    assert not internals, "coursekit reaches the grader's internals:\n" + "\n".join(internals)


def test_the_layout_check_sees_an_upward_import_and_a_circle(monkeypatch):
    """The checks above can fail: a module of the boundary that imports the controller, and two
    modules that import each other, are both found."""
    monkeypatch.setitem(
        globals(),
        "_graph",
        lambda: {
            "grader.boundary.proxy": {"grader.controller.runner"},
            "grader.controller.runner": {"grader.controller.zygote"},
            "grader.controller.zygote": {"grader.controller.runner"},
        },
    )
    with pytest.raises(AssertionError, match="boundary.proxy \\(boundary\\) imports"):
        test_no_layer_imports_one_above_it()
    with pytest.raises(AssertionError, match="runner -> grader.controller.zygote -> grader"):
        test_no_module_imports_itself_back()


def test_the_formatter_lays_out_the_code_with_few_exceptions():
    """``# fmt: skip`` is the exception (issue: fewer than 40 in the tree): code is laid out by
    ``ruff format`` at pyproject.toml's line length, not by hand."""
    skips = [
        f"{p.relative_to(KIT)}:{n}"
        for root in ("grader", "coursekit", "reference", "tests", "bench")
        for p in sorted((KIT / root).rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if line.rstrip().endswith("# fmt: skip")
    ]
    assert len(skips) < 40, f"{len(skips)} lines the formatter may not touch: {skips[:10]} ..."
