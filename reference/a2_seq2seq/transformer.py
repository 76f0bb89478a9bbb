"""A one-layer Transformer encoder that translates (handout H3.5).

    x      = E[inputs] + P[0..T-1]                                       embed
    head_j = softmax(Q_j K_jᵀ / √d_k) V_j,   Q_j = x W_q,j  (K, V alike)  multi_head_attention
    x      = LayerNorm(x + concat(head_1..head_nh) W_o)                    (residual, then norm)
    x      = LayerNorm(x + W_2 relu(W_1 x))                                feedforward_layer
    scores = x W_final                                                     final_layer

The positional encoding is learned (an ``nn.Embedding`` over positions 0 .. max_length - 1), as in
the handout. Like the handout's model, it reads the source and gives, at every position t, scores
over the target vocabulary for target word t (the sentences are padded to a common length): an
encoder alone, without a decoder. A padding mask (True at padded source positions) removes those
keys from every softmax; padded positions still produce scores (for target words beyond the
source's length). Residual + LayerNorm in the order of "Attention is all you need" (post-norm).

Heads are slices of one projection: head j of ``q`` is ``q(x)[..., j·d_q:(j+1)·d_q]`` (the same for
k and v), i.e. ``q(x).view(B, T, nh, d_q)``.

Shapes: B batch, T positions, H hidden size (``hidden_dim``), nh heads, d_q = d_k and d_v per head,
F feed-forward size, V_src / V_tgt vocabularies.
"""

import math

import torch
from torch import Tensor, nn


