"""Arguments student code may change in place, written back to the test's objects, and only those.

A test hands an argument over as ``mutable(...)`` (``grader.boundary.handles.Mutable``); the
deliverable process sends back what changed in it; every entry is checked here before anything is
applied (:func:`writeback_problem`): a path inside a mutable argument, a value that fits what is
there. Every other argument crossed as a copy.
"""

from __future__ import annotations

from typing import Any

import torch

from grader.boundary.handles import Mutable

MAX_WRITEBACKS = 10_000  # entries in one reply's write-back (the arguments a call may change)
SCALARS = (bool, int, float, str, type(None))


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
