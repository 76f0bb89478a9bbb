"""A static audit of a submission's source, on the trusted side: files are parsed, never run.

Two kinds of finding:

- **rule violations**: a handout's rule about *how* a deliverable is written (H4.1: multi-head
  attention without PyTorch's built-in attention), declared in ``tests/<assignment>/assignment.toml`` (``[[rule]]``).
  A graded test checks its rule with :func:`violations` and loses the rule's points, naming the
  file and line and saying how to write it plainly. The runtime guard in the deliverable process
  (``grader.boundary.guards``) is a second layer that explains a call while it happens; the score
  relies on this audit, since code in the student's process can switch the guard off.
- **flags for staff**: code that reaches for the grader rather than the assignment: frame and
  object introspection (``sys._getframe``, ``inspect``, ``gc``, ``ctypes``), dynamic code
  (``eval``, ``exec``, ``__import__``), imports of the grader or the tests, process and signal
  tricks. Behind the boundary these reach nothing of the tests, so they cost no points; they are
  listed in the results' ``extra_data`` and in ``batch``'s ``flags.csv``.

What a rule covers
------------------
**Every module of the submitted package**, not only the rule's ``files``. A submission may add
modules of its own (the overlay places ``a3_attention_bert/attention_core.py`` in the package),
and whichever submitted modules are imported in a deliverable process stay there for every test
that process serves: the test files share one process, ``test_finetune.py`` and
``test_lora.py`` run before ``test_mha.py``, and a module imported there can replace
``mha.MultiHeadAttention.forward`` at import without ``mha.py`` importing it. "The rule's file
and what it imports" is therefore no boundary. Reading everything costs honest code nothing in
a3: no other deliverable of the reference (``lora.py``, ``finetune.py``, ``mask_fill.py``,
``stackoverflow.py``, ``__init__.py``) names a forbidden function or needs dynamic access, and
``grader/tests/test_audit.py`` checks that on the reference and on every honest alternative.

Three checks make up a rule:

1. **Forbidden names, resolved.** Every name is resolved to what it is bound to. A name the
   submission binds (a ``def``, a class, an assignment, a parameter, an import of one of its own
   modules) is the submission's: a helper of its own called ``scaled_dot_product_attention`` is
   not torch's. Imports, their aliases, simple re-bindings (``G = F``), attribute chains on them,
   ``getattr`` with a constant name and literal containers (``[F][0]``) resolve to the library
   object; only those are compared with the rule's ``forbid`` patterns. An attribute of an object
   the audit cannot resolve (``self.scaled_dot_product_attention``) counts only when nothing in
   the submission defines that name. Strings are not uses (an error message may name anything);
   code built from strings is check 3's business. Annotations compute nothing and are skipped.
2. **Libraries of the rule's files** (``libraries``): the rule's ``files`` and every submitted
   module they import may use only the standard library and the third-party libraries listed
   (PyTorch, numpy): a library such as ``transformers`` holds attention modules that plain
   attribute access reaches (``model.encoder.layer[0].attention``) without naming anything.
   Other modules (``finetune.py``) use transformers freely: they cannot put it into ``mha.py``
   without a patch or a dynamic lookup, which check 3 catches.
3. **Dynamic access** (``dynamic = true``), anywhere in the submission: code whose target the
   audit cannot read (``exec``/``eval``/``compile``, ``getattr`` with a computed name on a library,
   ``vars()``/``globals()``/``__dict__``, ``importlib``, ``sys.modules``, ``torch._C``,
   ``torch.ops``, pickle, ...), code that changes a library or another module of the submission
   from outside (monkeypatching), and a library module handed around as a value. Each finding
   says which line, why, and how to write it plainly. Assignments without such a rule keep only
   the staff flags.

What stays out of reach of a static reading is listed in the README's security table; the
runtime guard (which now also refuses the fused kernels at PyTorch's dispatcher, below
``torch._C.DisableTorchFunction``) catches some of it as it happens.
"""

from __future__ import annotations

import ast
import builtins
import fnmatch
import functools
import importlib.util
import io
import sys
import tokenize
from dataclasses import dataclass, field
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
        return {
            "kind": self.kind,
            "rule": self.rule,
            "file": self.file,
            "line": self.line,
            "code": self.code.strip()[:160],
            "why": self.why,
        }


@dataclass(frozen=True)
class Rule:
    id: str
    files: tuple[str, ...]  # the deliverable the rule is about, within the assignment package
    forbid: tuple[str, ...]  # library names (globs): a bare one matches a name's last part
    why: str = ""
    libraries: tuple[str, ...] | None = None  # third-party libraries ``files`` may use (None: any)
    dynamic: bool = False  # dynamic access anywhere in the submission breaks the rule


def rules(assignment: str, tests_root: Path | None = None) -> dict[str, Rule]:
    """The ``[[rule]]`` list of the assignment's settings (``tests/<a>/assignment.toml``) by id."""
    from grader.course import settings

    data = settings(assignment, tests_root)
    return {
        r["id"]: Rule(
            r["id"],
            tuple(r.get("files", ())),
            tuple(r["forbid"]),
            r.get("why", ""),
            tuple(r["libraries"]) if "libraries" in r else None,
            bool(r.get("dynamic", False)),
        )
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
    """Every dotted name a module uses (aliases resolved), with its line; strings too. The staff
    flags read these; rules resolve names with :class:`_Submission`."""

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


class Unreadable(Exception):
    """A file the audit cannot read to the end, though Python might import it."""


def _parse(path: Path) -> tuple[ast.Module, list[str]] | None:
    """The module as Python reads it: bytes decoded by their coding declaration (PEP 263), as
    the import would (``# coding: utf-7`` can turn what UTF-8 shows as a comment into code).
    None when Python could not import it either; :class:`Unreadable` when only the audit fails."""
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            raise Unreadable(f"larger than {MAX_SOURCE_BYTES // 1024**2} MB")
        data = path.read_bytes()
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding, errors="replace")
        return ast.parse(data), text.splitlines()
    except (RecursionError, MemoryError) as exc:
        raise Unreadable("nested too deeply") from exc
    except (OSError, SyntaxError, ValueError, LookupError):
        return None  # a file that does not parse is reported by the tests that import it


