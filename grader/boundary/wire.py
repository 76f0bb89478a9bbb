"""What crosses the boundary: frames of plain data, never pickle.

A *frame* is a JSON header plus one binary blob::

    b"KB" | header length (u32) | blob length (u64) | header (UTF-8 JSON) | blob

The header holds the message and its values; tensors and arrays are described in the header
(dtype, shape, where their bytes are in the blob) and their raw bytes travel in the blob. The
values that can cross are listed in :class:`Encoder`; anything else crosses as a *reference*
(``{"$ref": ...}``) to an object that stays in the process that owns it.

Both sides use this module, but only the trusted side's reading matters: it checks sizes before
allocating (``Caps``), parses JSON strictly (no NaN literals, bounded nesting), and rebuilds every
value from the bytes alone, so whatever a submission sends becomes plain tensors and Python data.
"""

from __future__ import annotations

import collections
import json
import math
import os
import pathlib
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from grader.limits import Caps

MAGIC = b"KB"
PREFIX = struct.Struct("!2sIQ")


class WireError(Exception):
    """A frame or value that breaks the protocol (too large, malformed, the wrong type)."""


class PeerGone(WireError):
    """The other end closed the connection (it exited or was killed)."""


class WireTimeout(WireError):
    """Nothing (or not all of a frame) arrived before the deadline."""


DEFAULT_CAPS = Caps()

# dtypes that cross as raw bytes; the names are torch's (``str(torch.float64)`` minus ``torch.``)
DTYPES = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "bool",
)


# --------------------------------------------------------------------------- frames


SMALL = 1 << 20  # frames up to this size go out in one system call


def send_frame(sock: socket.socket, header: dict[str, Any], blobs: list[memoryview]) -> None:
    text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    size = sum(b.nbytes for b in blobs)
    head = PREFIX.pack(MAGIC, len(text), size) + text
    if size + len(head) <= SMALL:
        sock.sendall(b"".join([head, *blobs]))
        return
    sock.sendall(head)
    for b in blobs:
        if b.nbytes:
            sock.sendall(b)


