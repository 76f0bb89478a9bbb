"""Softmax attention, for the attention-exploration questions (handout H1.8).

    α = softmax(q kᵀ) over the keys,    out = α v

The weights of each query form a categorical distribution over the keys; a query much more
aligned with one key copies that key's value; q = β(k_a + k_b) with large β (and k_a ⊥ k_b of
equal norm) averages v_a and v_b. The handout's dot products are unscaled (no 1/√d here).

Shapes: B batch, Tq queries, Tk keys, C key size, Cv value size.
"""

import torch
from torch import Tensor


def attention(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Inputs: q (B, Tq, C), k (B, Tk, C), v (B, Tk, Cv).

    Returns:
        out: (B, Tq, Cv); weights: (B, Tq, Tk), each row summing to 1.
    """
    # BEGIN SOLUTION
    # TODO: scores = q @ kᵀ (B, Tq, Tk); softmax over the keys (the last dim); out = weights @ v.
    scores = q @ k.transpose(-2, -1)  # (B, Tq, Tk)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
    # END SOLUTION