def _walk(path: Path) -> tuple[_Names, list[str]] | None:
    try:
        parsed = _parse(path)
    except Unreadable:
        return None
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
                found.append(
                    Finding(
                        "flag",
                        used.split(".")[-1] if "." in used else used,
                        rel,
                        line,
                        _line(lines, line),
                        f"{why} ({used.removeprefix('?.')})",
                    )
                )
    return sorted(found, key=lambda f: (f.file, f.line))


# --------------------------------------------------------------------------- rules: resolving names

BUILTIN_NAMES = frozenset(dir(builtins))
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

# A value: ("lib", dotted) a library object; ("sub", module) a module of the submission;
# ("obj", module, qualname) something the submission defines; ("builtin", name);
# ("unknown", attribute) anything else (the attribute last read on it, or ""); ("opaque", "")
# where the audit gave up following it (more re-bindings than any honest module has).
Value = tuple
UNKNOWN: Value = ("unknown", "")
OPAQUE: Value = ("opaque", "")
MAX_DEPTH = 60  # names followed through re-bindings, attributes and modules at once


@dataclass
class _Scope:
    kind: str  # "module" | "function" | "class"
    module: str
    parent: _Scope | None
    qualname: str = ""
    bindings: dict[str, list[tuple]] = field(default_factory=dict)
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)
    stars: list[str] = field(default_factory=list)  # modules imported with *

    def bind(self, name: str, source: tuple) -> None:
        self.bindings.setdefault(name, []).append(source)


@dataclass
class _Module:
    name: str  # dotted: a3_attention_bert.mha
    rel: str  # relative to the graded tree
    tree: ast.Module
    lines: list[str]
    is_package: bool
    scope: _Scope | None = None


