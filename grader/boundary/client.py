"""The trusted side of the boundary: the deliverable process, and proxies of what lives there.

The test process starts one deliverable process per run (``grader.boundary.server``) as the
student user, talks to it over a socket with plain data, and gives the tests *proxies*:

- ``deliverable("a1_lm_basics.softmax").softmax(x)`` sends ``x``, runs the student's function
  there and returns what it returned, rebuilt here from bytes (a plain tensor, a tuple ...);
- objects that are not data (a student's ``nn.Module``, a class, a ``Trainer``) stay there and
  come back as :class:`Remote` proxies: call them, read attributes (tensors come as snapshots
  carrying ``requires_grad`` and ``grad``), index them, ``copy.deepcopy`` them;
- a test's function passed to student code (the ``f`` of a gradient checker) stays here: student
  code calling it asks this process to run it;
- autograd crosses too: a result computed with gradients enabled is attached to this side's graph,
  and ``loss.backward()`` here runs backward there (gradients reach the student's parameters and
  this side's inputs);
- arguments the student's code changed in place (``sgd_step(params, ...)``) are changed here too,
  and the global torch seed set here is set there before student code runs.

Every reply is checked before use (sizes, types, shapes: ``grader.boundary.wire``). A call that
overruns the test's time, a process that dies, or a reply that breaks the protocol fails the test
that made the call with a message saying which, and the next call starts a fresh process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grader.boundary import errors
from grader.boundary.channel import Channel

# An Instrument is a test's object handed to student code as itself: student code may call the
# methods named in its EXPOSED (an optimizer's step and zero_grad) and nothing else; each call runs
# here, on the test side, where it can observe the student's objects through their proxies before
# passing the call on. What it records is the test's own.
from grader.boundary.handles import Instrument, Mutable, active_guards
from grader.boundary.wire import Decoder, Encoder, PeerGone, WireError, WireTimeout, socket_pair
from grader.limits import ProcessLimits

MAX_WRITEBACKS = 10_000  # entries in one reply's write-back (the arguments a call may change)
SCALARS = (bool, int, float, str, type(None))


@dataclass
class Ref:
    side: str
    id: int
    kind: str
    type: str
    generation: int


class Remote:
    """An object that lives in the deliverable process (a module, a class, a function ...)."""

    __slots__ = ("_boundary", "_ref", "__weakref__")

    def __init__(self, boundary: Boundary, ref: Ref) -> None:
        object.__setattr__(self, "_boundary", boundary)
        object.__setattr__(self, "_ref", ref)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._boundary.request("getattr", self, name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._boundary.request("setattr", self, name=name, value=value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._boundary.call(self, args, kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self._boundary.request("getitem", self, key=key)

    def __len__(self) -> int:
        n = self._boundary.request("len", self)
        if type(n) is not int or n < 0:
            raise errors.BoundaryViolation(f"len() of a student's object gave {n!r:.40}")
        return n

    def __iter__(self):
        items = self._boundary.request("list", self)
        if not isinstance(items, list):
            raise errors.BoundaryViolation("iterating a student's object gave no list")
        return iter(items)

    def __contains__(self, item: Any) -> bool:
        return self._boundary.request("contains", self, item=item) is True

    def __deepcopy__(self, memo: dict) -> Remote:
        return self._boundary.request("deepcopy", self)

    def __copy__(self) -> Remote:
        return self._boundary.request("deepcopy", self)

    def __repr__(self) -> str:
        ref = self._ref
        return f"<student's {ref.type} ({ref.kind}) #{ref.id}>"

    def __reduce__(self):
        raise TypeError("a student's object cannot be pickled: it lives in another process")


def remote_text(obj: Remote) -> str:
    """``str(obj)`` as the student's process renders it (bounded)."""
    text = obj._boundary.request("text", obj)
    return text if isinstance(text, str) else ""


