"""Text completion with a masked language model (handout H2.2).

A masked LM (BERT) predicts the token at every ``[MASK]`` from the context on *both* sides. To
generate text with it, append n masks to a prompt and fill them one at a time, left to right:

    [CLS] the cat sat on [MASK] [MASK] [MASK] [SEP]
    [CLS] the cat sat on  the   [MASK] [MASK] [SEP]      one forward pass per position; each
    [CLS] the cat sat on  the    mat   [MASK] [SEP]      step sees the tokens filled before it
    [CLS] the cat sat on  the    mat     .    [SEP]

Filling every mask from one forward pass would choose each token without knowing its neighbours'
choices (and read the same [MASK]-filled context everywhere); the loop costs n passes instead.

Choosing a token from the logits (V,) at the position being filled:

- ``greedy``: the argmax;
- ``top_k``: sample among the k largest logits, with probabilities softmax(those k logits). The
  randomness is one ``torch.Generator`` seeded with ``seed`` at the start, and exactly one
  ``torch.multinomial(probs, 1, generator=g)`` per position, left to right, where ``probs`` lists
  the k tokens in ``torch.topk``'s order (largest first): the same seed gives the same text.

Tokens in ``banned_ids`` (the special tokens [CLS], [SEP], [PAD], [MASK], [UNK]) are never chosen:
their logits are set to -inf first.

Shapes: T tokens, V vocabulary size, k the number of candidates.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

STRATEGIES = ("greedy", "top_k")


@torch.no_grad()
def choose(
    logits: Tensor,
    *,
    strategy: str = "greedy",
    k: int = 5,
    generator: torch.Generator | None = None,
) -> int:
    """The token id chosen from one position's logits (V,), after banned logits are -inf.

    greedy: the argmax. top_k: ``torch.topk(logits, k)``, softmax of its values, then
    ``torch.multinomial(probs, 1, generator=generator)`` indexes its indices.
    """
    # TODO: greedy: logits.argmax(); top_k: values, indices = torch.topk(logits, k);
    #       probs = softmax(values); pick = torch.multinomial(probs, 1, generator=generator);
    #       return indices[pick] as an int. Any other strategy: ValueError naming it.
    raise NotImplementedError("choose: fill in the TODO above")


@torch.no_grad()
def fill_masks(
    model: nn.Module,
    input_ids: Tensor,
    mask_token_id: int,
    *,
    strategy: str = "greedy",
    k: int = 5,
    seed: int = 0,
    banned_ids: Iterable[int] = (),
) -> Tensor:
    """Fill every ``mask_token_id`` of one sequence, left to right, one forward pass per mask.

    Inputs:
        model: a masked LM called as ``model(input_ids=(1, T), attention_mask=(1, T)).logits``,
            which is (1, T, V). It is put in evaluation mode (no dropout).
        input_ids: (T,) token ids; the masks are the positions to fill.
        strategy, k, seed: see :func:`choose`; a ``torch.Generator().manual_seed(seed)`` made once
            serves every position.
        banned_ids: token ids never chosen (their logits are set to -inf).
    Returns:
        (T,) the ids with every mask replaced; the other positions unchanged (a new tensor).
    """
    # TODO: model.eval(); copy the ids; one generator for the whole sequence; the mask positions
    #       in increasing order ((ids == mask_token_id).nonzero()). For each position p: run the
    #       model on the current ids (with a batch dimension and an all-ones attention mask),
    #       take the logits at p, set banned ones to -inf, choose(...), write the token into ids
    #       so the next step sees it.
    raise NotImplementedError("fill_masks: fill in the TODO above")


def complete(
    model: nn.Module,
    tokenizer,
    prompt: str,
    n_masks: int,
    *,
    strategy: str = "greedy",
    k: int = 5,
    seed: int = 0,
) -> str:
    """The prompt followed by ``n_masks`` generated tokens, as text.

    The ids are ``[CLS] prompt [MASK] * n_masks [SEP]`` (the masks *before* the final [SEP], as
    in a sentence BERT was trained on), filled by :func:`fill_masks` with the tokenizer's special
    ids banned, then decoded with ``skip_special_tokens=True``.
    """
    # TODO: tokenizer(prompt, return_tensors="pt")["input_ids"][0] is [CLS] prompt [SEP]; put
    #       n_masks tokenizer.mask_token_id before the last id (torch.cat), fill_masks(...,
    #       banned_ids=tokenizer.all_special_ids), tokenizer.decode(..., skip_special_tokens=True).
    raise NotImplementedError("complete: fill in the TODO above")
