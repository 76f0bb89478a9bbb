"""Stable softmax, cross-entropy and its gradient (handout H1.1).

Shapes: B batch, V classes (vocabulary).
"""

import torch
from torch import Tensor


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Numerically stable softmax along ``dim``.

    Inputs:
        x: any shape, floating point. Rows like [1001, 1002] and [-1001, -1002] must work.
        dim: the dimension that sums to one.
    Returns:
        Tensor of the shape and dtype of ``x``; non-negative, summing to 1 along ``dim``.
    """
    # TODO: subtract the maximum along dim (softmax does not change, exp no longer overflows),
    #       then exponentiate and divide by the sum along dim (keepdim=True keeps it broadcastable).
    raise NotImplementedError("softmax: fill in the TODO above")


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of integer targets under softmax(logits).

    Inputs:
        logits: (B, V) unnormalised scores.
        targets: (B,) int64 class indices in [0, V).
    Returns:
        Scalar tensor ``-1/B Σ_b log softmax(logits_b)[targets_b]``, in the dtype of ``logits``.
    """
    # TODO: compute log-softmax stably (x - max - log Σ exp(x - max)), pick each row's target
    #       entry (torch.gather or fancy indexing) and average the negatives over the batch.
    raise NotImplementedError("cross_entropy: fill in the TODO above")


def cross_entropy_backward(logits: Tensor, targets: Tensor) -> Tensor:
    """Gradient of :func:`cross_entropy` (the batch mean) with respect to the logits.

    Inputs:
        logits: (B, V); targets: (B,) int64.
    Returns:
        dlogits: (B, V) equal to ``(softmax(logits) - onehot(targets)) / B``.
    """
    # TODO: softmax(logits) minus the one-hot targets (torch.nn.functional.one_hot), divided by B
    #       because the loss is a mean over the batch.
    raise NotImplementedError("cross_entropy_backward: fill in the TODO above")
