"""A static audit of a submission's source, on the trusted side: files are parsed, never run.

Two kinds of finding:

- **rule violations** — a handout's rule about *how* a deliverable is written (H4.1: multi-head
  attention without ``nn.MultiheadAttention`` or ``scaled_dot_product_attention``), declared in
  ``tests/<assignment>/rules.toml``. A graded test checks its rule with :func:`violations` and
  loses the rule's points, naming the file and line. The runtime guard in the deliverable process
  (``grader.boundary.guards``) explains a violation while it happens; this audit is what the
  score relies on, since code in the student's process can undo a guard.
- **flags for staff** — code that reaches for the grader rather than the assignment: frame and
  object introspection (``sys._getframe``, ``inspect``, ``gc``, ``ctypes``), dynamic code
  (``eval``, ``exec``, ``__import__``), imports of the grader or the tests, process and signal
  tricks. Behind the boundary these reach nothing of the tests, so they cost no points; they are
  listed in the results' ``extra_data`` and in ``batch``'s ``flags.csv``.

A forbidden name is found however it is spelt: through import aliases (``import torch.nn.functional
as F`` then ``F.scaled_dot_product_attention``; ``from torch.nn import MultiheadAttention as M``),
as an attribute of anything (``x.scaled_dot_product_attention``), through ``getattr`` with a
constant (or constant-folded) name, or inside a string (``eval("F.scaled_dot_" "product_attention")``).
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

MAX_SOURCE_BYTES = 2 * 1024**2

# Reaching for the grader: names whose use in a deliverable is flagged for course staff.
SUSPICIOUS_MODULES = {
    "inspect": "introspection of frames and objects",
    "gc": "the garbage collector's object lists",
    "ctypes": "raw memory access",
    "grader": "the grader itself",
    "tests": "the graded tests",
    "compare": "the tests' comparison helper",
    "strategies": "the tests' input strategies",
    "pytest": "the test runner",
    "_pytest": "the test runner",
    "hypothesis": "the tests' input generator",
    "socket": "network and socket access",
    "signal": "signal handlers",
    "pickle": "pickled objects",
    "marshal": "code objects",
    "importlib": "dynamic imports",
    "builtins": "the built-in functions",
    "multiprocessing": "other processes",
    "subprocess": "other processes",
}
SUSPICIOUS_CALLS = {
    "eval": "dynamic code",
    "exec": "dynamic code",
    "compile": "dynamic code",
    "__import__": "a dynamic import",
    "sys._getframe": "frame introspection",
    "sys.settrace": "tracing other code",
    "sys.setprofile": "tracing other code",
    "os.fork": "forking the process",
    "os.kill": "signalling other processes",
    "os.killpg": "signalling other processes",
    "os._exit": "ending the process",
    "os.setsid": "leaving the process group",
    "os.system": "running commands",
}
SUSPICIOUS_ATTRIBUTES = {
    "f_back": "frame introspection",
    "f_locals": "frame introspection",
    "f_globals": "frame introspection",
    "__globals__": "a function's globals",
    "__subclasses__": "class introspection",
    "__builtins__": "the built-in functions",
    "__code__": "code objects",
    "tb_frame": "frame introspection",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # "rule" | "flag"
    rule: str  # the rule's id, or what the flag is about
    file: str  # relative to the graded tree
    line: int
    code: str  # the source line
    why: str

    def describe(self) -> str:
        return f"{self.file}, line {self.line}: {self.why}\n    {self.code.strip()[:160]}"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "rule": self.rule, "file": self.file, "line": self.line,
                "code": self.code.strip()[:160], "why": self.why}  # fmt: skip


@dataclass(frozen=True)
class Rule:
    id: str
    files: tuple[str, ...]  # within the assignment package
    forbid: tuple[str, ...]  # dotted names; a name without dots matches any attribute of it
    why: str = ""


def rules(assignment: str, tests_root: Path | None = None) -> dict[str, Rule]:
    """The rules of ``tests/<assignment>/rules.toml`` by id (none when the file is missing)."""
    if tests_root is None:
        from grader.assignments import TESTS

        tests_root = TESTS
    path = tests_root / assignment / "rules.toml"
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text())
    return {
        r["id"]: Rule(r["id"], tuple(r.get("files", ())), tuple(r["forbid"]), r.get("why", ""))
        for r in data.get("rule", [])
    }


# --------------------------------------------------------------------------- the walk


def _const_str(node: ast.AST) -> str | None:
    """The value of a string expression made of constants only ("a" + "b", f"{'a'}b")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _const_str(node.left), _const_str(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.FormattedValue):
                inner = _const_str(v.value)
                if inner is None:
                    return None
                parts.append(inner)
            else:
                s = _const_str(v)
                if s is None:
                    return None
                parts.append(s)
        return "".join(parts)
    return None


