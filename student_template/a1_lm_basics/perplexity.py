"""Perplexity (handout H1.5).

    PP = 2^(-1/M Σ_i log2 p(s_i | s_<i)) = e^(-1/M Σ_i ln p(s_i | s_<i))

M counts every scored token of the whole corpus: perplexity is token-weighted, so a corpus is
not the average of its sentences' perplexities, and padding is never scored.

Shapes: B batch (sequences), T time, V vocabulary.
"""

import math

import torch
from torch import Tensor


def perplexity_from_log_probs(log_probs: Tensor, base: float = math.e) -> Tensor:
    """Perplexity from the log-probabilities the model gave each observed token.

    Inputs:
        log_probs: (M,) log p(s_i | s_<i) in the given ``base`` (e.g. 2 for log2).
        base: the logarithm's base.
    Returns:
        Scalar tensor ``base ** (-mean(log_probs))`` — the same number whatever the base.
    """
    # TODO: the mean negative log-probability, then raise the base to it.
    raise NotImplementedError("perplexity_from_log_probs: fill in the TODO above")


def nll_sum_and_count(
    logits: Tensor, targets: Tensor, ignore_index: int = -100
) -> tuple[Tensor, Tensor]:
    """Summed negative log-likelihood (natural log) of the scored tokens, and how many there are.

    Inputs:
        logits: (B, T, V); targets: (B, T) int64, ``ignore_index`` marks padding.
    Returns:
        (sum of -ln p over tokens that are not padding, number of such tokens), both scalars.
    """
    # TODO: log_softmax over V, gather each target's log-probability, keep positions where
    #       targets != ignore_index (mask them before gathering: ignore_index is not a class).
    raise NotImplementedError("nll_sum_and_count: fill in the TODO above")


def perplexity(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
    """Token-weighted perplexity of one batch; padding (``ignore_index``) is not scored."""
    # TODO: exp(summed NLL / number of scored tokens).
    raise NotImplementedError("perplexity: fill in the TODO above")


def corpus_perplexity(batches: list[tuple[Tensor, Tensor]], ignore_index: int = -100) -> Tensor:
    """Perplexity of a whole corpus given as (logits, targets) batches: token-weighted over all."""
    # TODO: add up the NLL sums and the token counts over all batches first, then exp(sum / count)
    #       (averaging per-batch perplexities weights short batches too much).
    raise NotImplementedError("corpus_perplexity: fill in the TODO above")
