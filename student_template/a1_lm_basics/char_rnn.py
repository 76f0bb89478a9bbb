"""A character-level recurrent language model (handout H1.6): model, loss, one epoch of
training, temperature sampling and held-out perplexity.

    e_t = E[x_t],   (h_t, c_t) = LSTM(e_t, (h_{t-1}, c_{t-1})),   z_t = W h_t + b
    p(x_{t+1} | x_≤t) = softmax(z_t)

The logits at step t predict character t + 1, so the loss pairs ``logits[:, :-1]`` with
``idx[:, 1:]``. ``coursekit.a1_lm_basics.charlm`` holds the data, the epoch loop with its progress bar and
the loss plot; it calls the functions below.

Shapes: B batch, T time, C embedding size, H hidden size, V vocabulary (characters).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a1_lm_basics.perplexity import corpus_perplexity


class CharRNN(nn.Module):
    """Embedding (V, C) → ``nn.LSTM`` (batch first, H hidden) → ``nn.Linear`` (H → V).

    Attribute names are part of the contract: ``embed``, ``rnn``, ``head``.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int = 1):
        super().__init__()
        # TODO: self.embed = nn.Embedding(V, C); self.rnn = nn.LSTM(C, H, num_layers,
        #       batch_first=True); self.head = nn.Linear(H, V).
        raise NotImplementedError("CharRNN.__init__: fill in the TODO above")

    def forward(self, idx: Tensor, state: tuple[Tensor, Tensor] | None = None):
        """idx: (B, T) int64; state: the LSTM's (h, c) to continue from, or None to start afresh.

        Returns:
            logits (B, T, V) — ``logits[:, t]`` predicts character t + 1 — and the new state.
        """
        # TODO: embed, run the LSTM from `state`, apply the head to every step's output.
        raise NotImplementedError("CharRNN.forward: fill in the TODO above")


def lm_loss(logits: Tensor, idx: Tensor) -> Tensor:
    """Mean cross-entropy of predicting each next character.

    Inputs:
        logits: (B, T, V) from the model on ``idx``; idx: (B, T).
    Returns:
        Scalar: CE of ``logits[:, :-1]`` against ``idx[:, 1:]``, averaged over the B·(T-1) steps.
    """
    # TODO: shift by one (the last step has nothing to predict), flatten to (B·(T-1), V), and
    #       F.cross_entropy.
    raise NotImplementedError("lm_loss: fill in the TODO above")


def train_epoch(
    model: nn.Module,
    batches: list[Tensor],
    optimizer: torch.optim.Optimizer,
    max_grad_norm: float | None = 1.0,
) -> float:
    """One pass over ``batches`` (each (B, T) int64): a step of ``optimizer`` per batch.

    The model is put in training mode first (the caller's may be in eval mode). Each step applies
    that batch's gradients alone, their norm clipped to ``max_grad_norm`` (unless None) before the
    step — recurrent nets are prone to exploding gradients. Returns the mean of the batches'
    losses (each batch's ``lm_loss``, weighted equally).
    """
    # TODO: model.train(); for each batch: zero the gradients, logits from the model, lm_loss,
    #       backward, torch.nn.utils.clip_grad_norm_, optimizer.step(). Average the losses.
    raise NotImplementedError("train_epoch: fill in the TODO above")


@torch.no_grad()
def sample(
    model: nn.Module,
    prompt: Tensor,
    n: int,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Continue ``prompt`` by ``n`` sampled characters.

    Inputs:
        prompt: (T0,) int64, at least one character.
        temperature: the logits are divided by it before the softmax (< 1 sharper, > 1 flatter).
        generator: the source of randomness: one ``torch.multinomial(probs, 1, generator=...)``
            per character, so a seeded generator gives the same text every time.
    Returns:
        (T0 + n,) int64: the prompt followed by the sampled characters.
    """
    # TODO: model.eval(); run the whole prompt once to get the state and the last logits; then n
    #       times: probs = softmax(logits / temperature), draw with torch.multinomial(...,
    #       generator=generator), feed that one character with the state.
    raise NotImplementedError("sample: fill in the TODO above")


@torch.no_grad()
def heldout_perplexity(model: nn.Module, ids: Tensor, seq_len: int) -> Tensor:
    """Perplexity of a held-out text, token-weighted over all of it.

    Inputs:
        ids: (N,) int64, the text; seq_len: length of the windows it is cut into.
    Returns:
        Scalar tensor. The text is cut into consecutive windows of ``seq_len + 1`` characters that
        overlap by one (the last is shorter), each scored from a fresh state; every character but
        the first is predicted exactly once. Use your ``corpus_perplexity``.
    """
    # TODO: windows ids[s : s + seq_len + 1] for s = 0, seq_len, 2·seq_len, ... (skip one that
    #       would hold a single character); logits of window[:-1]; targets window[1:];
    #       corpus_perplexity over the (logits (1, T, V), targets (1, T)) pairs.
    raise NotImplementedError("heldout_perplexity: fill in the TODO above")
