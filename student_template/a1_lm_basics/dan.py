"""A Deep Averaging Network for sentiment (handout H1.7; Iyyer et al., 2015).

    a = (1 / n) Σ_{t : x_t ≠ pad} E[x_t]        the mean of the real tokens' embeddings
    h = ReLU(W1 a + b1),   z = W2 h + b2         logits over the classes

Padding never enters the mean: a review padded to any length gets the same prediction.

Shapes: B batch, T time (padded length), C embedding size, H hidden size, K classes.
"""

import torch
from torch import Tensor, nn


def masked_mean(emb: Tensor, mask: Tensor) -> Tensor:
    """Mean over time of the embeddings where ``mask`` is True.

    Inputs:
        emb: (B, T, C); mask: (B, T) bool, True at real tokens (each row has at least one).
    Returns:
        (B, C).
    """
    # TODO: zero the padded positions (multiply by the mask as emb's dtype, unsqueezed to
    #       (B, T, 1)), sum over T, divide by the number of real tokens of each row, (B, 1).
    raise NotImplementedError("masked_mean: fill in the TODO above")


class DAN(nn.Module):
    """Embedding → masked mean → Linear → ReLU → Linear.

    Attribute names are part of the contract: ``embed``, ``hidden``, ``out``.
    """

    def __init__(
        self, vocab_size: int, embed_dim: int, hidden_size: int, num_classes: int, pad_id: int = 0
    ):
        super().__init__()
        self.pad_id = pad_id
        # TODO: self.embed = nn.Embedding(V, C, padding_idx=pad_id); self.hidden = nn.Linear(C, H);
        #       self.out = nn.Linear(H, K).
        raise NotImplementedError("DAN.__init__: fill in the TODO above")

    def forward(self, idx: Tensor) -> Tensor:
        """idx: (B, T) int64, padded with ``pad_id`` -> logits (B, K)."""
        # TODO: the mask is idx != pad_id; masked_mean of the embeddings; hidden, ReLU, out.
        raise NotImplementedError("DAN.forward: fill in the TODO above")
