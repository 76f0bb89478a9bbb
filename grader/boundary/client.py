"""The trusted side of the boundary: the requests a test makes of the deliverable process.

The test process starts one deliverable process per run (``grader.boundary.server``) as the
student user, talks to it over a socket with plain data (``grader.boundary.protocol``), and gives
the tests *proxies* (``grader.boundary.proxy``):

- ``deliverable("a1_lm_basics.softmax").softmax(x)`` sends ``x``, runs the student's function
  there and returns what it returned, rebuilt here from bytes (a plain tensor, a tuple ...);
- objects that are not data (a student's ``nn.Module``, a class, a ``Trainer``) stay there and
  come back as :class:`Remote` proxies;
- a test's function passed to student code (the ``f`` of a gradient checker) stays here: student
  code calling it asks this process to run it;
- autograd crosses too (``grader.boundary.autograd``);
- arguments the student's code changed in place (``sgd_step(params, ...)``) are changed here too
  (``grader.boundary.writeback``), and the global torch seed set here is set there before student
  code runs.

The process's life — start, fork, time limits, death — is ``grader.boundary.process``. Every reply
is checked before use (sizes, types, shapes: ``grader.boundary.wire``). A call that overruns the
test's time, a process that dies, or a reply that breaks the protocol fails the test that made
the call with a message saying which, and the next call starts a fresh process.
"""

from __future__ import annotations

from typing import Any

import torch

from grader.boundary import errors, protocol
from grader.boundary.autograd import _Link, attach
from grader.boundary.handles import Instrument, active_guards
from grader.boundary.process import DeliverableProcess
from grader.boundary.proxy import Method, Ref, Remote, remote_isinstance, remote_text
from grader.boundary.wire import Decoder, Encoder, WireError
from grader.boundary.writeback import (
    MAX_WRITEBACKS,
    _apply_at,
    _tensors_in,
    _unwrap_mutable,
    _writeback_problem,
)

__all__ = ["Boundary", "Remote", "remote_isinstance", "remote_text"]


class Boundary(DeliverableProcess):
    """The deliverable process of one test run (``DeliverableProcess``), and every request to it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # DeliverableProcess's arguments
        super().__init__(*args, **kwargs)
        self.modules: dict[str, Remote] = {}
        self.proxies: dict[tuple[int, int], Remote] = {}
        self.attributes: dict[tuple, Remote] = {}  # of modules and classes, within a test
        self.shadowing: set[tuple[int, int]] = set()  # objects the test set attributes on
        self.exports: dict[int, Any] = {}
        self.rng_sent: torch.Tensor | None = None

    def _forget(self, when: str) -> None:
        if when == "process":
            self.modules.clear()
            self.proxies.clear()
            self.rng_sent = None
            return
        self.exports.clear()  # the test's functions and objects handed over
        if when == "test end":
            self.shadowing.clear()
            self.proxies = {k: v for k, v in self.proxies.items() if v._ref.kind == "namespace"}
            self.attributes.clear()

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
            return {
                "side": "t",
                "id": key,
                "kind": "instrument",
                "type": type(obj).__name__[:80],
                "methods": list(obj.EXPOSED),
            }
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
            cls = ref.get("cls") if type(ref.get("cls")) is int else None
            proxy = Remote(self, Ref("d", n, kind, typ, self.generation, cls))
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
        protocol.check_request(msg, protocol.TO_TEST)
        target = msg.get("target")
        if not isinstance(target, dict) or target.get("side") != "t":
            raise WireError("a call of something that is not a test's function")
        fn = self._resolve(target)
        method = target.get("method")
        if isinstance(fn, Instrument):  # only the methods it exposes, named exactly
            if not isinstance(method, str) or method not in type(fn).EXPOSED:
                raise WireError(
                    f"a call of {str(method)[:40]!r}, which the test's object does not expose"
                )
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
            raise WireError("a malformed call")
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

    def request(self, op: str, obj: Remote, fused: bool = True, **fields: Any) -> Any:
        """getattr, setattr, getitem, len, list, contains, deepcopy, isinstance, text."""
        # One lookup a test of a module's functions and classes, and of an object's methods
        # (``model.step(...)`` looks ``step`` up before every call: 9% of a2's requests, 15% of
        # a1's). Values are asked for each time; setting the attribute forgets what was found.
        # A function of an object's class is known by class: on the next object of that class
        # (a model built for every Hypothesis example), ``model.double()`` is one request, not
        # two (a2: 2,100 of 8,200).
        ref = obj._ref
        key = (ref.generation, ref.id, fields.get("name"))
        by_class = (ref.generation, "class", ref.cls, fields.get("name"))
        if op == "getattr" and key in self.attributes:
            return self.attributes[key]
        if op == "getattr" and fused and ref.cls is not None and by_class in self.attributes:
            if (ref.generation, ref.id) not in self.shadowing:
                return Method(obj, fields["name"])
        if op == "setattr":
            self.attributes.pop(key, None)
            self.shadowing.add((ref.generation, ref.id))  # its own attributes may hide methods
        value, reply = self._request(op, obj, **fields)
        if op == "getattr" and isinstance(value, Remote):
            if ref.kind == "namespace" or value._ref.kind == "callable":
                self.attributes[key] = value
            if reply.get("method") is True and ref.cls is not None:
                self.attributes[by_class] = value
        return value

    def _request(self, op: str, obj: Remote, **fields: Any) -> tuple[Any, dict]:
        self._ready()
        enc = self._encoder()
        header = {"op": op, "target": self._target(obj)}
        for key, value in fields.items():
            header[key] = enc.encode(value) if key in ("value", "key", "item") else value
        reply, blob = self._ask(header, enc.blobs)
        value, _ = self._check_reply(reply, blob)
        return value, reply

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
        self,
        target: Remote | str,
        args: tuple,
        kwargs: dict,
        guards: list[str] | None = None,
        method: str | None = None,
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
            if method is not None:
                header["method"] = method
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
            tensors_sent = _tensors_in([list(args), kwargs])
            inputs = [
                tensors_sent[k] for k in sent if k in tensors_sent and tensors_sent[k].requires_grad
            ]
            value = attach(self, value, graph, dec, inputs)
        return value

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