def remote_isinstance(obj: Any, *classes: str) -> bool:
    """Whether ``obj`` (a proxy, or a local object) is an instance of any of the named classes,
    e.g. ``"torch.nn.Module"``. For a proxy the student's process answers: use it for messages."""
    if isinstance(obj, Remote):
        answers = obj._boundary.request("isinstance", obj, classes=list(classes))
        return isinstance(answers, list) and any(a is True for a in answers)
    from grader.boundary.server import importable

    return any(isinstance(obj, importable(c)) for c in classes)


# --------------------------------------------------------------------------- autograd


class _Link:
    """What backward needs about one result computed with gradients in the other process."""

    def __init__(
        self, boundary: Boundary, graph: int, generation: int, outputs: list, inputs: list
    ):
        self.boundary, self.graph, self.generation = boundary, graph, generation
        self.outputs, self.inputs = outputs, inputs

    def backward(self, grads: tuple) -> list:
        got = self.boundary.backward(self, list(grads))
        if not isinstance(got, list) or len(got) != len(self.inputs):
            raise errors.BoundaryViolation("backward returned gradients that match no input")
        out = []
        for g, x in zip(got, self.inputs, strict=True):
            if g is None:
                out.append(None)
            elif not isinstance(g, torch.Tensor) or g.shape != x.shape:
                raise errors.BoundaryViolation("backward returned a gradient of the wrong shape")
            else:
                out.append(g.to(x.dtype))
        return out


class _Bridge(torch.autograd.Function):
    """Puts the other process's outputs into this side's graph: backward goes over there."""

    @staticmethod
    def forward(ctx, link: _Link, anchor: torch.Tensor, *inputs: torch.Tensor):
        ctx.link = link
        return tuple(o.detach().clone() for o in link.outputs)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        return (None, None, *ctx.link.backward(grads))


