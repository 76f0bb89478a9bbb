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
    # BEGIN SOLUTION
    # TODO: subtract the maximum along dim (softmax does not change, exp no longer overflows),
    #       then exponentiate and divide by the sum along dim (keepdim=True keeps it broadcastable).
    shifted = x - x.amax(dim=dim, keepdim=True)
    e = torch.exp(shifted)
    return e / e.sum(dim=dim, keepdim=True)
    # END SOLUTION


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of integer targets under softmax(logits).

    Inputs:
        logits: (B, V) unnormalised scores.
        targets: (B,) int64 class indices in [0, V).
    Returns:
        Scalar tensor ``-1/B Σ_b log softmax(logits_b)[targets_b]``, in the dtype of ``logits``.
    """
    # BEGIN SOLUTION
    # TODO: compute log-softmax stably (x - max - log Σ exp(x - max)), pick each row's target
    #       entry (torch.gather or fancy indexing) and average the negatives over the batch.
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))
    picked = log_probs[torch.arange(logits.shape[0]), targets]  # (B,)
    return -picked.mean()
    # END SOLUTION


def cross_entropy_backward(logits: Tensor, targets: Tensor) -> Tensor:
    """Gradient of :func:`cross_entropy` (the batch mean) with respect to the logits.

    Inputs:
        logits: (B, V); targets: (B,) int64.
    Returns:
        dlogits: (B, V) equal to ``(softmax(logits) - onehot(targets)) / B``.
    """
    # BEGIN SOLUTION
    # TODO: softmax(logits) minus the one-hot targets (torch.nn.functional.one_hot), divided by B
    #       because the loss is a mean over the batch.
    B, V = logits.shape
    y = torch.nn.functional.one_hot(targets, num_classes=V).to(logits.dtype)  # (B, V)
    return (softmax(logits, dim=-1) - y) / B
    # END SOLUTION
