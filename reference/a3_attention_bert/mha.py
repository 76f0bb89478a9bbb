"""Multi-head attention from scratch (handout H4.1; Vaswani et al. 2017, section 3.2).

    head_h = softmax(q_h k_hᵀ / √hs + mask) v_h        q = query Wq, k = key Wk, v = value Wv
    out    = concat(head_1, ..., head_nh) Wo

Written with matmuls and a softmax, all heads at once: ``nn.MultiheadAttention``,
``F.scaled_dot_product_attention`` and ``F.multi_head_attention_forward`` are not allowed (the
tests run your forward with them replaced by functions that raise). A Python loop over the heads
gives the same numbers but is slow; a vectorised version runs as fast as PyTorch's own.

The module computes what ``torch.nn.MultiheadAttention`` computes, and :meth:`load_from` copies
the weights of one (its packed ``in_proj_weight`` holds Wq, Wk, Wv stacked in that order). Where
it departs from it: no dropout on the attention weights (PyTorch's default, ``dropout=0``, is what
is reproduced), no ``add_bias_kv`` / ``add_zero_attn`` / ``kdim`` / ``vdim``, and batched inputs
only. Self-attention is ``query = key = value``; different query and key lengths work too.

Masks follow PyTorch: a boolean mask is True where attention is *not* allowed; a float mask is
added to the scaled scores (``-inf`` forbids). A query for which every key is masked has no
defined output: softmax over all ``-inf`` is NaN, which is what PyTorch returns when it computes
the weights (its fused path returns 0 instead); such rows are not graded.

Shapes: B batch, Tq query length, Tk key length, C embedding size, nh heads, hs = C / nh head size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with the interface of ``nn.MultiheadAttention``.

    Inputs:
        embed_dim: C, the size of queries, keys, values and the output.
        num_heads: nh; C must be divisible by it (each head has hs = C / nh channels).
        bias: the four projections have biases.
        batch_first: inputs and outputs are (B, T, C); otherwise (T, B, C), PyTorch's default.
        device, dtype: of the parameters.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        bias: bool = True,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        assert embed_dim % num_heads == 0, f"embed_dim {embed_dim} not divisible by {num_heads}"
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.batch_first = batch_first
        # BEGIN SOLUTION
        # TODO: four projections nn.Linear(C, C, bias=bias, device=device, dtype=dtype):
        #       self.q_proj, self.k_proj, self.v_proj (Wq, Wk, Wv) and self.out_proj (Wo).
        like = {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **like)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **like)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **like)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **like)
        # END SOLUTION

    @torch.no_grad()
    def load_from(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a ``torch.nn.MultiheadAttention`` of the same size; returns self.

        ``mha.in_proj_weight`` is (3C, C): the rows of Wq, then Wk, then Wv (``in_proj_bias``
        (3C,) likewise, or None without bias); ``mha.out_proj`` is an ``nn.Linear(C, C)``.
        """
        # BEGIN SOLUTION
        # TODO: split in_proj_weight (and in_proj_bias, when there is one) into three (C, C)
        #       blocks with .chunk(3) and copy_ them into your q, k, v projections; copy out_proj.
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        self.q_proj.weight.copy_(w_q)
        self.k_proj.weight.copy_(w_k)
        self.v_proj.weight.copy_(w_v)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.in_proj_bias is not None:
            b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
            self.q_proj.bias.copy_(b_q)
            self.k_proj.bias.copy_(b_k)
            self.v_proj.bias.copy_(b_v)
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self
        # END SOLUTION

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from every query to the keys; the arguments of ``nn.MultiheadAttention``.

        Inputs:
            query: (B, Tq, C) if batch_first else (Tq, B, C).
            key, value: (B, Tk, C) if batch_first else (Tk, B, C).
            key_padding_mask: (B, Tk); bool, True for a padding key nobody attends to, or float,
                added to every query's scores for that key.
            attn_mask: (Tq, Tk), the same for every batch element and head, or (B * nh, Tq, Tk),
                one per head (row b * nh + h is head h of batch element b); bool, True where
                attention is not allowed, or float, added to the scaled scores.
            need_weights: also return the attention weights (else None).
            average_attn_weights: average the weights over the heads (else one set per head).
            is_causal: without attn_mask, query i attends to keys 0..i only (the causal mask,
                Tq = Tk); with an attn_mask it is only a hint that the mask is causal, and the
                mask is used as given (as in PyTorch).
        Returns:
            out: shaped like query; weights: (B, Tq, Tk) averaged over the heads,
            (B, nh, Tq, Tk) per head, or None when need_weights is False.
        """
        # BEGIN SOLUTION
        # TODO: 1. batch first: (T, B, C) -> (B, T, C) unless self.batch_first; B, Tq, C = query.size().
        #       2. project, then split the channels into heads: (B, T, C) -> (B, T, nh, hs) ->
        #          transpose to (B, nh, T, hs) for q, k and v.
        #       3. scores q @ kᵀ / √hs: (B, nh, Tq, Tk); apply the causal mask (is_causal without
        #          attn_mask), attn_mask (a 3-D one viewed as (B, nh, Tq, Tk)) and key_padding_mask
        #          (viewed as (B, 1, 1, Tk)) with _apply_mask; softmax over the keys.
        #       4. weights @ v: (B, nh, Tq, hs); put the heads side by side again (B, Tq, C),
        #          out_proj, and back to (Tq, B, C) unless batch_first.
        #       5. return (out, weights averaged over the heads or per head, or None).
        #       Only matmul (@), transpose/view, masked_fill and F.softmax are needed.
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))  # (B, T, C)
        B, Tq, C = query.size()
        Tk = key.size(1)
        nh, hs = self.num_heads, self.head_dim

        q = self.q_proj(query).view(B, Tq, nh, hs).transpose(1, 2)  # (B, nh, Tq, hs)
        k = self.k_proj(key).view(B, Tk, nh, hs).transpose(1, 2)  # (B, nh, Tk, hs)
        v = self.v_proj(value).view(B, Tk, nh, hs).transpose(1, 2)  # (B, nh, Tk, hs)

        att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, Tq, Tk)
        if is_causal and attn_mask is None:
            attn_mask = torch.ones(Tq, Tk, dtype=torch.bool, device=att.device).triu(1)
        if attn_mask is not None:
            if attn_mask.dim() == 3:  # (B * nh, Tq, Tk): row b * nh + h is head h of element b
                attn_mask = attn_mask.view(B, nh, Tq, Tk)
            att = _apply_mask(att, attn_mask)  # a 2-D mask broadcasts over batch and heads
        if key_padding_mask is not None:
            att = _apply_mask(att, key_padding_mask.view(B, 1, 1, Tk))  # every head and query
        att = F.softmax(att, dim=-1)  # over the keys

        y = att @ v  # (B, nh, Tq, hs)
        y = y.transpose(1, 2).contiguous().view(B, Tq, C)  # heads side by side again
        y = self.out_proj(y)  # (B, Tq, C)
        if not self.batch_first:
            y = y.transpose(0, 1)  # (Tq, B, C)
        if not need_weights:
            return y, None
        return y, att.mean(dim=1) if average_attn_weights else att
        # END SOLUTION


def _apply_mask(att: Tensor, mask: Tensor) -> Tensor:
    """Scores (B, nh, Tq, Tk) with a mask broadcastable to them: bool True -> -inf, float added."""
    # BEGIN SOLUTION
    # TODO: a bool mask: att.masked_fill(mask, float("-inf")); a float mask: att + mask.
    if mask.dtype == torch.bool:
        return att.masked_fill(mask, float("-inf"))
    return att + mask
    # END SOLUTION
