"""The deliverable process: the student's modules, torch, and this loop — nothing of the tests.

Started by the trusted test process (``grader.boundary.client``) as the student user, with the
grader's resource limits, and connected to it by a socket (``--fd``). It imports deliverables on
request and answers requests about them with plain data (``grader.boundary.wire``): call this
function with these values, read this attribute, build this kit object, run backward through the
graph of an earlier call. Objects that are not data stay here and cross as references.

Nothing this process says is believed by the other side: every reply is checked there, and the
tests compute expected values and scores in their own process. So this loop is written for clear
messages to honest students, not for defence.
"""

from __future__ import annotations

import argparse
import collections.abc
import copy
import gc
import importlib
import inspect
import itertools
import os
import socket
import sys
import traceback
import types
from pathlib import Path
from typing import Any

import torch

from grader.boundary import guards, protocol
from grader.boundary.channel import Channel
from grader.boundary.wire import Decoder, Encoder, WireError
from grader.limits import FILE_BYTES, MEMORY_BYTES, Caps
from grader.sandbox import apply_limits, release_memory

# What ``build`` may construct: kit objects a test needs next to the student's (a base layer to
# wrap, an optimizer over the student's parameters, a tokenizer). Never the tests or the grader.
BUILD_ROOTS = ("torch", "transformers", "datasets", "peft", "numpy", "coursekit", "tokenizers")
MAX_ITEMS_FROM_ITERATOR = 100_000
MAX_GRAPHS = 256
MAX_TEXT = 4000


def kind_of(obj: Any) -> str:
    if isinstance(obj, torch.nn.Module):
        return "module"
    if isinstance(obj, types.ModuleType):
        return "namespace"
    if isinstance(obj, type):
        return "class"
    if callable(obj):
        return "callable"
    return "object"


class Table:
    """Objects the other side holds references to, by number; the same object, the same number."""

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self.numbers: dict[int, int] = {}  # id(obj) -> number
        self.pinned: set[int] = set()  # imported modules: kept across tests
        self.next = 1

    def export(self, obj: Any, pin: bool = False) -> dict[str, Any]:
        n = self.number(obj)
        if pin:
            self.pinned.add(n)
        kind = kind_of(obj)
        ref = {"side": "d", "id": n, "kind": kind, "type": type(obj).__name__[:80]}
        if kind in ("module", "object"):  # its class, by number: the test side knows its methods
            ref["cls"] = self.number(type(obj))
        return ref

    def number(self, obj: Any) -> int:
        n = self.numbers.get(id(obj))
        if n is None or self.objects.get(n) is not obj:
            n, self.next = self.next, self.next + 1
            self.objects[n] = obj
            self.numbers[id(obj)] = n
        return n

    def get(self, ref: Any) -> Any:
        if not isinstance(ref, dict) or ref.get("side") != "d" or ref.get("id") not in self.objects:
            raise LookupError("a reference to an object this process no longer holds")
        return self.objects[ref["id"]]

    def reset(self) -> None:
        self.objects = {n: o for n, o in self.objects.items() if n in self.pinned}
        self.numbers = {id(o): n for n, o in self.objects.items()}


class TrustedFunction:
    """A test's function handed to student code: calling it asks the test process to run it."""

    def __init__(self, server: Server, ref: dict[str, Any]) -> None:
        self._server, self._ref = server, ref

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._server.callback(self._ref, args, kwargs)

    def __repr__(self) -> str:
        return "<function of the test>"


class TrustedObject:
    """A test's object handed to student code (``grader.boundary.client.Instrument``): its
    exposed methods call back into the test process; nothing else of it is here."""

    def __init__(self, server: Server, ref: dict[str, Any]) -> None:
        self._server, self._ref = server, ref
        methods = ref.get("methods")
        self._methods = (
            tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list) else ()
        )

    def __getattr__(self, name: str) -> TrustedFunction:
        if name.startswith("_") or name not in self._methods:
            raise AttributeError(
                f"the test's {str(self._ref.get('type'))[:40]} has no {name!r}: it offers "
                f"{', '.join(self._methods) or 'nothing'}"
            )
        return TrustedFunction(self._server, {**self._ref, "method": name})

    def __repr__(self) -> str:
        return f"<the test's {str(self._ref.get('type'))[:40]}>"


class CallbackError(Exception):
    """The test's function raised when student code called it."""