class _Submission:
    """Every parsed module of the package, each name bound to what it refers to."""

    def __init__(self, tree: Path, package: str):
        self.package = package
        self.modules: dict[str, _Module] = {}
        self.unreadable: list[tuple[str, str]] = []  # (file, why): each is a finding
        for path in sorted((tree / package).rglob("*.py")):
            if path.is_symlink() or not path.is_file():
                continue
            try:
                parsed = _parse(path)
            except Unreadable as exc:
                self.unreadable.append((str(path.relative_to(tree)), str(exc)))
                continue
            if parsed is None:
                continue
            parts = path.relative_to(tree).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            self.modules[name] = _Module(name, str(path.relative_to(tree)), *parsed, is_package)
        self.scope_of: dict[int, _Scope] = {}
        self.parent_of: dict[int, ast.AST] = {}
        self.functions: dict[int, ast.AST] = {}  # id -> FunctionDef | Lambda
        self.defs: dict[tuple[str, str], ast.AST] = {}  # (module, qualname) -> FunctionDef
        self.defs_by_name: dict[str, list[ast.AST]] = {}
        self.classes: dict[tuple[str, str], _Scope] = {}  # (module, qualname) -> class body
        self.methods: set[int] = set()  # FunctionDefs directly in a class body
        self.defined: set[str] = set()  # every name the submission binds or defines
        self.taint: dict[tuple[int, str], set[Value]] = {}  # parameter -> library values
        self.skip: set[int] = set()  # annotation nodes and `if TYPE_CHECKING:` blocks
        for name, module in list(self.modules.items()):
            try:
                _Binder(self, module).bind()
            except RecursionError:  # nesting no honest module has: the file counts as unread
                self.unreadable.append((module.rel, "nested too deeply"))
                del self.modules[name]
        self._memo: dict[int, frozenset[Value]] = {}
        self._active: set[int] = set()
        self._propagate_taint()

    # ---- what a module name refers to

    def is_ours(self, dotted: str) -> bool:
        """An absolute import names the package; any other name is a library's, since the
        package's own folder is not on sys.path (changing sys.path is dynamic access)."""
        return dotted.split(".")[0] == self.package

    def module_value(self, dotted: str) -> Value:
        return ("sub", dotted) if self.is_ours(dotted) else ("lib", dotted)

    # ---- resolution

    def resolve(self, node: ast.AST, scope: _Scope) -> frozenset[Value]:
        key = id(node)
        if key in self._memo:
            return self._memo[key]
        if key in self._active:  # a cycle (x = x): the other bindings say what it may be
            return frozenset({UNKNOWN})
        if len(self._active) > MAX_DEPTH:
            return frozenset({OPAQUE})
        self._active.add(key)
        try:
            found = frozenset(self._resolve(node, scope))
        except RecursionError:
            found = frozenset({OPAQUE})
        finally:
            self._active.discard(key)
        self._memo[key] = found
        return found

    def _resolve(self, node: ast.AST, scope: _Scope) -> set[Value]:
        if isinstance(node, ast.Name):
            return self.lookup(node.id, scope)
        if isinstance(node, ast.Attribute):
            return {
                v for base in self.resolve(node.value, scope) for v in self.attr(base, node.attr)
            }
        if isinstance(node, ast.Call):
            name = _getattr_constant(node)
            if name is not None and ("builtin", "getattr") in self.resolve(node.func, scope):
                found = {v for b in self.resolve(node.args[0], scope) for v in self.attr(b, name)}
                if len(node.args) > 2:
                    found |= self.resolve(node.args[2], scope)
                return found
            if isinstance(node.func, ast.Lambda):
                return set(self.resolve(node.func.body, self.scope_of[id(node.func.body)]))
            return {UNKNOWN}
        if isinstance(node, ast.Subscript):
            return self._elements(node.value, scope)
        if isinstance(node, ast.IfExp):
            return {*self.resolve(node.body, scope), *self.resolve(node.orelse, scope)}
        if isinstance(node, ast.BoolOp):
            return {v for value in node.values for v in self.resolve(value, scope)}
        if isinstance(node, ast.NamedExpr | ast.Starred):
            return set(self.resolve(node.value, scope))
        return {UNKNOWN}

    def _elements(self, container: ast.AST, scope: _Scope) -> set[Value]:
        """What ``container[...]`` may be: a literal's elements (laundering by ``[F][0]``)."""
        if isinstance(container, ast.List | ast.Tuple | ast.Set):
            return {v for e in container.elts for v in self.resolve(e, scope)} or {UNKNOWN}
        if isinstance(container, ast.Dict):
            return {v for e in container.values for v in self.resolve(e, scope)} or {UNKNOWN}
        return {UNKNOWN}

    def lookup(self, name: str, scope: _Scope) -> set[Value]:
        s: _Scope | None = scope
        if name in scope.declared_global:
            s = self._module_scope(scope)
        first = True
        while s is not None:
            if s.kind == "class" and not first:  # a method does not see its class's names
                s = s.parent
                continue
            if name in s.bindings:
                return {v for source in s.bindings[name] for v in self._source(source)}
            first, s = False, s.parent
        found: set[Value] = set()
        for star in self._module_scope(scope).stars:
            found |= self.attr(self.module_value(star), name)
        if name in BUILTIN_NAMES:
            found.add(("builtin", name))
        return found or {UNKNOWN}

    def _module_scope(self, scope: _Scope) -> _Scope:
        while scope.parent is not None:
            scope = scope.parent
        return scope

    def _source(self, source: tuple) -> set[Value]:
        kind = source[0]
        if kind == "module":
            return {self.module_value(source[1])}
        if kind == "from":
            _, base, name = source
            return self.attr(self.module_value(base), name)
        if kind == "def":
            return {("obj", source[1], source[2])}
        if kind == "param":
            return {UNKNOWN, *self.taint.get((source[1], source[2]), ())}
        if kind == "value":
            return set(self.resolve(source[1], source[2]))
        return {UNKNOWN}

    def attr(self, base: Value, name: str) -> set[Value]:
        kind = base[0]
        if kind == "lib":
            return {("lib", f"{base[1]}.{name}")}
        if kind == "sub":
            sub = f"{base[1]}.{name}"
            module = self.modules.get(base[1])
            if sub in self.modules:
                return {("sub", sub)}
            if module is not None and module.scope is not None:
                if name in module.scope.bindings or module.scope.stars:
                    return self.lookup(name, module.scope) - {("builtin", name)}
            return {("obj", base[1], name), ("unknown", name)}  # set there at run time, maybe
        if kind == "obj":  # a class attribute of ours, else something of ours read by attribute
            body = self.classes.get((base[1], base[2]))
            if body is not None and name in body.bindings:
                return self.lookup(name, body)
            return {("obj", base[1], f"{base[2]}.{name}"), ("unknown", name)}
        if kind == "builtin":
            return {("builtin", f"{base[1]}.{name}")}
        return {("unknown", name)}

    # ---- library objects handed to the submission's own functions

    def _propagate_taint(self) -> None:
        """Parameters that receive a library object (``helper(F, name)``) may be that object:
        ``getattr(mod, name)`` inside ``helper`` is then a dynamic lookup on torch."""
        for _ in range(4):
            changed = False
            self._memo.clear()
            for module in self.modules.values():
                for node in ast.walk(module.tree):
                    if isinstance(node, ast.Call) and id(node) in self.scope_of:
                        changed |= self._taint_call(node, self.scope_of[id(node)])
            if not changed:
                break
        self._memo.clear()

    def _callees(self, call: ast.Call, scope: _Scope) -> list[tuple[ast.AST, bool]]:
        """(function node, called as a method) for each function of ours the call may reach."""
        if isinstance(call.func, ast.Lambda):
            return [(call.func, False)]
        out = []
        for v in self.resolve(call.func, scope):
            if v[0] == "obj" and (v[1], v[2]) in self.defs:
                out.append((self.defs[(v[1], v[2])], False))
            elif v[0] == "unknown" and v[1]:  # obj.helper(...): any function of ours so named
                out += [(f, id(f) in self.methods) for f in self.defs_by_name.get(v[1], [])]
        return out

    def _taint_call(self, call: ast.Call, scope: _Scope) -> bool:
        changed = False
        for function, bound in self._callees(call, scope):
            args = function.args
            positional = [a.arg for a in (*args.posonlyargs, *args.args)]
            if bound and positional and not _is_static(function):
                positional = positional[1:]
            passed: list[tuple[str | None, ast.AST]] = []
            for i, arg in enumerate(call.args):
                for element in _spread(arg):
                    target = (
                        positional[i]
                        if i < len(positional)
                        else (args.vararg.arg if args.vararg else None)
                    )
                    passed.append((target, element))
            for kw in call.keywords:
                if kw.arg is not None:
                    passed.append((kw.arg, kw.value))
                else:
                    passed += [(None, v) for v in getattr(kw.value, "values", [])]
            for target, value in passed:
                libs = {v for v in self.resolve(value, scope) if v[0] in ("lib", "sub")}
                names = [target] if target else [a.arg for a in _all_args(function)]
                for name in names:
                    have = self.taint.setdefault((id(function), name), set())
                    if not libs <= have:
                        have |= libs
                        changed = True
        return changed


