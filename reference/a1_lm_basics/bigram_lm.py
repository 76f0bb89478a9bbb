"""A word-level neural bigram language model (handout H1.4): the network of ``network.py``
predicting word t+1 from word t, trained with plain SGD and gradients written by hand.

    x = E[w_t]   (B, C)          the embedding of the previous word
    h = σ(x W1 + b1)             ŷ = softmax(h W2 + b2)          J = mean_b CE(ŷ_b, w_{t+1})

Backward reuses ``network_backward`` for (dx, dW1, db1, dW2, db2); the embedding table then gets
dx row by row: ``dE[w_t] += dx_b``. A word that occurs several times in a batch collects the sum
of its rows — a plain indexed assignment would keep only one of them.

Shapes: B batch, C embedding size, H hidden units, V vocabulary.
"""

import torch
from torch import Tensor

from a1_lm_basics.network import network_backward, network_forward

PARAMS = ("E", "W1", "b1", "W2", "b2")


def init_params(
    vocab_size: int, embed_dim: int, hidden: int, *, seed: int = 0, dtype=torch.float32
) -> dict[str, Tensor]:
    """Small random weights (std 0.1 for the matrices), zero biases; the same for the same seed."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return 0.1 * torch.randn(*shape, generator=g, dtype=dtype)

    return {
        "E": randn(vocab_size, embed_dim),
        "W1": randn(embed_dim, hidden),
        "b1": torch.zeros(hidden, dtype=dtype),
        "W2": randn(hidden, vocab_size),
        "b2": torch.zeros(vocab_size, dtype=dtype),
    }


def bigram_forward(params: dict[str, Tensor], prev: Tensor, nxt: Tensor) -> tuple[Tensor, tuple]:
    """The mean loss of predicting ``nxt`` from ``prev``, and what backward needs.

    Inputs:
        params: E (V, C), W1 (C, H), b1 (H,), W2 (H, V), b2 (V,).
        prev, nxt: (B,) int64 word ids: the previous word and the word to predict.
    Returns:
        loss: scalar tensor; cache: anything :func:`bigram_backward` needs.
    """
    # BEGIN SOLUTION
    # TODO: look the previous words up in E (B, C), then your network_forward with targets nxt;
    #       keep prev and the network's cache for backward.
    x = params["E"][prev]  # (B, C)
    loss, net_cache = network_forward(
        x, nxt, params["W1"], params["b1"], params["W2"], params["b2"]
    )
    return loss, (prev, params["E"].shape, net_cache)
    # END SOLUTION


def bigram_backward(cache: tuple) -> dict[str, Tensor]:
    """Gradients of the mean loss for every parameter.

    Returns:
        {"E": (V, C), "W1": (C, H), "b1": (H,), "W2": (H, V), "b2": (V,)}.
    """
    # BEGIN SOLUTION
    # TODO: network_backward gives dx (B, C) and the four weight gradients; scatter dx into a zero
    #       (V, C) table at the rows of prev, *adding* rows of repeated words (Tensor.index_add_).
    prev, e_shape, net_cache = cache
    dx, dW1, db1, dW2, db2 = network_backward(net_cache)
    dE = torch.zeros(e_shape, dtype=dx.dtype).index_add_(0, prev, dx)  # (V, C)
    return {"E": dE, "W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    # END SOLUTION


def sgd_step(params: dict[str, Tensor], grads: dict[str, Tensor], lr: float) -> None:
    """Plain SGD: ``p ← p - lr · ∂J/∂p`` for every parameter of ``params`` (updated in place)."""
    # BEGIN SOLUTION
    # TODO: for every name in PARAMS, subtract lr times its gradient from params[name].
    for name in PARAMS:
        params[name].sub_(lr * grads[name])
    # END SOLUTION
