"""Seq2Seq: an encoder, a one-step decoder with optional cosine-similarity attention, and the loop
that runs them with teacher forcing or greedy decoding (handout H3.4).

    encoder:   e = dropout(Emb_src(x)),  (out, h_T) = RNN(e),  hidden = tanh(L2(relu(L1(h_T))))
    attention: a = softmax_t(cos(h_dec, out_t))            over the source positions t
               context = Σ_t a_t out_t,   rnn input = attn([dropout(Emb_tgt(y)) ; context])
    decoder:   (o, hidden) = RNN(rnn input, hidden),   log p(next word) = log_softmax(linear(o))

The decoder runs one word at a time. ``Seq2Seq`` feeds it either the gold previous word
(teacher forcing, for training) or its own most likely previous word (greedy decoding). With an
LSTM the state is a pair (h, c): only h is projected by the encoder and used as the attention
query; the cell state c passes unchanged (so an LSTM needs encoder and decoder hidden sizes equal).
Everything is batch first; padding is part of the input (the handout packs nothing).

Shapes: B batch, T source length, C embedding size, H hidden size, V vocabulary.
"""

import torch
from torch import Tensor, nn

MODEL_TYPES = ("RNN", "LSTM")


def _recurrent(model_type: str, input_size: int, hidden_size: int) -> nn.Module:
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    layer = nn.RNN if model_type == "RNN" else nn.LSTM
    return layer(input_size, hidden_size, batch_first=True)


class Encoder(nn.Module):
    """Attributes (names are part of the contract): ``embedding`` (V_src, C), ``rnn``
    (``nn.RNN`` or ``nn.LSTM``, C → H_enc, batch first), ``linear1`` (H_enc → H_enc),
    ``linear2`` (H_enc → H_dec), ``dropout``."""

    def __init__(
        self,
        input_size: int,
        emb_size: int,
        encoder_hidden_size: int,
        decoder_hidden_size: int,
        dropout: float = 0.2,
        model_type: str = "RNN",
    ):
        super().__init__()
        if model_type == "LSTM" and encoder_hidden_size != decoder_hidden_size:
            raise ValueError(
                "an LSTM's cell state passes to the decoder unchanged: encoder_hidden_size "
                f"({encoder_hidden_size}) must equal decoder_hidden_size ({decoder_hidden_size})"
            )
        self.input_size = input_size
        self.emb_size = emb_size
        self.encoder_hidden_size = encoder_hidden_size
        self.decoder_hidden_size = decoder_hidden_size
        self.model_type = model_type
        # TODO: nn.Embedding(V_src, C); the recurrent layer with _recurrent(model_type, C, H_enc)
        #       (batch first); linear1 (H_enc → H_enc), an nn.ReLU, linear2 (H_enc → H_dec);
        #       nn.Dropout(dropout).
        raise NotImplementedError("Encoder.__init__: fill in the TODO above")

    def forward(self, input: Tensor):
        """Encode a batch of source sentences.

        Inputs:
            input: (B, T) int64 token ids.
        Returns:
            output: (B, T, H_enc), the recurrent layer's output at every position.
            hidden: (1, B, H_dec) = tanh(linear2(relu(linear1(h_T)))); for an LSTM the pair
                (that, c_T) with c_T (1, B, H_enc) unchanged.
        """
        # TODO: embed, dropout, run self.rnn; project the final hidden state (for an LSTM the h
        #       of the (h, c) pair) through linear1, relu, linear2 and tanh.
        raise NotImplementedError("Encoder.forward: fill in the TODO above")


