"""Autograd across the boundary.

A result the student's code computed with gradients enabled is attached to the test's graph
(:func:`attach`): ``loss.backward()`` in the test runs backward in the deliverable process
(``Boundary.backward``), and the gradients reach the student's parameters there and the test's
inputs here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from grader.boundary import errors
from grader.boundary.wire import Decoder

if TYPE_CHECKING:
    from grader.boundary.client import Boundary


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


def attach(boundary: Boundary, value: Any, graph: Any, dec: Decoder, inputs: list) -> Any:
    """``value`` with the tensors the reply's ``graph`` names joined to the test's graph."""
    if not isinstance(graph, dict) or type(graph.get("id")) is not int:
        raise errors.BoundaryViolation(boundary._died("a malformed graph in a reply"))
    idx = graph.get("outputs")
    if not isinstance(idx, list) or not all(
        type(i) is int and 0 <= i < len(dec.tensors) for i in idx
    ):
        raise errors.BoundaryViolation(
            boundary._died("a graph naming tensors that are not in the reply")
        )
    outputs = [dec.tensors[i] for i in idx]
    outputs = [o for o in outputs if o.is_floating_point() or o.is_complex()]
    if not outputs:
        return value
    link = _Link(boundary, graph["id"], boundary.generation, [o.detach() for o in outputs], inputs)
    anchor = torch.zeros((), requires_grad=True)
    attached = _Bridge.apply(link, anchor, *inputs)
    swap = {id(o): a for o, a in zip(outputs, attached, strict=True)}
    return _substitute(value, swap)