class Reader:
    """Reads frames from one socket through a buffer (a small frame: one system call)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def exact(self, n: int, deadline: float | None) -> bytearray:
        while len(self.buffer) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                    raise WireTimeout("timed out")
            try:
                chunk = self.sock.recv(max(n - len(self.buffer), 1 << 16))
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise PeerGone(str(exc)) from None
            if not chunk:
                raise PeerGone("connection closed")
            self.buffer += chunk
        if len(self.buffer) == n:
            out, self.buffer = self.buffer, bytearray()
            return out
        out = self.buffer[:n]
        del self.buffer[:n]
        return out


class Budget:
    """Bytes received over one connection, against ``Caps.run_bytes``."""

    def __init__(self, caps: Caps) -> None:
        self.caps, self.used = caps, 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.caps.run_bytes:
            raise WireError(
                f"more than {self.caps.run_bytes / 1024**3:g} GiB received in one run (the limit)"
            )


def recv_frame(
    reader: Reader, deadline: float | None, caps: Caps, budget: Budget
) -> tuple[dict[str, Any], bytearray]:
    """One frame: (header, blob). Sizes are checked before anything is allocated."""
    magic, hlen, blen = PREFIX.unpack(reader.exact(PREFIX.size, deadline))
    if magic != MAGIC:
        raise WireError("not a frame of this protocol")
    if hlen > caps.header_bytes:
        raise WireError(f"a message of {hlen:,} bytes of JSON (limit {caps.header_bytes:,})")
    if blen > caps.message_bytes:
        raise WireError(
            f"a message carrying {blen / 1024**2:.0f} MiB of data (limit "
            f"{caps.message_bytes / 1024**2:.0f} MiB)"
        )
    budget.take(hlen + blen)
    text = reader.exact(hlen, deadline)
    blob = reader.exact(blen, deadline) if blen else bytearray()
    try:
        header = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"unreadable message: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise WireError("a message must be a JSON object")
    return header, blob


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def socket_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    os.set_inheritable(b.fileno(), True)
    return a, b


# --------------------------------------------------------------------------- values

# A reference to an object that stays where it lives: {"$ref": {"side": ..., "id": ..., ...}}.
Export = Callable[[Any], dict[str, Any]]
Resolve = Callable[[dict[str, Any]], Any]


def _torch():
    import torch

    return torch


class Encoder:
    """Turns a value into JSON plus blobs.

    Crosses by value: None, bool, int, float (nan and inf tagged), str, bytes, list, tuple
    (named tuples too), dict (any keys that cross), torch.Tensor (its values, dtype, shape,
    ``requires_grad`` and ``grad``), numpy arrays and scalars, torch.Size, torch.dtype,
    torch.device, torch.Generator (its state), slice, Ellipsis. Anything else goes to
    ``export``, which returns a reference (or raises ``WireError`` when it may not cross).
    """

    def __init__(self, export: Export | None = None) -> None:
        self.export = export
        self.blobs: list[memoryview] = []
        self.offset = 0
        self._seen: dict[int, int] = {}  # id(tensor) -> its index: aliases stay aliases
        self._keep: list[Any] = []

    def _blob(self, data: memoryview) -> tuple[int, int]:
        start = self.offset
        self.blobs.append(data)
        self.offset += data.nbytes
        return start, data.nbytes

    def tensor(self, t: Any, with_grad: bool = True) -> dict[str, Any]:
        torch = _torch()
        key = id(t)
        if key in self._seen:
            return {"$alias": self._seen[key]}
        if t.layout != torch.strided or t.device.type != "cpu" or t.is_quantized:
            raise WireError(
                f"a tensor on device {t.device} with layout {t.layout} cannot be sent: return "
                "dense tensors on the cpu"
            )
        plain = torch.Tensor.detach(t).contiguous()
        if plain.dtype == torch.bfloat16 or plain.dtype == torch.float16:
            raw = plain.view(torch.int16).numpy().tobytes()
        elif plain.dtype == torch.bool:
            raw = plain.view(torch.uint8).numpy().tobytes()
        else:
            raw = plain.numpy().tobytes()
        dtype = str(plain.dtype).removeprefix("torch.")
        if dtype not in DTYPES:
            raise WireError(f"tensors of dtype {plain.dtype} cannot be sent")
        self._keep.append(raw)
        offset, nbytes = self._blob(memoryview(raw))
        index = len(self._seen)
        self._seen[key] = index
        out: dict[str, Any] = {
            "dtype": dtype,
            "shape": list(plain.shape),
            "at": offset,
            "n": nbytes,
            "index": index,
        }
        if t.requires_grad:
            out["requires_grad"] = True
        grad = t.grad if with_grad and t.is_leaf else None
        if grad is not None:
            out["grad"] = self.tensor(grad, with_grad=False)
        return {"$tensor": out}

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > DEFAULT_CAPS.depth:
            raise WireError("a value nested too deeply to send")
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            v = float(value)
            return v if math.isfinite(v) else {"$float": repr(v)}
        torch = _torch()
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, torch.Size):
            return {"$size": [int(s) for s in value]}
        if isinstance(value, list):
            return [self.encode(v, depth + 1) for v in value]
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, depth + 1) for v in value]}
        if isinstance(value, dict):
            pairs = [
                [self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()
            ]
            # A dict of a richer kind (a model's output, a DatasetDict) also reads by attribute.
            plain = type(value) in (dict, collections.OrderedDict, collections.defaultdict)
            return {"$dict": pairs} if plain else {"$record": pairs}
        if isinstance(value, torch.dtype):
            return {"$dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, torch.Generator):
            return {"$generator": self.tensor(value.get_state())}
        if isinstance(value, bytes | bytearray):
            return {"$bytes": self._blob(memoryview(bytes(value)))}
        if isinstance(value, slice):
            return {
                "$slice": [
                    self.encode(value.start),
                    self.encode(value.stop),
                    self.encode(value.step),
                ]
            }
        if value is Ellipsis:
            return {"$ellipsis": True}
        if isinstance(value, pathlib.PurePath):
            return {"$path": str(value)}
        numpy = _numpy_of(value)
        if numpy is not None:
            return numpy(self, value, depth)
        if self.export is None:
            raise WireError(f"a {type(value).__name__} cannot be sent")
        return {"$ref": self.export(value)}


class Record(dict):
    """A dict of a richer kind from the other side (a model's output, a ``DatasetDict``): its
    entries also read as attributes (``out.logits``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _numpy_of(value: Any):
    module = type(value).__module__
    if not module.startswith("numpy"):
        return None
    import numpy as np

    if isinstance(value, np.ndarray):
        return _encode_ndarray
    if isinstance(value, np.generic):
        return _encode_npscalar
    return None


NUMPY_SCALARS = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)


def _encode_npscalar(enc: Encoder, value: Any, depth: int) -> Any:
    """A numpy scalar keeps its type (``np.int64(3)`` is not the int 3 a handout may ask for)."""
    name = value.dtype.name
    if name not in NUMPY_SCALARS:
        return enc.encode(value.item(), depth)
    return {"$npscalar": [name, enc.encode(value.item(), depth + 1)]}


def _encode_ndarray(enc: Encoder, value: Any, depth: int) -> Any:
    torch = _torch()
    if value.dtype == object:
        return {"$ndarray": enc.encode(value.tolist(), depth + 1)}
    return {"$ndarray": enc.tensor(torch.from_numpy(value.copy()))}


class Decoder:
    """Rebuilds values from JSON and the blob, checking every field (the sender is not trusted).

    ``resolve`` turns a reference into an object (an entry of this side's table, or a proxy of
    the other side's object). ``track``, when given, is called as ``track(path, value)`` for every
    tensor, list, dict and generator rebuilt, with its path from the top (for write-back).
    """

    def __init__(
        self,
        blob: bytearray,
        resolve: Resolve | None,
        caps: Caps = DEFAULT_CAPS,
        track: Callable[[tuple, Any], None] | None = None,
    ) -> None:
        self.blob, self.resolve, self.caps, self.track = blob, resolve, caps, track
        self.items = 0
        self.decoded = 0  # bytes of tensor data rebuilt so far
        self.tensors: list[Any] = []

    def _rebuild(self, n: int) -> None:
        """Count ``n`` bytes rebuilt from the blob (a tensor's, a bytes value's). Each value has
        bytes of its own: ranges that overlap — one blob referenced many times, as a tensor or
        as bytes — would let a small message fill the memory of this process."""
        self.decoded += n
        if self.decoded > len(self.blob):
            raise WireError("values whose bytes overlap in the message")

    def _count(self) -> None:
        self.items += 1
        if self.items > self.caps.items:
            raise WireError(f"a message with more than {self.caps.items:,} values")

    def tensor(self, spec: Any, path: tuple | None = None) -> Any:
        """A tensor (or an alias of one already rebuilt); ``path`` given: tracked."""
        torch = _torch()
        if not isinstance(spec, dict):
            raise WireError("a malformed tensor")
        if "$alias" in spec:
            k = spec["$alias"]
            if type(k) is not int or not 0 <= k < len(self.tensors):
                raise WireError("a malformed tensor alias")
            return self.tensors[k]
        spec = spec.get("$tensor")
        if not isinstance(spec, dict) or spec.get("index") != len(self.tensors):
            raise WireError("a malformed tensor")
        dtype, shape, at, n = spec.get("dtype"), spec.get("shape"), spec.get("at"), spec.get("n")
        if dtype not in DTYPES:
            raise WireError(f"a tensor of unknown dtype {str(dtype)[:40]!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > 32
            or not all(type(s) is int and s >= 0 for s in shape)
        ):
            raise WireError("a tensor with a malformed shape")
        if type(at) is not int or type(n) is not int or at < 0 or n < 0 or at + n > len(self.blob):
            raise WireError("a tensor whose bytes are not in the message")
        tdtype = getattr(torch, dtype)
        itemsize = torch.empty((), dtype=tdtype).element_size()
        numel = math.prod(shape)
        if numel * itemsize != n:
            raise WireError(f"a tensor of shape {shape} and dtype {dtype} with {n} bytes")
        self._rebuild(n)
        if numel == 0:
            t = torch.empty(shape, dtype=tdtype)
        else:
            t = (
                torch.frombuffer(self.blob, dtype=tdtype, count=numel, offset=at)
                .reshape(shape)
                .clone()
            )
        self.tensors.append(t)
        if spec.get("requires_grad") is True:
            if not (t.is_floating_point() or t.is_complex()):
                raise WireError("an integer tensor cannot require grad")
            t.requires_grad_(True)
        if "grad" in spec:
            grad = self.tensor(spec["grad"])
            if grad.shape != t.shape or grad.dtype != t.dtype:
                raise WireError("a gradient whose shape or dtype is not its tensor's")
            t.grad = grad
        if self.track is not None and path is not None:
            self.track(path, t)
        return t

    def decode(self, data: Any, depth: int = 0, path: tuple = ()) -> Any:
        self._count()
        if depth > self.caps.depth:
            raise WireError("a value nested too deeply")
        if data is None or isinstance(data, bool | int | float):
            return data
        if isinstance(data, str):
            if len(data) > self.caps.text_chars:
                raise WireError(f"a string of more than {self.caps.text_chars:,} characters")
            return data
        if isinstance(data, list):
            out = [self.decode(v, depth + 1, (*path, i)) for i, v in enumerate(data)]
            if self.track is not None:
                self.track(path, out)
            return out
        if not isinstance(data, dict) or len(data) != 1:
            raise WireError("a malformed value")
        ((tag, body),) = data.items()
        torch = _torch()
        if tag in ("$tensor", "$alias"):
            return self.tensor(data, path)
        if tag == "$tuple" and isinstance(body, list):
            return tuple(self.decode(v, depth + 1, (*path, i)) for i, v in enumerate(body))
        if tag == "$dict" and isinstance(body, list):
            out = {}
            for pair in body:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise WireError("a malformed dict")
                key = self.decode(pair[0], depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise WireError("a dict key that cannot be a key") from None
                out[key] = self.decode(pair[1], depth + 1, (*path, key))
            if self.track is not None:
                self.track(path, out)
            return out
        if tag == "$record" and isinstance(body, list):
            return Record(self.decode({"$dict": body}, depth, path))
        if tag == "$path" and isinstance(body, str) and len(body) <= 4096:
            return pathlib.Path(body)
        if (
            tag == "$npscalar"
            and isinstance(body, list)
            and len(body) == 2
            and body[0] in NUMPY_SCALARS
        ):
            import numpy as np

            item = self.decode(body[1], depth + 1)
            if not isinstance(item, bool | int | float):
                raise WireError("a malformed numpy scalar")
            try:
                return np.dtype(body[0]).type(item)
            except (OverflowError, ValueError, TypeError):
                raise WireError("a numpy scalar out of its type's range") from None
        if tag == "$float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "$size" and isinstance(body, list) and all(type(s) is int for s in body):
            return torch.Size(body)
        if tag == "$dtype" and body in DTYPES:
            return getattr(torch, body)
        if tag == "$device" and body in ("cpu", "meta"):
            return torch.device(body)
        if tag == "$generator":
            state = self.tensor(body)
            g = torch.Generator()
            try:
                g.set_state(state)
            except (RuntimeError, TypeError):
                raise WireError("a malformed generator state") from None
            if self.track is not None:
                self.track(path, g)
            return g
        if tag == "$bytes" and isinstance(body, list) and len(body) == 2:
            at, n = body
            if (
                type(at) is not int
                or type(n) is not int
                or at < 0
                or n < 0
                or at + n > len(self.blob)
            ):
                raise WireError("bytes that are not in the message")
            self._rebuild(n)
            return bytes(self.blob[at : at + n])
        if tag == "$slice" and isinstance(body, list) and len(body) == 3:
            parts = [self.decode(v, depth + 1) for v in body]
            if not all(p is None or type(p) is int for p in parts):
                raise WireError("a malformed slice")
            return slice(*parts)
        if tag == "$ellipsis":
            return Ellipsis
        if tag == "$ndarray":
            inner = self.decode(body, depth + 1)
            import numpy as np

            if isinstance(inner, torch.Tensor):
                return inner.detach().numpy()
            return np.array(inner, dtype=object)
        if tag == "$ref" and isinstance(body, dict) and self.resolve is not None:
            return self.resolve(body)
        raise WireError(f"a value of unknown kind {str(tag)[:40]!r}")