class Tracker:
    """Arguments as they arrived, to send back the ones a call changed in place."""

    def __init__(self) -> None:
        self.seen: list[tuple[tuple, Any, Any]] = []

    @staticmethod
    def fingerprint(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj._version
        if isinstance(obj, list):
            return [id(v) for v in obj]
        if isinstance(obj, dict):
            return [(k, id(v)) for k, v in obj.items()]
        if isinstance(obj, torch.Generator):
            return bytes(obj.get_state().numpy())
        return None

    def add(self, path: tuple, obj: Any) -> None:
        self.seen.append((path, obj, self.fingerprint(obj)))

    def changed(self) -> list[tuple[tuple, Any]]:
        out: list[tuple[tuple, Any]] = []
        for path, obj, before in sorted(self.seen, key=lambda s: len(s[0])):
            if self.fingerprint(obj) == before:
                continue
            if any(path[: len(p)] == p for p, _ in out):
                continue  # inside a container already sent whole
            out.append((path, obj))
        return out


def plain_result(value: Any) -> Any:
    """Iterators and views become lists (``model.parameters()`` crosses as its parameters)."""
    if isinstance(value, types.GeneratorType | map | filter | zip | itertools.chain) or (
        isinstance(value, collections.abc.Iterator) and not isinstance(value, torch.Tensor)
    ):
        return list(itertools.islice(value, MAX_ITEMS_FROM_ITERATOR))
    if isinstance(
        value, collections.abc.KeysView | collections.abc.ValuesView | collections.abc.ItemsView
    ):
        return list(value)
    return value


def describe_error(exc: BaseException, impl_root: str) -> dict[str, Any]:
    """An exception as data: its type's name, message, notes, and the frames in the student's files."""
    root = os.path.realpath(impl_root) + os.sep
    frames = []
    for f in traceback.extract_tb(exc.__traceback__):
        path = os.path.realpath(f.filename)
        if path.startswith(root):
            frames.append(
                [os.path.relpath(path, root), f.lineno or 0, f.name, (f.line or "")[:300]]
            )
    out: dict[str, Any] = {
        "type": type(exc).__name__[:80],
        "bases": [c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"][:8],
        "message": str(exc)[:MAX_TEXT] if not isinstance(exc, SystemExit) else repr(exc.code)[:200],
        "notes": [str(n)[:MAX_TEXT] for n in getattr(exc, "__notes__", ())][:5],
        "frames": frames[-5:],
    }
    if isinstance(exc, ImportError) and exc.name:
        out["name"] = str(exc.name)[:200]
    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        out["errno"] = exc.errno
        out["message"] = str(exc.strerror or "")[:MAX_TEXT]
    if isinstance(exc, SyntaxError):
        filename = exc.filename or ""
        if os.path.realpath(filename).startswith(root):
            filename = os.path.relpath(os.path.realpath(filename), root)
        out["syntax"] = [
            filename[:300],
            exc.lineno or 0,
            (exc.msg or "")[:300],
            (exc.text or "")[:300],
        ]
    return out


class Server:
    def __init__(self, sock: socket.socket, impl_root: str, caps: Caps) -> None:
        self.impl_root = impl_root
        self.table = Table()
        self.graphs: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self.next_graph = 1
        self.channel = Channel(sock, caps, self.serve, may_serve=lambda: True)
        self.caps = caps

    # the two directions ------------------------------------------------------------------

    def resolve(self, ref: dict[str, Any]) -> Any:
        if ref.get("side") == "t" and ref.get("kind") == "callable":
            return TrustedFunction(self, ref)
        if ref.get("side") == "t" and ref.get("kind") == "instrument":
            return TrustedObject(self, ref)
        return self.table.get(ref)

    def encode(self, value: Any) -> tuple[Any, Encoder]:
        enc = Encoder(export=self.table.export)
        return enc.encode(plain_result(value)), enc

    def callback(self, ref: dict[str, Any], args: tuple, kwargs: dict) -> Any:
        enc = Encoder(export=self.table.export)
        params = enc.encode([list(args), kwargs])
        header, blob = self.channel.ask(
            {"op": "callback", "target": ref, "params": params}, enc.blobs, None
        )
        if "error" in header:
            err = header["error"] if isinstance(header["error"], dict) else {}
            raise CallbackError(f"{err.get('type', 'Error')}: {err.get('message', '')}"[:MAX_TEXT])
        return Decoder(blob, self.resolve, self.caps).decode(header.get("value"))

    def serve(self, msg: dict[str, Any], blob: bytearray) -> tuple[dict[str, Any], list]:
        try:
            op = protocol.check_request(msg, protocol.TO_DELIVERABLE)
            header, blobs = getattr(self, f"op_{op}")(msg, blob)
        except BaseException as exc:  # SystemExit too: the student's, reported as an error
            if isinstance(exc, KeyboardInterrupt):
                raise
            return {"error": describe_error(exc, self.impl_root)}, []
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return header, blobs

    def reply(self, value: Any, **extra: Any) -> tuple[dict[str, Any], list]:
        data, enc = self.encode(value)
        return {"value": data, **extra}, enc.blobs

    # requests ----------------------------------------------------------------------------

    def op_hello(self, msg, blob):
        return self.reply({"pid": os.getpid(), "uid": os.getuid()})

    def op_import(self, msg, blob):
        name = msg.get("module")
        if not isinstance(name, str) or not all(p.isidentifier() for p in name.split(".")):
            raise WireError("a malformed module name")
        module = importlib.import_module(name)
        return {"value": {"$ref": self.table.export(module, pin=True)}}, []

    def op_getattr(self, msg, blob):
        target = self.table.get(msg.get("target"))
        name = msg.get("name")
        if not isinstance(name, str) or name.startswith("__"):
            raise AttributeError(str(name)[:80])
        value = getattr(target, name)
        if isinstance(value, types.ModuleType | type) or (
            callable(value) and not isinstance(value, torch.Tensor)
        ):
            header = {"value": {"$ref": self.table.export(value)}}
            if _class_method(target, name, value):
                header["method"] = True  # any instance of its class has it: called by name
            return header, []
        return self.reply(value)

    def op_setattr(self, msg, blob):
        target = self.table.get(msg.get("target"))
        name = msg.get("name")
        if not isinstance(name, str) or name.startswith("__"):
            raise AttributeError(str(name)[:80])
        value = Decoder(blob, self.resolve, self.caps).decode(msg.get("value"))
        setattr(target, name, value)
        return self.reply(None)

    def _run(self, msg, blob, function):
        tracker = Tracker()
        dec = Decoder(blob, self.resolve, self.caps, track=tracker.add)
        params = dec.decode(msg.get("params"))
        if not (
            isinstance(params, list)
            and len(params) == 2
            and isinstance(params[0], list)
            and isinstance(params[1], dict)
        ):
            raise WireError("a malformed call")
        args, kwargs = params
        if "rng" in msg:
            dec.track = None
            torch.set_rng_state(dec.decode(msg["rng"]))
        grad = msg.get("grad") is True
        with torch.set_grad_enabled(grad), guards.applied(msg.get("guards") or []):
            value = function(*args, **kwargs)
        value = plain_result(value)
        data, enc = self.encode(value)
        header: dict[str, Any] = {"value": data}
        # Only the arguments the test handed over as mutable come back changed: the test's other
        # values (its inputs, which its oracle may read again) are copies student code cannot reach.
        allowed = [tuple(p) for p in msg.get("mutable") or [] if isinstance(p, list)]
        changed = [(p, o) for p, o in tracker.changed() if any(p[: len(a)] == a for a in allowed)]
        if changed:
            wb = []
            for path, obj in changed:
                wb.append({"path": enc.encode(list(path)), "value": enc.encode(obj)})
            header["writeback"] = wb
        if grad:
            inputs = [t for t in tracker_tensors(tracker) if t.requires_grad]
            # Results of this call's computation join the test's graph; leaves (a parameter
            # returned as it is) cross as snapshots with their .grad, like any attribute read.
            outputs = [(i, t) for t, i in _encoded_tensors(enc, value) if t.grad_fn is not None]
            if outputs:
                g = self.next_graph
                self.next_graph += 1
                self.graphs[g] = ([t for _, t in outputs], inputs)
                while len(self.graphs) > MAX_GRAPHS:
                    self.graphs.pop(next(iter(self.graphs)))
                header["graph"] = {"id": g, "outputs": [i for i, _ in outputs]}
        return header, enc.blobs

    def op_call(self, msg, blob):
        target = self.table.get(msg.get("target"))
        if "method" in msg:  # obj.name(...): looked up now, as Python looks it up at the call
            name = msg["method"]
            if name.startswith("__"):
                raise AttributeError(name[:80])
            target = getattr(target, name)
        return self._run(msg, blob, target)

    def op_build(self, msg, blob):
        return self._run(msg, blob, importable(msg.get("factory")))

    def op_backward(self, msg, blob):
        graph = self.graphs.pop(msg.get("graph"), None)
        if graph is None:
            raise RuntimeError(
                "backward through this result a second time (or after the test moved on): the "
                "student's side keeps each graph for one backward"
            )
        outputs, inputs = graph
        grads = Decoder(blob, None, self.caps).decode(msg.get("grads"))
        if not isinstance(grads, list) or len(grads) != len(outputs):
            raise WireError("gradients that do not match the outputs")
        pairs = [(o, g) for o, g in zip(outputs, grads, strict=True) if g is not None]
        for i in inputs:
            i.grad = None
        if pairs:
            torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return self.reply([i.grad for i in inputs])

    def op_getitem(self, msg, blob):
        target = self.table.get(msg.get("target"))
        key = Decoder(blob, self.resolve, self.caps).decode(msg.get("key"))
        return self._value_or_ref(target[key])

    def op_len(self, msg, blob):
        return self.reply(len(self.table.get(msg.get("target"))))

    def op_list(self, msg, blob):
        target = self.table.get(msg.get("target"))
        items = list(itertools.islice(iter(target), MAX_ITEMS_FROM_ITERATOR))
        return self.reply(items)

    def op_contains(self, msg, blob):
        target = self.table.get(msg.get("target"))
        item = Decoder(blob, self.resolve, self.caps).decode(msg.get("item"))
        return self.reply(bool(item in target))

    def op_deepcopy(self, msg, blob):
        target = self.table.get(msg.get("target"))
        return {"value": {"$ref": self.table.export(copy.deepcopy(target))}}, []

    def op_isinstance(self, msg, blob):
        target = self.table.get(msg.get("target"))
        classes = msg.get("classes")
        if not isinstance(classes, list):
            raise WireError("a malformed isinstance request")
        return self.reply([isinstance(target, importable(c)) for c in classes])

    def op_text(self, msg, blob):
        target = self.table.get(msg.get("target"))
        return self.reply(str(target)[:MAX_TEXT])

    def op_reset(self, msg, blob):
        self.table.reset()
        self.graphs.clear()
        release_memory()
        return self.reply(None)

    def _value_or_ref(self, value: Any):
        if isinstance(value, torch.nn.Module | types.ModuleType | type) or (
            callable(value) and not isinstance(value, torch.Tensor)
        ):
            return {"value": {"$ref": self.table.export(value)}}, []
        return self.reply(value)


def _class_method(target: Any, name: str, value: Any) -> bool:
    """Whether ``target.name`` is a function of its class bound to it (not an attribute of the
    instance): then every instance of that class answers ``name`` the same way."""
    return (
        isinstance(value, types.MethodType)
        and value.__self__ is target
        and name not in getattr(target, "__dict__", {})
        and inspect.isfunction(getattr(type(target), name, None))
    )


def tracker_tensors(tracker: Tracker) -> list[torch.Tensor]:
    return [obj for _, obj, _ in tracker.seen if isinstance(obj, torch.Tensor)]


def _encoded_tensors(enc: Encoder, value: Any) -> list[tuple[torch.Tensor, int]]:
    """(tensor, its index in the message) for the tensors of ``value`` as encoded."""
    out, stack, seen = [], [value], set()
    while stack:
        v = stack.pop()
        if isinstance(v, torch.Tensor):
            index = enc._seen.get(id(v))
            if index is not None and id(v) not in seen:
                seen.add(id(v))
                out.append((v, index))
        elif isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return sorted(out, key=lambda p: p[1])


def importable(path: Any) -> Any:
    """``"torch.nn.Linear"`` -> the object, for names under BUILD_ROOTS only."""
    if not isinstance(path, str) or path.split(".")[0] not in BUILD_ROOTS:
        raise WireError(f"{str(path)[:80]!r} may not be built in the deliverable process")
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def die_with_parent() -> None:
    """SIGKILL this process when the process that started it ends (Linux's PR_SET_PDEATHSIG)."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent ended before the line above: go now
        os._exit(0)


def serve(fd: int, impl: str, caps: Caps, memory: int, file_bytes: int, processes: int) -> None:
    """Set this process up to run student code, then answer requests until the end. Never returns."""
    try:
        # Before any student code runs: limits it cannot raise again, and an end with the test
        # process (if that is killed, nothing is left to stop this one).
        apply_limits(memory, file_bytes, processes)
        die_with_parent()
        # The graded tree goes last on sys.path: a submission cannot shadow torch or the kit.
        sys.path.append(str(Path(impl).resolve()))
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        # torch and the kit live as long as this process: frozen, the collection after every
        # test (op_reset) skips them (a forked process has inherited its parent's frozen heap).
        gc.collect()
        gc.freeze()
        gc.enable()  # off in the test process while it starts (grader.testprocess.plugin): on for student code
        sock = socket.socket(fileno=fd)
        server = Server(sock, impl, caps)
        server.channel.serve_forever()
    except WireError:
        pass  # the test process closed the connection: the run is over
    finally:
        os._exit(0)  # threads the student started must not keep this process alive


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--impl", required=True)
    p.add_argument("--message-mib", type=int, default=Caps().message_bytes // 1024**2)
    p.add_argument("--memory", type=int, default=MEMORY_BYTES)
    p.add_argument("--file-bytes", type=int, default=FILE_BYTES)
    p.add_argument("--processes", type=int, default=0)
    args = p.parse_args(argv)
    caps = Caps(message_bytes=args.message_mib * 1024**2)
    serve(args.fd, args.impl, caps, args.memory, args.file_bytes, args.processes)


if __name__ == "__main__":
    main()
