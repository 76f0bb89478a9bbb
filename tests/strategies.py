"""Hypothesis strategies of the graded suites — the only place that draws test inputs.

Shapes stay small (the tests run in seconds) and floats bounded and finite; values that depend on
each other (logits and their targets) are drawn together with ``@st.composite``.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps

sides = st.integers(min_value=1, max_value=6)
shapes = nps.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)
# Wide enough to overflow a naive exp() in float64 (exp(710) = inf) and to stress stability.
logit_floats = st.floats(min_value=-800.0, max_value=800.0, allow_nan=False, width=64)
moderate_floats = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False, width=64)


@st.composite
def tensors(draw, shape=shapes, elements=moderate_floats) -> torch.Tensor:
    """A float64 tensor of a drawn shape."""
    array = draw(nps.arrays(dtype="float64", shape=shape, elements=elements))
    return torch.from_numpy(array)


@st.composite
def tensor_and_dim(draw, elements=logit_floats) -> tuple[torch.Tensor, int]:
    """A tensor and a valid dim of it, negative or positive."""
    x = draw(tensors(elements=elements))
    dim = draw(st.integers(min_value=-x.dim(), max_value=x.dim() - 1))
    return x, dim


@st.composite
def logits_and_targets(draw, elements=logit_floats) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (B, V) in float64 and integer class targets (B,) in [0, V)."""
    batch, classes = draw(sides), draw(st.integers(min_value=2, max_value=8))
    logits = draw(tensors(shape=st.just((batch, classes)), elements=elements))
    targets = draw(nps.arrays(dtype="int64", shape=batch, elements=st.integers(0, classes - 1)))
    return logits, torch.from_numpy(targets)


# --- assignment 1 ---


@st.composite
def network_case(draw) -> dict[str, torch.Tensor]:
    """Inputs and parameters of the one-hidden-layer network (float64, small sizes)."""
    B, D, H, V = (draw(st.integers(1, 5)) for _ in range(4))
    V = max(V, 2)
    values = st.floats(-3.0, 3.0, allow_nan=False, width=64)

    def t(*shape):
        return torch.from_numpy(draw(nps.arrays("float64", shape, elements=values)))

    y = torch.from_numpy(draw(nps.arrays("int64", B, elements=st.integers(0, V - 1))))
    return {"x": t(B, D), "y": y, "W1": t(D, H), "b1": t(H), "W2": t(H, V), "b2": t(V)}


@st.composite
def padded_batch(draw, pad: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (B, T, V) and targets (B, T) with some trailing padding, at least one real token."""
    B, T, V = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(2, 7))
    logits = draw(tensors(shape=st.just((B, T, V))))
    targets = torch.from_numpy(draw(nps.arrays("int64", (B, T), elements=st.integers(0, V - 1))))
    lengths = [draw(st.integers(1 if b == 0 else 0, T)) for b in range(B)]
    for b, n in enumerate(lengths):
        targets[b, n:] = pad
    return logits, targets


@st.composite
def token_batches(draw, vocab: int = 7) -> torch.Tensor:
    """(B, T) int64 token ids in [0, vocab)."""
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 9))
    return torch.from_numpy(draw(nps.arrays("int64", (B, T), elements=st.integers(0, vocab - 1))))