class _Names(ast.NodeVisitor):
    """Every dotted name a module uses (aliases resolved), with its line; strings too."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.uses: list[tuple[str, int]] = []  # (dotted name, line)
        self.strings: list[tuple[str, int]] = []
        self.docstrings: set[int] = set()

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = (
                a.name if a.asname else a.name.split(".")[0]
            )
            self.uses.append((a.name, node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = ("." * node.level) + (node.module or "")
        for a in node.names:
            full = f"{base}.{a.name}" if base else a.name
            self.aliases[a.asname or a.name] = full
            self.uses.append((full, node.lineno))

    def dotted(self, node: ast.AST, root: bool = True) -> str | None:
        """``a.b.c`` with import aliases resolved; a chain on anything but an imported name
        (a local variable, a call's result) starts with ``?.``."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            return node.id if root else f"?.{node.id}"
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value, root=False)
            return f"{base}.{node.attr}" if base is not None else f"?.{node.attr}"
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
        ):
            return self._getattr(node)
        return None

    def _getattr(self, node: ast.Call) -> str | None:
        if len(node.args) >= 2:
            name = _const_str(node.args[1])
            base = self.dotted(node.args[0]) or "?"
            if name is not None:
                return f"{base}.{name}"
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.dotted(node)
        if name is not None:
            self.uses.append((name, node.lineno))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.uses.append((self.aliases.get(node.id, node.id), node.lineno))

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "getattr":
            name = self._getattr(node)
            if name is not None:
                self.uses.append((name, node.lineno))
        self.generic_visit(node)

    def _docstring(self, body: list[ast.stmt]) -> None:
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self.docstrings.add(id(body[0].value))

    def visit_Module(self, node: ast.Module) -> None:
        self._docstring(node.body)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        # Annotations name types, they compute nothing: ``def load_from(self, mha:
        # nn.MultiheadAttention)`` is not a use of it (nor is its return annotation).
        self._docstring(node.body)
        for child in (*node.decorator_list, node.args, *node.body):
            self.visit(child)

    def visit_arg(self, node: ast.arg) -> None:
        pass  # a parameter's name and annotation

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._docstring(node.body)
        self.generic_visit(node)

    def _visit_foldable(self, node: ast.JoinedStr | ast.BinOp) -> None:
        """An f-string or a sum of strings that folds to a constant counts as that string."""
        folded = _const_str(node)
        if folded is not None:
            self.strings.append((folded, node.lineno))
            return
        self.generic_visit(node)

    visit_JoinedStr = visit_BinOp = _visit_foldable

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self.docstrings:
            self.strings.append((node.value, node.lineno))


def _matches(used: str, forbidden: str) -> bool:
    if "." not in forbidden:  # a bare name: any attribute or name so called
        return used == forbidden or used.endswith("." + forbidden)
    tail = forbidden.rsplit(".", 1)[1]
    return (
        used == forbidden
        or used.endswith("." + forbidden)
        or (used.startswith("?.") and used.endswith("." + tail))
    )


def _parse(path: Path) -> tuple[ast.Module, list[str]] | None:
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
        return ast.parse(text), text.splitlines()
    except (OSError, SyntaxError, ValueError, RecursionError):
        return None  # a file that does not parse is reported by the tests that import it


def _walk(path: Path) -> tuple[_Names, list[str]] | None:
    parsed = _parse(path)
    if parsed is None:
        return None
    tree, lines = parsed
    names = _Names()
    try:
        names.visit(tree)
    except RecursionError:
        return None
    return names, lines


def _line(lines: list[str], n: int) -> str:
    return lines[n - 1] if 0 < n <= len(lines) else ""


def _sources(tree: Path, paths: list[Path]):
    """(path relative to ``tree``, names used, source lines) of each regular file that parses;
    links are never followed."""
    for path in paths:
        if path.is_symlink() or not path.is_file():
            continue
        walked = _walk(path)
        if walked is not None:
            yield (str(path.relative_to(tree)), *walked)


def violations(tree: Path, assignment: str, rule: Rule) -> list[Finding]:
    """Where the submission in ``tree`` (the folder holding the package) breaks ``rule``."""
    package = tree / assignment
    found: list[Finding] = []
    for pattern in rule.files or ("*.py",):
        for rel, names, lines in _sources(tree, sorted(package.glob(pattern))):
            seen: set[tuple[int, str]] = set()
            for used, line in names.uses:
                for forbidden in rule.forbid:
                    if _matches(used, forbidden) and (line, forbidden) not in seen:
                        seen.add((line, forbidden))
                        found.append(Finding("rule", rule.id, rel, line, _line(lines, line),
                                             f"uses {forbidden}"))  # fmt: skip
            for text, line in names.strings:
                for forbidden in rule.forbid:
                    tail = forbidden.rsplit(".", 1)[-1]
                    if tail in text and (line, forbidden) not in seen:
                        seen.add((line, forbidden))
                        found.append(Finding("rule", rule.id, rel, line, _line(lines, line),
                                             f"names {forbidden} in a string (to reach it by name?)"))  # fmt: skip
    return sorted(found, key=lambda f: (f.file, f.line))


def flags(tree: Path, assignment: str) -> list[Finding]:
    """Code in the submission that reaches for the grader rather than the assignment."""
    package = tree / assignment
    found: list[Finding] = []
    for rel, names, lines in _sources(tree, sorted(package.rglob("*.py"))):
        seen: set[tuple[int, str]] = set()
        for used, line in names.uses:
            root = used.split(".")[0]
            why = (
                SUSPICIOUS_MODULES.get(root)
                if root in names.aliases.values() or used in names.aliases.values()
                else None
            )
            why = (
                why
                or SUSPICIOUS_CALLS.get(used)
                or SUSPICIOUS_ATTRIBUTES.get(used.rsplit(".", 1)[-1])
            )
            if why and (line, why) not in seen:
                seen.add((line, why))
                found.append(Finding("flag", used.split(".")[-1] if "." in used else used, rel,
                                     line, _line(lines, line), f"{why} ({used.removeprefix('?.')})"))  # fmt: skip
    return sorted(found, key=lambda f: (f.file, f.line))
