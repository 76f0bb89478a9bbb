"""Records of what the graded tests compared, so that verdicts can be made outside the process
that runs student code.

The tests' comparison helper calls :func:`record` for every comparison. In a grading child the
plugin turns recording on and writes each test's records to a JSON file when the test ends:

- ``mode == "expected"`` (a trusted run of the *reference*): each record holds the oracle's
  expected value and the tolerance — the verdict's ground truth;
- ``mode == "actual"`` (the student's run): each record holds only what the student's code
  produced.

Values are stored as plain JSON (tensors as dtype, shape and base64 bytes): the parent never
unpickles anything a student process wrote. Records are keyed by the check they belong to (the
``check`` fixture's label) and their order within it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

MAX_ELEMENTS = 4_000_000  # per recorded tensor; larger values are recorded as too large

mode: str = "off"  # "off" | "actual" | "expected"
_records: list[dict[str, Any]] = []
_label: str | None = None


def start_test() -> None:
    global _label
    _records.clear()
    _label = None


def set_label(label: str | None) -> None:
    global _label
    _label = label


def encode(value: Any) -> dict[str, Any]:
    """A JSON-safe description of ``value``: a tensor's bytes, or a plain JSON value."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the kit always has torch
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        try:
            t = value.detach().cpu().contiguous()
        except Exception as exc:  # e.g. a tensor on the meta device has no values to copy
            return {"kind": "unreadable", "device": str(value.device), "shape": list(value.shape),
                    "dtype": str(value.dtype), "error": f"{type(exc).__name__}: {exc}"[:200]}  # fmt: skip
        if t.numel() > MAX_ELEMENTS:
            return {"kind": "too_large", "shape": list(t.shape), "dtype": str(t.dtype)}
        if t.dtype == torch.bfloat16:
            t = t.float()
        raw = t.numpy().tobytes()
        return {
            "kind": "tensor",
            "dtype": str(t.dtype),
            "shape": list(t.shape),
            "data": base64.b64encode(raw).decode(),
        }
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return {"kind": "opaque", "type": type(value).__name__}
    return {"kind": "json", "value": value}


def decode(data: dict[str, Any]) -> Any:
    """The value of :func:`encode`'s description (tensors come back as torch tensors)."""
    if data.get("kind") == "tensor":
        import numpy as np
        import torch

        dtype = getattr(torch, str(data["dtype"]).removeprefix("torch."))
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        raw = base64.b64decode(data["data"])
        array = np.frombuffer(raw, dtype=np_dtype).reshape(data["shape"]).copy()
        return torch.from_numpy(array)
    if data.get("kind") == "json":
        return data["value"]
    return data  # too_large / opaque: compared as a description


def record(kind: str, what: str, actual: Any, expected: Any = None, **options: Any) -> None:
    """Note one comparison of the running test (nothing happens unless recording is on)."""
    if mode == "off":
        return
    entry = {"kind": kind, "what": what, "label": _label, "actual": encode(actual)}
    if mode == "expected":
        entry["expected"] = encode(expected)
        entry["options"] = options
    _records.append(entry)


def write(folder: Path, nodeid: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file_name(nodeid)).write_text(json.dumps({"nodeid": nodeid, "records": _records}))


def _no_constant(name: str) -> None:
    raise ValueError(name)


def file_name(nodeid: str) -> str:
    return hashlib.sha1(nodeid.encode()).hexdigest() + ".json"


MAX_RECORD_BYTES = 64 * 1024**2  # one test's records, as read by the grading parent


def read(folder: Path, nodeid: str) -> list[dict[str, Any]] | None:
    """The records of one test, or None when its file is missing, too large or unreadable
    (a student's run writes them: their size and shape are checked before anything is built)."""
    path = folder / file_name(nodeid)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            return None
        data = json.loads(raw, parse_constant=_no_constant)
    except (OSError, ValueError, RecursionError, MemoryError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("nodeid") != nodeid
        or not isinstance(data.get("records"), list)
    ):
        return None
    return data["records"]