def _substitute(value: Any, swap: dict[int, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return swap.get(id(value), value)
    if isinstance(value, list):
        return [_substitute(v, swap) for v in value]
    if isinstance(value, tuple):
        return tuple(_substitute(v, swap) for v in value)
    if isinstance(value, dict):
        return {k: _substitute(v, swap) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- the process


class Boundary:
    """The deliverable process of one test run, and every request to it."""

    def __init__(
        self,
        impl_root: Path,
        python: str,
        env: dict[str, str],
        limits: ProcessLimits = ProcessLimits(),
        user: tuple[int, int] | None = None,
    ) -> None:
        self.impl_root, self.python, self.env = impl_root, python, env
        self.limits, self.user = limits, user
        self.proc: subprocess.Popen | None = None
        self.channel: Channel | None = None
        self.generation = 0
        self.modules: dict[str, Remote] = {}
        self.proxies: dict[tuple[int, int], Remote] = {}
        self.attributes: dict[tuple[int, int, str], Remote] = {}  # of modules, within a test
        self.exports: dict[int, Any] = {}
        self.rng_sent: torch.Tensor | None = None
        self.deadline: float | None = None
        self.test_limit: float | None = None
        self.restarts = 0
        self.broken: str | None = None  # why the last process ended, told to the next call
        self.log_read = 0
        # Under /tmp itself when student code runs as another user: it must reach its folders
        # (this process's own temporary folder is private).
        base = "/tmp" if user is not None and os.path.isdir("/tmp") else None
        self.workdir = Path(tempfile.mkdtemp(prefix="grader-deliverable-", dir=base))
        self.workdir.chmod(0o711)
        self.shared = self.workdir / "shared"  # the tests' files that student code reads
        self.shared.mkdir(mode=0o755)
        self.shared.chmod(0o755)
        self.published: dict[Path, int | None] = {}  # shared folders -> listing stamp made readable
        self.student_dirs = 0
        self.scratch = self.workdir / "scratch"
        self.log_path = self.workdir / "output.log"

    # lifecycle ---------------------------------------------------------------------------

    def start(self, fork: bool = False) -> None:
        """Start the process. ``fork``: as a copy of this one (torch already imported, so it is
        ready at once) — only before any test is collected, while this process holds nothing
        of the tests; otherwise a fresh interpreter (``python -m grader.boundary.server``)."""
        if self.proc is not None:
            return
        self.generation += 1
        self.modules.clear()
        self.proxies.clear()
        self.rng_sent = None
        if self.scratch.exists():
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir()
        if self.user is not None:
            os.chown(self.scratch, *self.user)
        ours, theirs = socket_pair()
        lim = self.limits
        env = {**self.env, "TMPDIR": str(self.scratch), "HOME": str(self.scratch),
               "MPLCONFIGDIR": str(self.scratch)}  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.log_read = self.log_path.stat().st_size
        processes = lim.processes if self.user is not None else 0
        try:
            if fork:
                self.proc = _fork_server(theirs, log, env, self, processes)
            else:
                cmd = [
                    self.python, "-P", "-m", "grader.boundary.server", "--fd", str(theirs.fileno()),
                    "--impl", str(self.impl_root), "--message-mib", str(lim.caps.message_bytes // 1024**2),
                    "--memory", str(lim.memory_bytes), "--file-bytes", str(lim.file_bytes),
                    "--processes", str(processes),
                ]  # fmt: skip
                kwargs: dict[str, Any] = {}
                if self.user is not None:
                    kwargs = {"user": self.user[0], "group": self.user[1], "extra_groups": []}
                self.proc = subprocess.Popen(
                    cmd, cwd=self.scratch, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, pass_fds=(theirs.fileno(),), start_new_session=True,
                    **kwargs,
                )  # fmt: skip
        finally:
            theirs.close()
            log.close()
        self.channel = Channel(ours, lim.caps, self._serve, may_serve=lambda: True)
        self.hello_pending = True

    def ready(self) -> None:
        """Wait until the process answers (started if need be)."""
        self._ready()

    def _ready(self) -> None:
        if self.published:
            self._publish_shared()
        if self.proc is None:
            if self.broken is not None and self.restarts >= self.limits.restarts_per_test:
                raise errors.DeliverableCrashed(
                    f"{self.broken}\n(The deliverable process failed {self.restarts + 1} times in "
                    "this test; the rest of the test was not run.)"
                )
            if self.broken is not None:
                self.restarts += 1
            self.start()
        if self.hello_pending:
            self.hello_pending = False
            self._ask({"op": "hello"}, [], startup=True)

    def stop(self) -> None:
        """End the process and everything it started."""
        proc, self.proc = self.proc, None
        if self.channel is not None:
            try:
                self.channel.sock.close()
            except OSError:
                pass
            self.channel = None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.user is not None:
            from grader.sandbox import sweep_user

            sweep_user(self.user[0])
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _died(self, why: str) -> str:
        """Stop the process (at once, unless it closed the connection itself: then it is on
        its way out and its exit status tells why); return the cause the test reports."""
        proc = self.proc
        rc = None
        if proc is not None and why == "gone":
            try:
                rc = proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                rc = None
        self.stop()
        cause = errors.death_cause(rc, self.limits.memory_bytes) if why == "gone" else why
        self.broken = cause
        return cause

    # tests -------------------------------------------------------------------------------

    def shared_dir(self, name: str) -> Path:
        """A new folder for files a test writes and student code reads: readable by the student
        user, never writable by it (the test can trust what it wrote there)."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.shared))
        path.chmod(0o755)
        self.published[path] = None
        return path

    def _publish_shared(self) -> None:
        """Make what the tests wrote in shared folders readable by student code before a call.
        Libraries write through private temporary files (a saved model's ``model.safetensors``
        comes out 0600): fixed here, once per change of a folder's listing."""
        for folder, seen in self.published.items():
            try:
                stamp = folder.stat().st_mtime_ns
            except OSError:
                continue
            if stamp == seen:
                continue
            for root, dirs, files in os.walk(folder):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    if not os.path.islink(path):
                        os.chmod(path, 0o755 if name in dirs else 0o644)
            self.published[folder] = stamp

    def student_dir(self) -> Path:
        """A new folder student code may write (a Trainer's output_dir): its contents are data
        from student code, as untrusted as any reply."""
        self.student_dirs += 1
        path = self.workdir / f"student-{self.student_dirs}"
        path.mkdir(mode=0o700)
        if self.user is not None:
            os.chown(path, *self.user)
        return path

    def begin_test(self, limit: float | None) -> None:
        # Each test's output starts from an empty file, so the file-size limit is per test (the
        # process writes with O_APPEND: after truncation it writes at the new end).
        try:
            os.truncate(self.log_path, 0)
        except OSError:
            pass
        self.log_read = 0
        self.test_limit = limit
        self.deadline = None if limit is None else time.monotonic() + limit
        self.restarts = 0
        self.broken = None
        self.exports.clear()

    def end_test(self) -> str:
        """Forget this test's objects; return what the student's code printed during it."""
        self.deadline = None
        self.exports.clear()
        if self.proc is not None and self.channel is not None and not self.hello_pending:
            try:
                self._ask({"op": "reset"}, [], limit=10.0)
            except errors.StudentError:
                pass
        self.proxies = {k: v for k, v in self.proxies.items() if v._ref.kind == "namespace"}
        self.attributes.clear()
        return self.printed()

    def printed(self, limit: int = 64_000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_read)
                data = f.read(limit)
                self.log_read = f.seek(0, os.SEEK_END)
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    # requests ----------------------------------------------------------------------------

    def _ask(self, header: dict, blobs: list, *, startup: bool = False, limit: float | None = None):
        if limit is None:
            limit = self.limits.startup_timeout if startup else self.limits.call_timeout
        deadline = time.monotonic() + limit
        if self.deadline is not None and not startup:
            deadline = min(deadline, self.deadline + 5.0)  # pytest-timeout normally fires first
        assert self.channel is not None
        try:
            reply, blob = self.channel.ask(header, blobs, deadline)
        except WireTimeout:
            what = "start" if startup else "answer"
            cause = self._died(
                f"Time limit exceeded: the student's code did not {what} within "
                f"{limit if self.deadline is None else self.test_limit:g} s (the process running "
                "it was stopped). Look for an infinite loop, or Python loops over tensor "
                "elements that should be vectorised."
            )
            raise errors.DeliverableTimeout(cause) from None
        except PeerGone:
            raise errors.DeliverableCrashed(self._died("gone")) from None
        except WireError as exc:
            cause = self._died(
                f"The student's process sent something the grader cannot accept: {exc}"
            )
            raise errors.BoundaryViolation(cause) from None
        except BaseException:  # pytest-timeout, an interrupt: the call was abandoned midway
            self._died("The previous call was abandoned (time limit or interrupt).")
            raise
        return reply, blob

    def _encoder(self) -> Encoder:
        return Encoder(export=self._export)

    def _export(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, Remote):
            ref = obj._ref
            if ref.generation != self.generation:
                raise errors.StaleObject()
            return {"side": "d", "id": ref.id, "kind": ref.kind, "type": ref.type}
        if isinstance(obj, Instrument):
            key = id(obj)
            self.exports[key] = obj
            return {"side": "t", "id": key, "kind": "instrument", "type": type(obj).__name__[:80],
                    "methods": list(obj.EXPOSED)}  # fmt: skip
        if callable(obj):
            key = id(obj)
            self.exports[key] = obj
            return {"side": "t", "id": key, "kind": "callable", "type": "function"}
        raise WireError(
            f"a {type(obj).__name__} of the test cannot be handed to student code; build it in "
            "the student's process instead (grader.testprocess.deliverables.build)"
        )

    def _resolve(self, ref: dict[str, Any]) -> Any:
        side, n = ref.get("side"), ref.get("id")
        if side == "t":
            if n not in self.exports:
                raise WireError("a reference to a test's object that was never handed over")
            return self.exports[n]
        if side != "d" or type(n) is not int:
            raise WireError("a malformed reference")
        key = (self.generation, n)
        proxy = self.proxies.get(key)
        if proxy is None:
            kind, typ = ref.get("kind"), ref.get("type")
            if kind not in ("module", "namespace", "class", "callable", "object"):
                raise WireError("a reference of unknown kind")
            typ = typ[:80] if isinstance(typ, str) else "object"
            proxy = Remote(self, Ref("d", n, kind, typ, self.generation))
            self.proxies[key] = proxy
        return proxy

    def _decode(self, blob: bytearray, data: Any) -> tuple[Any, Decoder]:
        dec = Decoder(blob, self._resolve, self.limits.caps)
        try:
            return dec.decode(data), dec
        except (
            WireError,
            RecursionError,
            ValueError,
            TypeError,
            OverflowError,
            MemoryError,
        ) as exc:
            raise errors.BoundaryViolation(
                self._died(f"The student's process sent a value the grader cannot accept: {exc}")
            ) from None

    def _check_reply(self, reply: dict, blob: bytearray) -> tuple[Any, Decoder]:
        if "error" in reply:
            raise errors.from_remote(reply["error"])
        if "value" not in reply:
            raise errors.BoundaryViolation(self._died("The student's process sent an empty reply."))
        return self._decode(blob, reply["value"])

    def _serve(self, msg: dict[str, Any], blob: bytearray):
        """Requests from the deliverable process: only calls of the test's functions it was given."""
        if msg.get("op") != "callback":
            raise WireError(
                f"a request the test process does not serve: {str(msg.get('op'))[:40]!r}"
            )
        target = msg.get("target")
        if not isinstance(target, dict) or target.get("side") != "t":
            raise WireError("a call of something that is not a test's function")
        fn = self._resolve(target)
        method = target.get("method")
        if isinstance(fn, Instrument):  # only the methods it exposes, named exactly
            if not isinstance(method, str) or method not in type(fn).EXPOSED:
                raise WireError(f"a call of {str(method)[:40]!r}, which the test's object does not expose")  # fmt: skip
            fn = getattr(fn, method)
        elif method is not None:
            raise WireError("a method call on a test's function")
        params, _ = self._decode(blob, msg.get("params"))
        if not (
            isinstance(params, list)
            and len(params) == 2
            and isinstance(params[0], list)
            and isinstance(params[1], dict)
            and all(isinstance(k, str) for k in params[1])
        ):
            raise WireError("a malformed call")  # fmt: skip
        try:
            value = fn(*params[0], **params[1])
            enc = self._encoder()
            return {"value": enc.encode(value)}, enc.blobs
        except Exception as exc:
            return {"error": {"type": type(exc).__name__, "message": str(exc)[:2000]}}, []

    def _target(self, obj: Remote) -> dict[str, Any]:
        if obj._ref.generation != self.generation or self.proc is None:
            raise errors.StaleObject()
        return self._export(obj)

    def request(self, op: str, obj: Remote, **fields: Any) -> Any:
        """getattr, setattr, getitem, len, list, contains, deepcopy, isinstance, text."""
        # One lookup a test of a module's functions and classes, and of an object's methods
        # (``model.step(...)`` looks ``step`` up before every call: 9% of a2's requests, 15% of
        # a1's). Values are asked for each time; setting the attribute forgets what was found.
        key = (obj._ref.generation, obj._ref.id, fields.get("name"))
        if op == "getattr" and key in self.attributes:
            return self.attributes[key]
        if op == "setattr":
            self.attributes.pop(key, None)
        value = self._request(op, obj, **fields)
        if op == "getattr" and isinstance(value, Remote):
            if obj._ref.kind == "namespace" or value._ref.kind == "callable":
                self.attributes[key] = value
        return value

    def _request(self, op: str, obj: Remote, **fields: Any) -> Any:
        self._ready()
        enc = self._encoder()
        header = {"op": op, "target": self._target(obj)}
        for key, value in fields.items():
            header[key] = enc.encode(value) if key in ("value", "key", "item") else value
        reply, blob = self._ask(header, enc.blobs)
        value, _ = self._check_reply(reply, blob)
        return value

    def import_module(self, name: str) -> Remote:
        self._ready()
        if name in self.modules and self.modules[name]._ref.generation == self.generation:
            return self.modules[name]
        reply, blob = self._ask({"op": "import", "module": name}, [])
        value, _ = self._check_reply(reply, blob)
        if not isinstance(value, Remote):
            raise errors.BoundaryViolation(self._died("importing a module gave no module"))
        self.modules[name] = value
        return value

    def call(
        self, target: Remote | str, args: tuple, kwargs: dict, guards: list[str] | None = None
    ) -> Any:
        """Call a student's function (or build a kit object there, ``target`` a dotted name)."""
        self._ready()
        args, kwargs, mutable = _unwrap_mutable(args, kwargs)
        enc = self._encoder()
        params = enc.encode([list(args), kwargs])
        sent = list(enc._seen)  # ids of the tensors sent, in the order the other side reads them
        header: dict[str, Any] = {"params": params, "grad": torch.is_grad_enabled()}
        if isinstance(target, str):
            header.update(op="build", factory=target)
        else:
            header.update(op="call", target=self._target(target))
        if mutable:
            header["mutable"] = mutable
        if guards is None:
            guards = active_guards()
        if guards:
            header["guards"] = guards
        state = torch.get_rng_state()
        if self.rng_sent is None or not torch.equal(state, self.rng_sent):
            header["rng"] = enc.encode(state)
            self.rng_sent = state
        reply, blob = self._ask(header, enc.blobs)
        value, dec = self._check_reply(reply, blob)
        if "writeback" in reply:
            self._write_back(reply["writeback"], dec, [list(args), kwargs], blob, mutable)
        graph = reply.get("graph")
        if graph is not None:
            by_id = {}
            tensors_sent = _tensors_in([list(args), kwargs])
            inputs = [
                tensors_sent[k] for k in sent if k in tensors_sent and tensors_sent[k].requires_grad
            ]
            value = self._attach(value, graph, dec, inputs, by_id)
        return value

    def _attach(self, value: Any, graph: Any, dec: Decoder, inputs: list, by_id: dict) -> Any:
        if not isinstance(graph, dict) or type(graph.get("id")) is not int:
            raise errors.BoundaryViolation(self._died("a malformed graph in a reply"))
        idx = graph.get("outputs")
        if not isinstance(idx, list) or not all(
            type(i) is int and 0 <= i < len(dec.tensors) for i in idx
        ):
            raise errors.BoundaryViolation(self._died("a graph naming tensors that are not in the reply"))  # fmt: skip
        outputs = [dec.tensors[i] for i in idx]
        outputs = [o for o in outputs if o.is_floating_point() or o.is_complex()]
        if not outputs:
            return value
        link = _Link(self, graph["id"], self.generation, [o.detach() for o in outputs], inputs)
        anchor = torch.zeros((), requires_grad=True)
        attached = _Bridge.apply(link, anchor, *inputs)
        swap = {id(o): a for o, a in zip(outputs, attached, strict=True)}
        return _substitute(value, swap)

    def backward(self, link: _Link, grads: list) -> Any:
        if link.generation != self.generation or self.proc is None:
            raise errors.StaleObject()
        self._ready()
        enc = self._encoder()
        data = enc.encode([None if g is None else g.detach() for g in grads])
        reply, blob = self._ask({"op": "backward", "graph": link.graph, "grads": data}, enc.blobs)
        value, _ = self._check_reply(reply, blob)
        return value

    def _write_back(
        self, entries: Any, dec: Decoder, params: list, blob: bytearray, mutable: list[list]
    ) -> None:
        """Apply the changes student code made in place to the arguments it was handed as
        ``mutable(...)``, and only to those. Every entry is checked before anything is applied: a
        path inside a mutable argument, a value of the same structure as what is there (a tensor
        of the same shape and dtype, a list or tuple of the same length, a dict with the same
        keys, a generator). Anything else is a protocol violation and the call fails: a reply can
        never reach a value the test did not hand over to be changed (its inputs, which its
        oracle may read again)."""
        if not isinstance(entries, list) or len(entries) > MAX_WRITEBACKS:
            raise errors.BoundaryViolation(self._died("a malformed write-back"))
        changes = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise errors.BoundaryViolation(self._died("a malformed write-back"))
            path, _ = self._decode(blob, entry.get("path"))
            new = Decoder(blob, self._resolve, self.limits.caps)
            new.tensors = dec.tensors  # the same message: aliases refer to its tensors
            new.decoded, new.items = dec.decoded, dec.items
            try:
                value = new.decode(entry.get("value"))
                dec.decoded, dec.items = new.decoded, new.items
            except (WireError, RecursionError, ValueError, TypeError, MemoryError) as exc:
                raise errors.BoundaryViolation(
                    self._died(f"a malformed write-back: {exc}")
                ) from None
            problem = _writeback_problem(params, path, value, mutable)
            if problem is not None:
                raise errors.BoundaryViolation(self._died(f"The student's process {problem}."))
            changes.append((path, value))
        for path, value in changes:
            _apply_at(params, path, value)


class _Forked:
    """A forked deliverable process, with the part of ``subprocess.Popen`` the boundary uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -9
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() >= end:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]


def _fork_server(theirs, log, env: dict[str, str], boundary: Boundary, processes: int) -> _Forked:
    """Fork the deliverable process from this one. The copy keeps only what it needs: the socket
    and the log as its output, default signal handlers, the student user's identity, the kit's
    paths off ``sys.path``; then it runs the server loop and never returns here."""
    import importlib
    import signal
    import sys

    from grader.boundary import server

    lim = boundary.limits
    pid = os.fork()
    if pid:
        return _Forked(pid)
    try:  # the child: nothing below may return into pytest
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        keep = theirs.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        for sig in (signal.SIGALRM, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, 0)
        os.chdir(boundary.scratch)
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None  # cached by this process from its own TMPDIR: now the scratch's
        # The kit's root and its tests go off sys.path; the course's package (coursekit),
        # imported before that, still serves the factories of build() through its package path.
        from grader.course import KIT_ROOT as kit  # the kit folder, wherever the package is
        from grader.course import course_packages

        for package in course_packages():
            importlib.import_module(package)

        sys.path[:] = [p for p in sys.path if p and Path(p).resolve() not in (kit, kit / "tests")]
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        if boundary.user is not None:
            from grader.sandbox import become

            become(boundary.user)
        server.serve(
            keep, str(boundary.impl_root), lim.caps, lim.memory_bytes, lim.file_bytes, processes
        )
    finally:
        os._exit(70)


def _unwrap_mutable(args: tuple, kwargs: dict) -> tuple[tuple, dict, list[list]]:
    """The arguments without their Mutable wrappers, and the paths of the wrapped ones."""
    paths: list[list] = []

    def plain(where: int, key: int | str, value: Any) -> Any:
        if isinstance(value, Mutable):
            paths.append([where, key])
            return value.value
        return value

    plain_args = tuple(plain(0, i, a) for i, a in enumerate(args))
    plain_kwargs = {k: plain(1, k, v) for k, v in kwargs.items()}
    return plain_args, plain_kwargs, paths


def _tensors_in(value: Any) -> dict[int, torch.Tensor]:
    out: dict[int, torch.Tensor] = {}
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, torch.Tensor):
            out[id(v)] = v
        elif isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return out


def _at(root: Any, path: list) -> Any:
    obj = root
    for key in path:
        obj = obj[key]
    return obj


def _writeback_problem(params: list, path: Any, value: Any, mutable: list[list]) -> str | None:
    """Why a write-back of ``value`` at ``path`` of the call's ``params`` must be refused, or
    None: ``path`` must lie inside an argument handed over as mutable, lead to an object that is
    there, and ``value`` must fit it (:func:`_fits`)."""
    if not isinstance(path, list) or not any(path[: len(m)] == m for m in mutable):
        where = describe_path(path)
        return (
            f"sent a change to {where}, which the test did not hand over to be changed in place "
            "(a reply may change only arguments passed as mutable(...))"
        )
    try:
        old = _at(params, path)
    except (KeyError, IndexError, TypeError):
        return f"sent a change to {describe_path(path)}, which is not among the call's arguments"
    problem = _fits(old, value)
    if problem is not None:
        return f"sent a change to {describe_path(path)} that does not fit it: {problem}"
    return None


def describe_path(path: Any) -> str:
    """``[0, 1, "w"]`` -> "argument 2, ['w']" (for messages)."""
    if not isinstance(path, list) or len(path) < 2 or path[0] not in (0, 1):
        return "something that is not an argument of the call"
    head = f"argument {path[1] + 1}" if path[0] == 0 else f"argument {path[1]!r}"
    return head + "".join(f"[{k!r}]" for k in path[2:])[:200]


def _fits(old: Any, new: Any, depth: int = 0) -> str | None:
    """Why ``new`` cannot be written into ``old`` in place, or None when it can: a tensor of the
    same shape and dtype, a generator, or a list / tuple / dict of such things with the same
    length or keys. Nothing else is ever written back (no replacement, no new kind of object)."""
    if depth > 48:
        return "it is nested too deeply"
    if isinstance(old, torch.Tensor):
        if not isinstance(new, torch.Tensor):
            return f"a {type(new).__name__} for a tensor"
        if new.shape != old.shape or new.dtype != old.dtype:
            return (
                f"a tensor of shape {tuple(new.shape)} and dtype {new.dtype} for one of shape "
                f"{tuple(old.shape)} and dtype {old.dtype} (a tensor changed in place keeps both)"
            )
        return None
    if isinstance(old, torch.Generator):
        return None if isinstance(new, torch.Generator) else "not a generator"
    if isinstance(old, SCALARS):  # an item of a list or dict: replaced by one of its type
        if type(new) is not type(old):
            return f"a {type(new).__name__} for a {type(old).__name__}"
        return None
    if isinstance(old, list | tuple):
        if type(new) is not type(old) and not (isinstance(new, list) and isinstance(old, list)):
            return f"a {type(new).__name__} for a {type(old).__name__}"
        if len(new) != len(old):
            return f"{len(new)} items for {len(old)}"
        if isinstance(old, tuple) and any(
            isinstance(a, SCALARS) and a != b for a, b in zip(old, new, strict=True)
        ):
            return "a changed item of a tuple (a tuple cannot change)"
        for a, b in zip(old, new, strict=True):
            problem = _fits(a, b, depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(old, dict):
        if not isinstance(new, dict) or set(new) != set(old):
            return "a dict with other keys"
        for key in old:
            problem = _fits(old[key], new[key], depth + 1)
            if problem is not None:
                return problem
        return None
    return f"a {type(old).__name__} is never changed in place"


def _apply_at(root: Any, path: list, new: Any) -> None:
    """Write ``new`` into the object at ``path`` of ``root``, in place (checked by :func:`_fits`)."""
    _write_into(_at(root, path), new)


def _write_into(old: Any, new: Any) -> None:
    if isinstance(old, torch.Tensor):
        with torch.no_grad():
            old.copy_(new)
    elif isinstance(old, torch.Generator):
        old.set_state(new.get_state())
    elif isinstance(old, list | tuple):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if isinstance(a, SCALARS):
                if isinstance(old, list):
                    old[i] = b
            else:
                _write_into(a, b)
    elif isinstance(old, dict):
        for key in old:
            if isinstance(old[key], SCALARS):
                old[key] = new[key]
            else:
                _write_into(old[key], new[key])