class Decoder(nn.Module):
    """Attributes (names are part of the contract): ``embedding`` (V_tgt, C), ``rnn``
    (``nn.RNN`` or ``nn.LSTM``, C → H_dec, batch first), ``linear`` (H_dec → V_tgt),
    ``softmax`` (``nn.LogSoftmax(dim=1)``), ``dropout``; with attention also ``attn``
    (C + H_enc → C), which maps [embedding ; context] back to the recurrent layer's input size."""

    def __init__(
        self,
        emb_size: int,
        encoder_hidden_size: int,
        decoder_hidden_size: int,
        output_size: int,
        dropout: float = 0.2,
        model_type: str = "RNN",
        attention: bool = False,
    ):
        super().__init__()
        if attention and encoder_hidden_size != decoder_hidden_size:
            raise ValueError(
                "cosine attention compares the decoder's hidden state with the encoder's outputs: "
                f"encoder_hidden_size ({encoder_hidden_size}) must equal decoder_hidden_size "
                f"({decoder_hidden_size})"
            )
        self.emb_size = emb_size
        self.encoder_hidden_size = encoder_hidden_size
        self.decoder_hidden_size = decoder_hidden_size
        self.output_size = output_size
        self.model_type = model_type
        self.attention = attention
        # TODO: nn.Embedding(V_tgt, C); _recurrent(model_type, C, H_dec); linear (H_dec → V_tgt)
        #       and nn.LogSoftmax(dim=1); nn.Dropout(dropout); if attention, attn (C + H_enc → C).
        raise NotImplementedError("Decoder.__init__: fill in the TODO above")

    def compute_attention(self, hidden: Tensor, encoder_outputs: Tensor) -> Tensor:
        """Attention weights by cosine similarity, normalised over the source positions.

            cos(q, k_t) = q · k_t / max(‖q‖ ‖k_t‖, 1e-8),   weights = softmax_t(cos(q, k_t))

        Inputs:
            hidden: (1, B, H), the decoder's hidden state (the query q).
            encoder_outputs: (B, T, H), the keys k_t.
        Returns:
            (B, 1, T): non-negative, summing to 1 over T.
        """
        # TODO: q = hidden as (B, 1, H); dot products q @ kᵀ (B, 1, T); divide by the product of
        #       the norms (torch.linalg.vector_norm over H, clamped to at least 1e-8); softmax
        #       over the last dimension (the source positions).
        raise NotImplementedError("Decoder.compute_attention: fill in the TODO above")

    def forward(self, input: Tensor, hidden, encoder_outputs: Tensor | None = None):
        """One decoding step.

        Inputs:
            input: (B, 1) int64, the previous target word.
            hidden: (1, B, H_dec), or for an LSTM the pair (h, c) of such tensors.
            encoder_outputs: (B, T, H_enc); required when the decoder was built with attention.
        Returns:
            output: (B, V_tgt) log-probabilities of the next word.
            hidden: the new state, shaped like the ``hidden`` given.
        """
        # TODO: embed and dropout (B, 1, C). With attention: weights from compute_attention with
        #       the hidden state (an LSTM's h), context = weights @ encoder_outputs (B, 1, H_enc),
        #       rnn input = attn(cat([embedded, context], dim=-1)). Run self.rnn from hidden;
        #       linear and log-softmax on its output (B, V_tgt).
        raise NotImplementedError("Decoder.forward: fill in the TODO above")


class Seq2Seq(nn.Module):
    """An encoder and a decoder. The source and target vocabularies give <sos> the same id, and
    every source sentence starts with it: greedy decoding starts from ``source[:, 0]``."""

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, device, attention: bool | None = None
    ):
        super().__init__()
        # ``attention`` is the handout's argument; the decoder knows whether it attends, so None
        # takes the decoder's setting and a contradicting value is refused.
        if attention is not None and attention != decoder.attention:
            raise ValueError(
                f"Seq2Seq(attention={attention}) but the decoder has attention={decoder.attention}"
            )
        self.device = device
        self.attention = decoder.attention
        # TODO: keep the encoder and the decoder as self.encoder and self.decoder.
        raise NotImplementedError("Seq2Seq.__init__: fill in the TODO above")

    def forward(
        self, source: Tensor, out_seq_len: int | None = None, target: Tensor | None = None
    ) -> Tensor:
        """Translate a batch: log-probabilities of target words 1, 2, ... (after <sos>).

        Inputs:
            source: (B, T) int64, each row starting with <sos>.
            out_seq_len: how many words to produce (default: T, or with ``target`` T_tgt - 1).
            target: (B, T_tgt) int64 starting with <sos>: teacher forcing. Step t then feeds the
                gold word ``target[:, t]``. Without it, greedy decoding: step 0 feeds
                ``source[:, 0]`` and step t the most likely word of step t - 1 (argmax).
        Returns:
            (B, out_seq_len, V_tgt): ``outputs[:, t]`` is the log-distribution of target word t + 1.
        """
        # TODO: encoder_outputs, hidden = self.encoder(source). Then for t in range(out_seq_len):
        #       output, hidden = self.decoder(input, hidden, encoder_outputs) with input (B, 1)
        #       as the docstring says; collect the outputs and torch.stack them along dim 1.
        raise NotImplementedError("Seq2Seq.forward: fill in the TODO above")
