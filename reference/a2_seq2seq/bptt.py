"""Backpropagation through time by hand for the RNN of handout H3.1.

    a_t = U x_t + W h_{t-1} + b,   h_t = tanh(a_t),   o_t = V h_t + c,   ŷ_t = softmax(o_t)
    L = 1/B Σ_b Σ_t CE(ŷ_t, y_t)          (the handout's Σ_t CE, averaged over a batch)

The handout writes column vectors (U x_t); here a batch of row vectors is stored, so the same
affine map reads ``x_t @ U.T``. Backward runs the steps in reverse; with δo_t = (ŷ_t - onehot(y_t))/B
and δh_t = δo_t V + δa_{t+1} W (the second term comes from the future step):

    δa_t = δh_t ∘ (1 - h_t²)       (tanh' = 1 - tanh², written with the *output* h_t)
    ∂L/∂V = Σ_t δo_tᵀ h_t,  ∂L/∂c = Σ_t Σ_b δo_t,  ∂L/∂U = Σ_t δa_tᵀ x_t,
    ∂L/∂W = Σ_t δa_tᵀ h_{t-1},  ∂L/∂b = Σ_t Σ_b δa_t,  ∂L/∂h_0 = δa_1 W.

U, W, V, b and c are shared by every step, so their gradients *accumulate* over time.
Follows cs231n's ``*_forward -> (out, cache)`` / ``*_backward(dout, cache)`` convention.

Shapes: B batch, T time, D input features, H hidden size, V vocabulary (output classes).
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def rnn_step_forward(x: Tensor, prev_h: Tensor, U: Tensor, W: Tensor, b: Tensor):
    """One step: next_h = tanh(x Uᵀ + prev_h Wᵀ + b).

    Inputs:
        x: (B, D); prev_h: (B, H); U: (H, D); W: (H, H); b: (H,).
    Returns:
        next_h: (B, H).
        cache: what ``rnn_step_backward`` needs (x, prev_h, U, W, next_h ...).
    """
    # BEGIN SOLUTION
    # TODO: the pre-activation a = x @ U.T + prev_h @ W.T + b (B, H), then torch.tanh; keep the
    #       inputs, the weights and next_h in the cache.
    a = x @ U.T + prev_h @ W.T + b  # (B, H)
    next_h = torch.tanh(a)  # (B, H)
    cache = (x, prev_h, U, W, a, next_h)
    return next_h, cache
    # END SOLUTION


def rnn_step_backward(dnext_h: Tensor, cache: tuple):
    """Backward of one step.

    Inputs:
        dnext_h: (B, H), ∂L/∂next_h; cache: from ``rnn_step_forward``.
    Returns:
        (dx (B, D), dprev_h (B, H), dU (H, D), dW (H, H), db (H,)).
    """
    # BEGIN SOLUTION
    # TODO: da = dnext_h * (1 - next_h²) (tanh' in terms of its output); then dx = da U,
    #       dprev_h = da W, dU = daᵀ x, dW = daᵀ prev_h, db = da summed over the batch.
    x, prev_h, U, W, a, next_h = cache
    da = dnext_h * (1 - next_h**2)  # (B, H)
    dx = da @ U  # (B, D)
    dprev_h = da @ W  # (B, H)
    dU = da.T @ x  # (H, D)
    dW = da.T @ prev_h  # (H, H)
    db = da.sum(dim=0)  # (H,)
    return dx, dprev_h, dU, dW, db
    # END SOLUTION


def rnn_forward(
    x: Tensor, y: Tensor, h0: Tensor, U: Tensor, W: Tensor, V: Tensor, b: Tensor, c: Tensor
):
    """The loss of a whole sequence, keeping what backward needs.

    Inputs:
        x: (B, T, D); y: (B, T) int64 targets in [0, V); h0: (B, H);
        U: (H, D); W: (H, H); V: (V, H); b: (H,); c: (V,).
    Returns:
        loss: scalar, Σ_t CE(softmax(o_t), y_t) averaged over the batch.
        cache: what ``rnn_backward`` needs (every step's cache, h_t and ŷ_t ...).
    """
    # BEGIN SOLUTION
    # TODO: for t = 0 .. T-1: h = rnn_step_forward(x[:, t], h, U, W, b); o = h @ V.T + c (B, V);
    #       add the cross-entropy of o against y[:, t] (summed over the batch) to the loss;
    #       keep each step's cache, h and softmax(o). Divide the loss by B at the end.
    B, T, _ = x.shape
    h = h0
    loss = x.new_zeros(())
    steps = []
    for t in range(T):
        h, step_cache = rnn_step_forward(x[:, t], h, U, W, b)  # (B, H)
        o = h @ V.T + c  # (B, V)
        loss = loss + F.cross_entropy(o, y[:, t], reduction="sum")
        steps.append((step_cache, h, torch.softmax(o, dim=-1)))
    cache = (steps, y, V)
    return loss / B, cache
    # END SOLUTION


def rnn_backward(cache: tuple):
    """Gradients of ``rnn_forward``'s loss.

    Returns:
        (dU (H, D), dW (H, H), dV (V, H), db (H,), dc (V,), dh0 (B, H)).
    """
    # BEGIN SOLUTION
    # TODO: walk t = T-1 .. 0 carrying dh_next (zero after the last step): do = (ŷ_t -
    #       onehot(y_t)) / B; dV += doᵀ h_t; dc += do summed over the batch;
    #       dh = do V + dh_next; rnn_step_backward(dh, step cache) gives dh_next and this step's
    #       dU, dW, db — add them up (+=). dh0 is the last dh_next.
    steps, y, V = cache
    B, T = y.shape
    x0, h0, U, W, _, _ = steps[0][0]
    dU, dW, db = torch.zeros_like(U), torch.zeros_like(W), U.new_zeros(U.shape[0])
    dV, dc = torch.zeros_like(V), V.new_zeros(V.shape[0])
    dh_next = torch.zeros_like(h0)  # nothing flows back from after the last step
    for t in reversed(range(T)):
        step_cache, h, y_hat = steps[t]
        do = (y_hat - F.one_hot(y[:, t], V.shape[0]).to(y_hat.dtype)) / B  # (B, V)
        dV += do.T @ h  # (V, H)
        dc += do.sum(dim=0)
        dh = do @ V + dh_next  # (B, H): from this step's output and from step t + 1
        _, dh_next, dU_t, dW_t, db_t = rnn_step_backward(dh, step_cache)
        dU += dU_t
        dW += dW_t
        db += db_t
    return dU, dW, dV, db, dc, dh_next
    # END SOLUTION
