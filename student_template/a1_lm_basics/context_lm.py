"""The averaged-context character language model (handout H2.1).

    c_t = (1/t) Σ_{s ≤ t} e_s,    z_t = W c_t,    p(x_{t+1} | x_≤t) = softmax(z_t)

Step t sees tokens 1..t and nothing after (causal), and all steps come at once from a cumulative
sum — no Python loop over time.

Shapes: B batch, T time, C embedding size, V vocabulary (characters).
"""

import torch
from torch import Tensor, nn


class CharTokenizer:
    """Characters <-> ids; the vocabulary is the sorted set of characters of ``text``."""

    def __init__(self, text: str):
        # TODO: self.chars = sorted set of the text's characters; self.stoi / self.itos maps.
        raise NotImplementedError("CharTokenizer.__init__: fill in the TODO above")

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> Tensor:
        """(len(s),) int64 ids."""
        # TODO: look each character up in self.stoi.
        raise NotImplementedError("CharTokenizer.encode: fill in the TODO above")

    def decode(self, ids: Tensor) -> str:
        """The string of a 1-D tensor of ids."""
        # TODO: join self.itos of each id (ids.tolist()).
        raise NotImplementedError("CharTokenizer.decode: fill in the TODO above")


def averaged_context(e: Tensor) -> Tensor:
    """Running means over time.

    Inputs:
        e: (B, T, C) embeddings.
    Returns:
        (B, T, C) with ``[:, t] = mean(e[:, :t+1])`` — computed with one cumulative sum.
    """
    # TODO: torch.cumsum over the time dimension, divided by the counts 1, 2, ..., T
    #       (shaped (1, T, 1) so that it broadcasts).
    raise NotImplementedError("averaged_context: fill in the TODO above")


class AveragedContextLM(nn.Module):
    """Embeddings, averaged context, then a linear map to next-character logits."""

    def __init__(self, vocab_size: int, embed_dim: int):
        super().__init__()
        # TODO: self.embed = nn.Embedding(V, C); self.W = nn.Linear(C, V, bias=False).
        raise NotImplementedError("AveragedContextLM.__init__: fill in the TODO above")

    def forward(self, idx: Tensor) -> Tensor:
        """idx: (B, T) int64 -> logits (B, T, V); logits[:, t] predict character t + 1."""
        # TODO: embed, averaged_context, then W.
        raise NotImplementedError("AveragedContextLM.forward: fill in the TODO above")