def _spread(arg: ast.AST) -> list[ast.AST]:
    if isinstance(arg, ast.Starred) and isinstance(arg.value, ast.List | ast.Tuple):
        return list(arg.value.elts)
    return [arg.value if isinstance(arg, ast.Starred) else arg]


def _all_args(function: ast.AST) -> list[ast.arg]:
    a = function.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]


def _is_static(function: ast.AST) -> bool:
    return any(
        isinstance(d, ast.Name) and d.id == "staticmethod"
        for d in getattr(function, "decorator_list", [])
    )


def _getattr_constant(call: ast.Call) -> str | None:
    """The constant name of ``getattr(obj, "name")`` (folded: ``"a" + "b"``), else None."""
    if len(call.args) >= 2 and not call.keywords:
        return _const_str(call.args[1])
    return None


def _absolute(module: _Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*parts, *([node.module] if node.module else [])])


class _Binder(ast.NodeVisitor):
    """Records, per scope, what each name is bound to; and each node's scope and parent."""

    def __init__(self, sub: _Submission, module: _Module):
        self.sub, self.module = sub, module
        self.scope = _Scope("module", module.name, None)
        module.scope = self.scope

    def bind(self) -> None:
        self.visit(self.module.tree)

    def visit(self, node: ast.AST) -> None:
        self.sub.scope_of[id(node)] = self.scope
        for child in ast.iter_child_nodes(node):
            self.sub.parent_of[id(child)] = node
        super().visit(node)

    def _skip(self, node: ast.AST | None) -> None:
        """An annotation: never checked (``mha: nn.MultiheadAttention`` computes nothing)."""
        if node is not None:
            self.sub.skip.update(id(n) for n in ast.walk(node))

    def _name(self, name: str, source: tuple) -> None:
        scope = self.scope
        if name in scope.declared_global:  # `global G` in a function: G = F binds the module's
            while scope.parent is not None:
                scope = scope.parent
        elif name in scope.declared_nonlocal and scope.parent is not None:
            scope = scope.parent
            while scope.kind == "class" and scope.parent is not None:
                scope = scope.parent
        scope.bind(name, source)
        self.sub.defined.add(name)

    def _target(self, target: ast.AST, value: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            self._name(
                target.id, ("value", value, self.scope) if value is not None else ("unknown",)
            )
        elif isinstance(target, ast.Tuple | ast.List):
            values = value.elts if isinstance(value, ast.Tuple | ast.List) else None
            same = values is not None and len(values) == len(target.elts)
            for i, t in enumerate(target.elts):
                self._target(t, values[i] if same else None)
        elif isinstance(target, ast.Starred):
            self._target(target.value, None)
        elif isinstance(target, ast.Attribute):
            self.sub.defined.add(target.attr)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self._name(a.asname, ("module", a.name))
            else:
                root = a.name.split(".")[0]
                self._name(root, ("module", root))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _absolute(self.module, node)
        for a in node.names:
            if a.name == "*":
                self.scope.stars.append(base)
            else:
                self._name(a.asname or a.name, ("from", base, a.name))

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.declared_global.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.declared_nonlocal.update(node.names)

    def _function(self, node: ast.AST, name: str | None) -> None:
        args = node.args
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        for d in (*args.defaults, *filter(None, args.kw_defaults)):
            self.visit(d)
        self._skip(getattr(node, "returns", None))
        for a in _all_args(node):
            self._skip(a.annotation)
        qual = f"{self.scope.qualname}.{name}".lstrip(".") if name else ""
        if name is not None:
            self._name(name, ("def", self.module.name, qual))
            self.sub.defs[(self.module.name, qual)] = node
            self.sub.defs_by_name.setdefault(name, []).append(node)
            if self.scope.kind == "class":
                self.sub.methods.add(id(node))
        self.sub.functions[id(node)] = node
        outer = self.scope
        self.scope = _Scope("function", self.module.name, outer, qual or outer.qualname)
        for a in _all_args(node):
            self._name(a.arg, ("param", id(node), a.arg))
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            self.visit(stmt)
        self.scope = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, None)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for d in (*node.decorator_list, *node.bases, *node.keywords):
            self.visit(d)
        qual = f"{self.scope.qualname}.{node.name}".lstrip(".")
        self._name(node.name, ("def", self.module.name, qual))
        outer = self.scope
        self.scope = _Scope("class", self.module.name, outer, qual)
        self.sub.classes[(self.module.name, qual)] = self.scope
        for stmt in node.body:
            self.visit(stmt)
        self.scope = outer

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._target(t, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._skip(node.annotation)
        self._target(node.target, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target, None)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._name(node.target.id, ("value", node.value, self.scope))
        self.generic_visit(node)

    def _unknown_targets(self, target: ast.AST | None) -> None:
        if target is not None:
            self._target(target, None)

    def visit_For(self, node: ast.For) -> None:
        self._unknown_targets(node.target)
        self.generic_visit(node)

    visit_AsyncFor = visit_For  # type: ignore[assignment]

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._unknown_targets(node.target)
        self.generic_visit(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        self._unknown_targets(node.optional_vars)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._name(node.name, ("unknown",))
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._name(node.name, ("unknown",))
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._name(node.name, ("unknown",))


# --------------------------------------------------------------------------- rules: the checks

_PLAIN_IMPORT = "write a plain import at the top of the file and use the name it binds"
_PLAIN_NAME = "refer to the object by its name (F.softmax(x), self.q_proj)"
_PICKLE = (
    "rebuilds objects, functions too, from bytes that name them",
    "save tensors with safetensors or torch.save and load them with torch.load(weights_only=True)",
)
# Library names that reach code by a name the audit cannot read, or below PyTorch's public API:
# (dotted parts that occur in the resolved name, in a row, anywhere (torch.serialization.pickle
# is pickle) or, after "^", at its start only (gc, trace: torch.trace is a matrix's trace);
# why; how to write it plainly).
DYNAMIC_LIBRARY: tuple[tuple[str, str, str], ...] = (
    ("importlib", "imports a module named by a string", _PLAIN_IMPORT),
    ("sys.modules", "finds a module by a string", _PLAIN_IMPORT),
    ("sys.path", "changes where imports are found", _PLAIN_IMPORT),
    ("sys._getframe", "reads other frames' variables", _PLAIN_NAME),
    ("builtins", "reaches the built-in functions through the builtins module", _PLAIN_NAME),
    ("runpy", "runs a module or file named by a string", _PLAIN_IMPORT),
    ("pickle", *_PICKLE),
    ("marshal", *_PICKLE),
    ("dill", *_PICKLE),
    ("cloudpickle", *_PICKLE),
    ("shelve", *_PICKLE),
    ("copyreg", *_PICKLE),
    ("joblib", *_PICKLE),
    ("ctypes", "reads and writes raw memory", "not needed for the assignment"),
    ("inspect", "looks objects up through inspect (members, frames, sources)", _PLAIN_NAME),
    ("^gc", "searches every live object", _PLAIN_NAME),
    ("operator.attrgetter", "looks attributes up by a string", "write the attribute out: obj.attr"),
    ("operator.methodcaller", "calls a method named by a string", "call it: obj.method(...)"),
    ("types.FunctionType", "builds a function from a code object", "write the function with def"),
    ("types.LambdaType", "builds a function from a code object", "write the function with def"),
    ("types.CodeType", "builds a code object", "write the function with def"),
    (
        "torch.ops",
        "calls PyTorch's operators by name, below its public functions",
        "use the public API: @ or torch.matmul, F.softmax, masked_fill",
    ),
    (
        "torch.library",
        "defines or looks up PyTorch operators by name",
        "use the public API: @ or torch.matmul, F.softmax, masked_fill",
    ),
    (
        "torch.overrides",
        "changes PyTorch's function overrides, which the grader's runtime check uses",
        "not needed for the assignment",
    ),
    ("torch.jit.load", "loads compiled code from a file", "write the code in the module"),
    ("torch.package", "loads packaged code", "write the code in the module"),
    ("torch.hub", "loads code by name", "write the code in the module"),
    ("torch.classes", "loads compiled operators", "write the code in the module"),
    ("torch.export.load", "loads compiled code from a file", "write the code in the module"),
    ("cpp_extension", "compiles C++ code from strings", "write the code in Python"),
    ("^imp", "imports a module named by a string", _PLAIN_IMPORT),
    ("zipimport", "imports code from an archive", _PLAIN_IMPORT),
    ("pkgutil", "finds modules and objects by name", _PLAIN_IMPORT),
    ("pydoc", "finds objects by a dotted string (pydoc.locate)", _PLAIN_IMPORT),
    ("typing.get_type_hints", "evaluates annotation strings as code", _PLAIN_NAME),
    ("typing_extensions.get_type_hints", "evaluates annotation strings as code", _PLAIN_NAME),
    ("typing.ForwardRef", "evaluates annotation strings as code", _PLAIN_NAME),
    (
        "unittest.mock",
        "patches objects named by a string",
        "write the behaviour where it is defined",
    ),
    ("^mock", "patches objects named by a string", "write the behaviour where it is defined"),
    ("logging.config", "builds objects named by strings", _PLAIN_IMPORT),
    ("string.Formatter", "reads attributes named in a string", _PLAIN_NAME),
    ("^code.InteractiveInterpreter", "runs code from strings", "write the code in the module"),
    ("^code.InteractiveConsole", "runs code from strings", "write the code in the module"),
    ("^code.interact", "runs code from strings", "write the code in the module"),
    ("^codeop", "compiles code from strings", "write the code in the module"),
    ("^timeit", "runs code from strings", "write the code in the module"),
    ("^doctest", "runs code from strings", "write the code in the module"),
    ("^cProfile", "runs code from strings", "write the code in the module"),
    ("^profile", "runs code from strings", "write the code in the module"),
    ("^pdb", "runs code from strings", "write the code in the module"),
    ("^trace", "runs and traces code", "write the code in the module"),
    ("sys.settrace", "traces other code and its frames", _PLAIN_NAME),
    ("sys.setprofile", "traces other code and its frames", _PLAIN_NAME),
    ("sys._current_frames", "reads other frames' variables", _PLAIN_NAME),
    ("threading.settrace", "traces other code and its frames", _PLAIN_NAME),
    ("subprocess", "runs another program", "compute it in your own code"),
    ("multiprocessing", "runs code in another process", "compute it in your own code"),
    ("os.system", "runs another program", "compute it in your own code"),
    ("os.popen", "runs another program", "compute it in your own code"),
    ("os.execv", "runs another program", "compute it in your own code"),
    ("os.execve", "runs another program", "compute it in your own code"),
    ("os.spawnv", "runs another program", "compute it in your own code"),
    ("os.posix_spawn", "runs another program", "compute it in your own code"),
    ("^pty", "runs another program", "compute it in your own code"),
    ("read_pickle", *_PICKLE),
)
_PRIVATE_TORCH = (
    "reaches PyTorch's internals (a private module or function, where its fused "
    "kernels live below the public API)",
    "use the public API: @ or torch.matmul, F.softmax, masked_fill",
)
_GLOBAL_HOOK = (
    "registers a hook on every module's forward, which changes what any module computes",
    "hooks on your own module instances are fine",
)
# The built-in functions that run or look up code by a string: (why, plainly).
DYNAMIC_BUILTINS = {
    "exec": ("runs code built from a string", "write the code itself in the module"),
    "eval": ("evaluates code built from a string", "write the expression itself"),
    "compile": ("compiles code built from a string", "write the code itself in the module"),
    "__import__": ("imports a module named by a string", _PLAIN_IMPORT),
    "globals": ("reads the module's names as a dictionary", _PLAIN_NAME),
    "locals": ("reads local names as a dictionary", _PLAIN_NAME),
    "breakpoint": ("starts a debugger", "remove it before submitting"),
}
_BY_STRING = ("getattr", "setattr", "delattr", "hasattr", "vars")
# Attributes that reach objects by name or change how names are found.
DUNDERS = {
    "__dict__",
    "__getattribute__",
    "__getattr__",
    "__setattr__",
    "__delattr__",
    "__globals__",
    "__builtins__",
    "__code__",
    "__closure__",
    "__subclasses__",
    "__bases__",
    "__base__",
    "__mro__",
    "mro",
    "__self__",
    "__func__",
    "__wrapped__",
    "__loader__",
    "__spec__",
    "__reduce__",
    "__reduce_ex__",
    "__import__",
    "__defaults__",
    "__kwdefaults__",
    "f_back",
    "f_locals",
    "f_globals",
    "f_builtins",
    "tb_frame",
    "gi_frame",
    "cr_frame",
}
_DUNDER_NAMES = {"__builtins__", "__loader__", "__spec__"}
_HARMLESS_STORES = {"os.environ"}  # environment variables hold strings only


def _parts_in(parts: list[str], pattern: str) -> bool:
    want = pattern.removeprefix("^").split(".")
    if pattern.startswith("^"):
        return parts[: len(want)] == want
    return any(parts[i : i + len(want)] == want for i in range(len(parts) - len(want) + 1))


def dynamic_library(dotted: str) -> tuple[str, str, str] | None:
    """(what, why, plainly) when the library name ``dotted`` is dynamic access, else None."""
    parts = dotted.split(".")
    for pattern, why, plainly in DYNAMIC_LIBRARY:
        if _parts_in(parts, pattern):
            return pattern.removeprefix("^"), why, plainly
    for i, part in enumerate(parts):
        if part == "torch":
            for later in parts[i + 1 :]:
                if later.startswith("_") and not (later.startswith("__") and later.endswith("__")):
                    return f"torch.{later}" if parts[i + 1] == later else dotted, *_PRIVATE_TORCH
            if parts[-1].startswith("register_module_"):
                return parts[-1], *_GLOBAL_HOOK
    return None


@functools.lru_cache(maxsize=4096)
def _is_library_module(dotted: str) -> bool:
    """Whether ``dotted`` names an installed module, from the file system (nothing is imported)."""
    parts = dotted.split(".")
    if parts[0] in sys.builtin_module_names:
        return len(parts) == 1
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    locations = list(spec.submodule_search_locations or [])
    for i, part in enumerate(parts[1:], start=1):
        last = i == len(parts) - 1
        found: list[str] = []
        for loc in locations:
            folder = Path(loc) / part
            if folder.is_dir():
                found.append(str(folder))
            elif folder.with_suffix(".py").is_file() or any(Path(loc).glob(f"{part}.*.so")):
                return last
        if not found:
            return False
        locations = found
    return True


def _constant(node: ast.AST | None) -> bool:
    if node is None:
        return False
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _forbidden(name: str, patterns: tuple[str, ...]) -> str | None:
    """The pattern a library name matches: a dotted pattern against the whole name, a bare one
    against its last part (globs: ``*scaled_dot*``)."""
    last = name.rsplit(".", 1)[-1]
    for p in patterns:
        if fnmatch.fnmatchcase(name if "." in p else last, p) or (
            "." in p and fnmatch.fnmatchcase(name, "*." + p)
        ):
            return p
    return None


_OPAQUE_WHY = (
    "the audit cannot follow this to what it is (re-bound or nested more deeply than "
    "any honest code needs), so it counts against the rule. Instead, write it plainly"
)


class _Checker:
    def __init__(self, sub: _Submission, rule: Rule):
        self.sub, self.rule = sub, rule
        self.found: dict[tuple[str, int, str], Finding] = {}

    def add(self, module: _Module, node: ast.AST, key: str, why: str) -> None:
        line = getattr(node, "lineno", 0)
        if (module.rel, line, key) not in self.found:
            self.found[(module.rel, line, key)] = Finding(
                "rule", self.rule.id, module.rel, line, _line(module.lines, line), why
            )

    def run(self) -> list[Finding]:
        for rel, why in self.sub.unreadable:
            self.found[(rel, 0, "unreadable")] = Finding(
                "rule",
                self.rule.id,
                rel,
                0,
                "",
                f"the audit cannot read this file ({why}), so "
                "the rule cannot be checked and counts as broken. Instead, write it plainly",
            )
        closure = self._closure()
        for module in self.sub.modules.values():
            skip = set(self.sub.skip)
            for node in ast.walk(module.tree):
                if id(node) in skip or id(node) not in self.sub.scope_of:
                    continue
                scope = self.sub.scope_of[id(node)]
                if isinstance(node, ast.If) and self._type_checking(node.test, scope):
                    skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
                    continue
                try:
                    self._names(module, node, scope)
                    if module.name in closure and self.rule.libraries is not None:
                        self._libraries(module, node, scope)
                    if self.rule.dynamic:
                        self._dynamic(module, node, scope)
                except RecursionError:
                    self.add(module, node, "opaque", _OPAQUE_WHY)
        return sorted(self.found.values(), key=lambda f: (f.file, f.line))

    def _type_checking(self, test: ast.AST, scope: _Scope) -> bool:
        values = self.sub.resolve(test, scope)
        return bool(values) and values <= {
            ("lib", "typing.TYPE_CHECKING"),
            ("lib", "typing_extensions.TYPE_CHECKING"),
        }

    def _closure(self) -> set[str]:
        """The rule's files, the submitted modules they import (transitively) and their
        packages' ``__init__`` (importing a module runs its package first)."""
        package = self.sub.package
        todo = [
            m.name
            for m in self.sub.modules.values()
            for pattern in self.rule.files or ("*.py",)
            if fnmatch.fnmatchcase(m.rel, f"{package}/{pattern}")
        ]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen or name not in self.sub.modules:
                continue
            seen.add(name)
            parts = name.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts))]
            module = self.sub.modules[name]
            for node in ast.walk(module.tree):
                if isinstance(node, ast.Import):
                    for a in node.names:
                        if self.sub.is_ours(a.name):
                            todo.append(a.name)
                elif isinstance(node, ast.ImportFrom):
                    base = _absolute(module, node)
                    if self.sub.is_ours(base):
                        todo += [base, *(f"{base}.{a.name}" for a in node.names)]
        return seen

    # ---- 1. forbidden names

    def _names(self, module: _Module, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            values: set[Value] = set()
            for a in node.names:
                if a.name == "*":
                    continue
                if isinstance(node, ast.Import):
                    values.add(self.sub.module_value(a.name))
                else:
                    values |= self.sub.attr(self.sub.module_value(_absolute(module, node)), a.name)
        elif isinstance(node, ast.Name | ast.Attribute) or (
            isinstance(node, ast.Call) and _getattr_constant(node) is not None
        ):
            values = set(self.sub.resolve(node, scope))
        else:
            return
        for v in values:
            if v[0] == "opaque":
                self.add(module, node, "opaque", _OPAQUE_WHY)
            elif v[0] == "lib":
                pattern = _forbidden(v[1], self.rule.forbid)
                if pattern:
                    self.add(
                        module,
                        node,
                        f"forbid:{v[1]}",
                        f"uses {v[1]}, a library "
                        "implementation of attention (what the rule forbids)",
                    )
            elif v[0] == "unknown" and v[1] and v[1] not in self.sub.defined:
                if _forbidden(v[1], self.rule.forbid):
                    self.add(
                        module,
                        node,
                        f"forbid:{v[1]}",
                        f"uses .{v[1]} on an object the audit cannot resolve, and nothing in "
                        f"your submission defines {v[1]}: it is taken to be the library's",
                    )

    # ---- 2. libraries of the rule's files

    def _libraries(self, module: _Module, node: ast.AST, scope: _Scope) -> None:
        if not isinstance(node, ast.Name | ast.Attribute) or not isinstance(node.ctx, ast.Load):
            return
        allowed = STDLIB | set(self.rule.libraries or ())
        for v in self.sub.resolve(node, scope):
            root = v[1].split(".")[0] if v[0] == "lib" else None
            if root and root not in allowed:
                files = ", ".join(self.rule.files) or "these files"
                libraries = ", ".join(self.rule.libraries or ()) or "no library"
                self.add(
                    module,
                    node,
                    f"library:{root}",
                    f"uses {v[1]}: {files} and the modules of your submission it imports may "
                    f"use {libraries} and Python's standard library only ({root} holds "
                    "implementations of attention of its own)",
                )

    # ---- 3. dynamic access

    def _dynamic(self, module: _Module, node: ast.AST, scope: _Scope) -> None:
        def flag(key: str, what: str, why: str, plainly: str, unreadable: bool = True) -> None:
            then = (
                "; the audit cannot read what that reaches, so it counts against the rule"
                if unreadable
                else ""
            )
            self.add(module, node, f"dynamic:{key}", f"{what} {why}{then}. Instead, {plainly}.")

        if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
            values = self.sub.resolve(node, scope)
            for v in values:
                if v[0] == "builtin" and v[1] in DYNAMIC_BUILTINS:
                    flag(v[1], f"{v[1]}()", *DYNAMIC_BUILTINS[v[1]])
                elif v[0] == "builtin" and v[1] in _BY_STRING and not self._called(node):
                    flag(
                        v[1],
                        f"{v[1]} passed around as a value",
                        "looks names up by string",
                        "call it where it is used, with the name written out",
                    )
                elif v[0] == "lib":
                    hit = dynamic_library(v[1])
                    if hit:
                        flag(hit[0], f"{v[1]}", hit[1], hit[2])
                    elif self._as_value(node) and _is_library_module(v[1]):
                        flag(
                            f"module:{v[1]}",
                            f"the module {v[1]}, passed around as a value,",
                            "can be searched by name",
                            "call its functions by their names (F.softmax(x))",
                        )
                elif v[0] == "sub" and v[1] != module.name and self._as_value(node):
                    flag(
                        f"module:{v[1]}",
                        f"your module {v[1]}, passed around as a value,",
                        "can be searched by name and changed from outside",
                        "import the names you use from it",
                    )
            if isinstance(node, ast.Name) and node.id in _DUNDER_NAMES:
                flag(node.id, node.id, "reaches names by string", _PLAIN_NAME)
        if isinstance(node, ast.Attribute) and node.attr in DUNDERS and not _on_super(node):
            flag(
                node.attr,
                f".{node.attr}",
                "reaches objects and names by introspection",
                _PLAIN_NAME,
            )
        if isinstance(node, ast.Call):
            self._call(module, node, scope, flag)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            value = getattr(node, "value", None)
            keep = isinstance(node, ast.Assign | ast.AnnAssign) and _constant(value)
            for t in targets:
                self._store(module, node, scope, t, keep, flag)

    def _called(self, node: ast.AST) -> bool:
        parent = self.sub.parent_of.get(id(node))
        return isinstance(parent, ast.Call) and parent.func is node

    def _as_value(self, node: ast.AST) -> bool:
        """A module used other than by reading its attributes (or re-binding it: ``G = F``)."""
        parent = self.sub.parent_of.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return False
        if isinstance(parent, ast.Call) and parent.args and parent.args[0] is node:
            scope = self.sub.scope_of[id(parent)]
            if any(
                v[0] == "builtin" and v[1] in _BY_STRING
                for v in self.sub.resolve(parent.func, scope)
            ):
                return False  # getattr(F, ...): judged as a lookup by _call
        if isinstance(parent, ast.Assign) and parent.value is node:  # G = F, not in a class body
            in_class = self.sub.scope_of[id(parent)].kind == "class"  # (self.G is not followed)
            return in_class or not all(isinstance(t, ast.Name) for t in parent.targets)
        return not (isinstance(parent, ast.Call) and parent.func is node)

    def _reaches_other(self, values: frozenset[Value] | set[Value], module: _Module) -> str | None:
        """What of a library or of another submitted module ``values`` may be, if anything."""
        for v in sorted(values):
            if v[0] == "lib" and v[1] not in _HARMLESS_STORES:
                return v[1]
            if v[0] == "sub" and v[1] != module.name:
                return v[1]
            if v[0] == "obj" and v[1] != module.name:
                return f"{v[1]}.{v[2]}"
        return None

    def _call(self, module: _Module, node: ast.Call, scope: _Scope, flag) -> None:
        func = self.sub.resolve(node.func, scope)
        for kw in node.keywords:  # unpickling: the bytes name what to rebuild
            if kw.arg == "weights_only" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is True
            ):
                flag("pickle", "weights_only=False", *_PICKLE)
            if kw.arg == "allow_pickle" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                flag("pickle", "allow_pickle=True", *_PICKLE)
        for kw in node.keywords:
            if kw.arg == "trust_remote_code" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                flag(
                    "remote-code",
                    "trust_remote_code=True",
                    "runs model code from files",
                    "load the model without it",
                )
        by_string = {v[1] for v in func if v[0] == "builtin" and v[1] in _BY_STRING}
        if not by_string:
            return
        which = sorted(by_string)[0]
        constant = _getattr_constant(node)
        if constant in DUNDERS or (
            which in ("setattr", "delattr")
            and constant is not None
            and constant.startswith("__")
            and constant.endswith("__")
        ):
            flag(
                constant,
                f"{which}() of {constant}",
                "reaches objects and names by introspection, or changes how an object behaves",
                _PLAIN_NAME,
            )
            return
        if not node.args:
            if which == "vars":
                flag("vars", "vars()", *DYNAMIC_BUILTINS["locals"])
            return
        target = self._reaches_other(self.sub.resolve(node.args[0], scope), module)
        if target is None:
            return
        if which in ("setattr", "delattr"):
            flag(
                f"patch:{target}",
                f"{which}() on {target}",
                "changes it from outside its "
                "module (monkeypatching): the code the tests run would not be the code written "
                "there",
                "write the behaviour where the object is defined",
                False,
            )
        elif which == "vars" or constant is None:
            flag(
                which,
                f"{which}() with a name computed at run time on {target}",
                "looks a name up by string",
                "write the attribute out (F.softmax(x)); for a "
                "submodule by its dotted name, model.get_submodule(name)",
            )

    def _store(
        self, module: _Module, node: ast.AST, scope: _Scope, target: ast.AST, keep: bool, flag
    ) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for t in target.elts:
                self._store(module, node, scope, t, keep, flag)
            return
        if isinstance(target, ast.Starred):
            target = target.value
        if not isinstance(target, ast.Attribute | ast.Subscript):
            return
        if (
            isinstance(target, ast.Attribute)
            and target.attr.startswith("__")
            and target.attr.endswith("__")
        ):
            flag(
                "dunder-store",
                f"assigning .{target.attr}",
                "changes how an object behaves from outside its class",
                "define the method in your own class",
                False,
            )
            return
        values = self.sub.resolve(target.value, scope)
        other = self._reaches_other(values, module)
        if other is None:
            return
        settings = all(v[0] == "lib" and v[1].startswith("torch.backends.") for v in values)
        if settings and keep and isinstance(target, ast.Attribute):
            return  # a setting given a constant: torch.backends.cudnn.deterministic = True
        spelt = f"{other}.{target.attr}" if isinstance(target, ast.Attribute) else f"{other}[...]"
        flag(
            f"patch:{spelt}",
            f"changing {spelt}",
            "from outside its module (monkeypatching): "
            "the code the tests run would not be the code written there",
            "write the behaviour where it is defined",
            False,
        )


def _on_super(node: ast.Attribute) -> bool:
    """``super().__getattr__(name)``: an override of one's own class reaching its base class."""
    value = node.value
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
        and not value.args
    )


def violations(tree: Path, assignment: str, rule: Rule) -> list[Finding]:
    """Where the submission in ``tree`` (the folder holding the package) breaks ``rule``."""
    return _Checker(_Submission(tree, assignment), rule).run()
