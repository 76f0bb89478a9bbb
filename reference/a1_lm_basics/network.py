"""A one-hidden-layer sigmoid network with a softmax output, forward and backward by hand (H1.3).

    h = σ(x W1 + b1),   ŷ = softmax(h W2 + b2),   J = mean_b CE(ŷ_b, y_b)

Backward, with δ2 = (ŷ - onehot(y)) / B:
    ∂J/∂W2 = hᵀ δ2,  ∂J/∂b2 = Σ_b δ2,  δ1 = δ2 W2ᵀ ∘ h(1 - h),
    ∂J/∂W1 = xᵀ δ1,  ∂J/∂b1 = Σ_b δ1,  ∂J/∂x = δ1 W1ᵀ.

Shapes: B batch, D input features, H hidden units, V classes.
"""

import torch
from torch import Tensor

from a1_lm_basics.softmax import cross_entropy, softmax


def sigmoid(z: Tensor) -> Tensor:
    """σ(z) = 1 / (1 + e^-z), elementwise."""
    # BEGIN SOLUTION
    # TODO: 1 / (1 + exp(-z)) (torch.sigmoid is fine too).
    return torch.sigmoid(z)
    # END SOLUTION


def network_forward(
    x: Tensor, y: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor
) -> tuple[Tensor, tuple]:
    """The loss and what backward needs.

    Inputs:
        x: (B, D); y: (B,) int64 classes; W1: (D, H); b1: (H,); W2: (H, V); b2: (V,).
    Returns:
        loss: scalar tensor, the mean cross-entropy over the batch.
        cache: anything backward needs (x, y, W1, W2, h, ŷ ...).
    """
    # BEGIN SOLUTION
    # TODO: h = sigmoid(x @ W1 + b1) (B, H); logits = h @ W2 + b2 (B, V); the loss with your
    #       cross_entropy; keep softmax(logits) for backward.
    h = sigmoid(x @ W1 + b1)  # (B, H)
    logits = h @ W2 + b2  # (B, V)
    loss = cross_entropy(logits, y)
    cache = (x, y, W1, W2, h, softmax(logits, dim=-1))
    return loss, cache
    # END SOLUTION


def network_backward(cache: tuple) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients of the mean loss.

    Returns:
        (dx (B, D), dW1 (D, H), db1 (H,), dW2 (H, V), db2 (V,)).
    """
    # BEGIN SOLUTION
    # TODO: follow the equations in the module docstring; sum bias gradients over the batch.
    x, y, W1, W2, h, y_hat = cache
    B, V = y_hat.shape
    delta2 = (y_hat - torch.nn.functional.one_hot(y, V).to(y_hat.dtype)) / B  # (B, V)
    dW2 = h.T @ delta2  # (H, V)
    db2 = delta2.sum(dim=0)  # (V,)
    delta1 = (delta2 @ W2.T) * h * (1 - h)  # (B, H): σ' = σ(1 - σ)
    dW1 = x.T @ delta1  # (D, H)
    db1 = delta1.sum(dim=0)  # (H,)
    dx = delta1 @ W1.T  # (B, D)
    return dx, dW1, db1, dW2, db2
    # END SOLUTION