class TransformerTranslator(nn.Module):
    """Attributes (names are part of the contract): ``embeddingL`` (V_src, H), ``posembeddingL``
    (max_length, H); ``q``, ``k`` (H → nh·d_k), ``v`` (H → nh·d_v); ``attention_head_projection``
    (nh·d_v → H), ``norm_mh``; ``feedforward1`` (H → F), ``feedforward2`` (F → H), ``norm_ff``;
    ``final`` (H → V_tgt). Every linear layer has a bias."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        device,
        hidden_dim: int = 128,
        num_heads: int = 2,
        dim_feedforward: int = 2048,
        dim_k: int = 96,
        dim_v: int = 96,
        dim_q: int = 96,
        max_length: int = 43,
    ):
        super().__init__()
        if dim_q != dim_k:
            raise ValueError(
                f"queries and keys are compared by dot product: dim_q ({dim_q}) "
                f"must equal dim_k ({dim_k})"
            )
        self.input_size = input_size
        self.output_size = output_size
        self.device = device
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.dim_feedforward = dim_feedforward
        self.dim_k = dim_k
        self.dim_v = dim_v
        self.dim_q = dim_q
        self.max_length = max_length
        # BEGIN SOLUTION
        # TODO: embeddingL = nn.Embedding(V_src, H); posembeddingL = nn.Embedding(max_length, H);
        #       q, k, v = nn.Linear(H, nh·d_q / nh·d_k / nh·d_v); attention_head_projection =
        #       nn.Linear(nh·d_v, H); norm_mh = nn.LayerNorm(H); feedforward1 = nn.Linear(H, F),
        #       feedforward2 = nn.Linear(F, H); norm_ff = nn.LayerNorm(H); final = nn.Linear(H,
        #       V_tgt).
        self.embeddingL = nn.Embedding(input_size, hidden_dim)
        self.posembeddingL = nn.Embedding(max_length, hidden_dim)
        self.q = nn.Linear(hidden_dim, num_heads * dim_q)
        self.k = nn.Linear(hidden_dim, num_heads * dim_k)
        self.v = nn.Linear(hidden_dim, num_heads * dim_v)
        self.attention_head_projection = nn.Linear(num_heads * dim_v, hidden_dim)
        self.norm_mh = nn.LayerNorm(hidden_dim)
        self.feedforward1 = nn.Linear(hidden_dim, dim_feedforward)
        self.feedforward2 = nn.Linear(dim_feedforward, hidden_dim)
        self.norm_ff = nn.LayerNorm(hidden_dim)
        self.final = nn.Linear(hidden_dim, output_size)
        # END SOLUTION

    def forward(self, inputs: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """embed, multi_head_attention, feedforward_layer, final_layer.

        Inputs:
            inputs: (B, T) int64 source token ids, T ≤ max_length.
            padding_mask: (B, T) bool, True at padding; None attends to every position.
        Returns:
            (B, T, V_tgt) scores (logits, no softmax).
        """
        # BEGIN SOLUTION
        # TODO: chain the four methods below, passing padding_mask to the attention.
        x = self.embed(inputs)  # (B, T, H)
        x = self.multi_head_attention(x, padding_mask)  # (B, T, H)
        x = self.feedforward_layer(x)  # (B, T, H)
        return self.final_layer(x)  # (B, T, V_tgt)
        # END SOLUTION

    def embed(self, inputs: Tensor) -> Tensor:
        """Token embedding plus the embedding of each position.

        Inputs:
            inputs: (B, T) int64, T ≤ max_length.
        Returns:
            (B, T, H): ``embeddingL(inputs)[b, t] + posembeddingL.weight[t]``.
        """
        B, T = inputs.shape
        if T > self.max_length:
            raise ValueError(
                f"a sequence of {T} positions is longer than max_length={self.max_length}"
            )
        # BEGIN SOLUTION
        # TODO: positions torch.arange(T) on the inputs' device; add posembeddingL(positions)
        #       (T, H) to embeddingL(inputs) (B, T, H) — broadcasting over the batch.
        positions = torch.arange(T, device=inputs.device)  # (T,)
        return self.embeddingL(inputs) + self.posembeddingL(positions)  # (B, T, H)
        # END SOLUTION

    def multi_head_attention(self, inputs: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Multi-head self-attention, then the residual connection and layer norm.

        Inputs:
            inputs: (B, T, H).
            padding_mask: (B, T) bool, True at padded positions: those keys get weight 0.
        Returns:
            (B, T, H): ``norm_mh(inputs + attention_head_projection(concat of the heads))``.
        """
        # BEGIN SOLUTION
        # TODO: q, k, v projections viewed as (B, T, nh, d) and transposed to (B, nh, T, d);
        #       scores q @ kᵀ / √d_k (B, nh, T, T); set the padded keys' scores to -inf
        #       (masked_fill with the mask as (B, 1, 1, T)); softmax over the keys (last dim);
        #       weights @ v; heads back to (B, T, nh·d_v); project; add inputs; norm_mh.
        B, T, _ = inputs.shape
        nh, dk, dv = self.num_heads, self.dim_k, self.dim_v
        q = self.q(inputs).view(B, T, nh, dk).transpose(1, 2)  # (B, nh, T, d_k)
        k = self.k(inputs).view(B, T, nh, dk).transpose(1, 2)  # (B, nh, T, d_k)
        v = self.v(inputs).view(B, T, nh, dv).transpose(1, 2)  # (B, nh, T, d_v)
        att = q @ k.transpose(-2, -1) / math.sqrt(dk)  # (B, nh, T, T): queries x keys
        if padding_mask is not None:
            att = att.masked_fill(padding_mask[:, None, None, :], float("-inf"))
        att = torch.softmax(att, dim=-1)  # each query's weights over the keys sum to 1
        heads = (att @ v).transpose(1, 2).reshape(B, T, nh * dv)  # (B, T, nh·d_v)
        return self.norm_mh(inputs + self.attention_head_projection(heads))
        # END SOLUTION

    def feedforward_layer(self, inputs: Tensor) -> Tensor:
        """The position-wise feed-forward layer, then the residual connection and layer norm.

        Inputs:
            inputs: (B, T, H).
        Returns:
            (B, T, H): ``norm_ff(inputs + feedforward2(relu(feedforward1(inputs))))``.
        """
        # BEGIN SOLUTION
        # TODO: feedforward1, torch.relu, feedforward2; add inputs; norm_ff.
        hidden = torch.relu(self.feedforward1(inputs))  # (B, T, F)
        return self.norm_ff(inputs + self.feedforward2(hidden))
        # END SOLUTION

    def final_layer(self, inputs: Tensor) -> Tensor:
        """Scores over the target vocabulary.

        Inputs:
            inputs: (B, T, H).
        Returns:
            (B, T, V_tgt) logits: ``final(inputs)``.
        """
        # BEGIN SOLUTION
        # TODO: the final linear layer.
        return self.final(inputs)
        # END SOLUTION
