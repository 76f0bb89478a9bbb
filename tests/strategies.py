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
