"""Small models the assignment-3 tests build next to the student's code, by name.

When grading, student code runs in a process of its own (``grader.boundary``), so a model it is
handed — the ``nn.MultiheadAttention`` whose weights ``load_from`` copies, a tiny BERT to wrap in
LoRA, a masked LM to complete text with — must live in that process. A test builds it there with
``grader.testprocess.deliverables.build("coursekit.a3_attention_bert.models.<factory>", ..., state=twin.state_dict())`` and
keeps a twin of its own with the same state as the oracle: the weights are the test's, sent as
data. In a plain pytest run the same line builds it in the test's process. Nothing here is graded.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

PAD, CLS, SEP, MASK = 0, 1, 2, 3  # the special ids of the toy masked LMs' vocabulary
SPECIAL = (PAD, CLS, SEP, MASK)
CONTEXT_VOCAB = 12  # ContextLM's vocabulary: 4 special tokens and 8 words


def _with_state(module: nn.Module, state: dict[str, torch.Tensor] | None) -> nn.Module:
    if state is not None:
        module.load_state_dict(state)  # strict: the twin and this module have the same layout
    return module


def multihead_attention(
    embed_dim: int,
    num_heads: int,
    *,
    bias: bool = True,
    batch_first: bool = False,
    state: dict[str, torch.Tensor] | None = None,
) -> nn.MultiheadAttention:
    """``torch.nn.MultiheadAttention`` in float64 (dropout 0, evaluation mode) with ``state``."""
    mha = nn.MultiheadAttention(
        embed_dim, num_heads, bias=bias, batch_first=batch_first, dtype=torch.float64
    )
    return _with_state(mha, state).eval()


def linear(
    in_features: int,
    out_features: int,
    *,
    dtype: torch.dtype = torch.float64,
    state: dict[str, torch.Tensor] | None = None,
) -> nn.Linear:
    """An ``nn.Linear`` with ``state`` (a base layer for LoRA)."""
    return _with_state(nn.Linear(in_features, out_features, dtype=dtype), state)


def bert(
    head: str, *, state: dict[str, torch.Tensor] | None = None, train: bool = True, **config: Any
) -> nn.Module:
    """A small randomly initialised BERT: ``head`` is ``"sequence_classification"`` or
    ``"masked_lm"``, ``config`` the ``BertConfig`` fields (vocab_size, hidden_size ...). Built in
    training mode, as ``from_config`` leaves it (``train=False``: evaluation mode)."""
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    cls = {"sequence_classification": BertForSequenceClassification, "masked_lm": BertForMaskedLM}
    model = _with_state(cls[head](BertConfig(**config)), state)
    return model.train(train)


def _masked_lm_output(logits: torch.Tensor):
    from transformers.modeling_outputs import MaskedLMOutput

    return MaskedLMOutput(logits=logits)


class ContextLM(nn.Module):
    """A tiny masked LM: logits[t] = L[ids[t-1]] + R[ids[t+1]] + P[t] + a pull to special tokens.

    Each prediction depends on both neighbours and on the position; the pull makes a special
    token the argmax at many positions, so banning them matters. The weights are drawn from
    ``seed``.
    """

    def __init__(self, seed: int, vocab: int = CONTEXT_VOCAB, positions: int = 16):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.left = nn.Parameter(2 * torch.randn(vocab, vocab, generator=g))
        self.right = nn.Parameter(2 * torch.randn(vocab, vocab, generator=g))
        self.pos = nn.Parameter(torch.randn(positions, vocab, generator=g))
        pull = torch.zeros(vocab)
        pull[list(SPECIAL)] = 2.0
        self.register_buffer("pull", pull)

    def forward(self, input_ids, attention_mask=None):
        B, T = input_ids.size()
        padded = F.pad(input_ids, (1, 1), value=PAD)  # (B, T + 2)
        logits = self.left[padded[:, :-2]] + self.right[padded[:, 2:]]  # (B, T, V)
        return _masked_lm_output(logits + self.pos[:T] + self.pull)


class CountingLM(nn.Module):
    """Predicts the number word after the one on the left ("two" -> "three"), else "the", with a
    pull towards the special tokens (which must never be chosen). Its tables are buffers, so a
    state dict carries them."""

    WORDS = "one two three four five six seven eight nine ten".split()

    def __init__(self, tokenizer):
        super().__init__()
        ids = tokenizer.convert_tokens_to_ids(self.WORDS)
        vocab = len(tokenizer)
        successor = torch.full((vocab,), -1, dtype=torch.long)
        successor[ids[:-1]] = torch.tensor(ids[1:])
        base = torch.zeros(vocab)
        base[tokenizer.convert_tokens_to_ids("the")] = 1.0
        base[tokenizer.all_special_ids] = 5.0
        self.register_buffer("successor", successor)
        self.register_buffer("base", base)

    def forward(self, input_ids, attention_mask=None):
        B, T = input_ids.size()
        logits = self.base.repeat(B, T, 1)  # (B, T, V)
        left = F.pad(input_ids, (1, 0), value=0)[:, :-1]  # (B, T): the token on the left
        nxt = self.successor[left]
        b, t = (nxt >= 0).nonzero(as_tuple=True)
        logits[b, t, nxt[b, t]] = 10.0
        return _masked_lm_output(logits)


def context_lm(seed: int, *, state: dict[str, torch.Tensor] | None = None) -> ContextLM:
    return _with_state(ContextLM(seed), state)


def counting_lm(tokenizer, *, state: dict[str, torch.Tensor] | None = None) -> CountingLM:
    return _with_state(CountingLM(tokenizer), state)


def with_item_types(function, *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    """``function(*args, **kwargs)`` and the type names of the items of what it returned.

    Numbers cross the boundary as plain Python numbers (a NumPy ``int64`` arrives as an ``int``), so
    a test that checks the type of returned items asks where the call ran.
    """
    result = function(*args, **kwargs)
    try:
        types = [type(item).__name__ for item in result]
    except TypeError:  # not iterable: the test reports the result itself
        types = []
    return result, types
