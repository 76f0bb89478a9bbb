"""Proxies of what lives in the deliverable process.

A student's object that is not data (an ``nn.Module``, a class, a function, a ``Trainer``) stays in
the deliverable process; the tests hold a :class:`Remote` for it: call it, read and set attributes
(tensors come as snapshots carrying ``requires_grad`` and ``grad``), index it, iterate it,
``copy.deepcopy`` it. Each use is one request of ``grader.boundary.protocol``, made by the
``Boundary`` (``grader.boundary.client``) that holds the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.boundary import errors

if TYPE_CHECKING:
    from grader.boundary.client import Boundary


@dataclass
class Ref:
    side: str
    id: int
    kind: str
    type: str
    generation: int
    cls: int | None = None  # an instance's class, by its number over there


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


class Method(Remote):
    """``obj.name`` where ``name`` is a function of ``obj``'s class: calling it is one request,
    ``obj.name(...)``, looked up over there at the call as Python looks it up. Any other use asks
    for the attribute itself first (then it is the proxy of what that is)."""

    __slots__ = ("_obj", "_name", "_real")

    def __init__(self, obj: Remote, name: str) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_real", None)
        object.__setattr__(self, "_boundary", obj._boundary)

    @property
    def _ref(self) -> Ref:  # type: ignore[override]
        if self._real is None:
            real = self._boundary.request("getattr", self._obj, name=self._name, fused=False)
            if not isinstance(real, Remote):
                raise errors.BoundaryViolation(
                    f"{self._obj._ref.type}.{self._name} is a method of its class, but this object "
                    f"holds a value of its own under that name: give the value another name"
                )
            object.__setattr__(self, "_real", real)
        return self._real._ref

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._boundary.call(self._obj, args, kwargs, method=self._name)

    def __repr__(self) -> str:
        return f"<student's method {self._obj._ref.type}.{self._name}>"
