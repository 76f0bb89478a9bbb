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
    # BEGIN SOLUTION
    # TODO: the mean negative log-probability, then raise the base to it.
    return torch.as_tensor(base, dtype=log_probs.dtype) ** (-log_probs.mean())
    # END SOLUTION


def nll_sum_and_count(
    logits: Tensor, targets: Tensor, ignore_index: int = -100
) -> tuple[Tensor, Tensor]:
    """Summed negative log-likelihood (natural log) of the scored tokens, and how many there are.

    Inputs:
        logits: (B, T, V); targets: (B, T) int64, ``ignore_index`` marks padding.
    Returns:
        (sum of -ln p over tokens that are not padding, number of such tokens), both scalars.
    """
    # BEGIN SOLUTION
    # TODO: log_softmax over V, gather each target's log-probability, keep positions where
    #       targets != ignore_index (mask them before gathering: ignore_index is not a class).
    log_probs = torch.log_softmax(logits, dim=-1)  # (B, T, V)
    keep = targets != ignore_index  # (B, T)
    safe = torch.where(keep, targets, torch.zeros_like(targets))
    picked = log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return -(picked * keep).sum(), keep.sum()
    # END SOLUTION


def perplexity(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
    """Token-weighted perplexity of one batch; padding (``ignore_index``) is not scored."""
    # BEGIN SOLUTION
    # TODO: exp(summed NLL / number of scored tokens).
    total, count = nll_sum_and_count(logits, targets, ignore_index)
    return torch.exp(total / count)
    # END SOLUTION


def corpus_perplexity(batches: list[tuple[Tensor, Tensor]], ignore_index: int = -100) -> Tensor:
    """Perplexity of a whole corpus given as (logits, targets) batches: token-weighted over all."""
    # BEGIN SOLUTION
    # TODO: add up the NLL sums and the token counts over all batches first, then exp(sum / count)
    #       (averaging per-batch perplexities weights short batches too much).
    total = sum(nll_sum_and_count(lg, tg, ignore_index)[0] for lg, tg in batches)
    count = sum(nll_sum_and_count(lg, tg, ignore_index)[1] for lg, tg in batches)
    return torch.exp(total / count)
    # END SOLUTION
