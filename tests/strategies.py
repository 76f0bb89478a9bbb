"""Hypothesis strategies of the graded suites — the only place that draws test inputs.

Shapes stay small (the tests run in seconds) and floats bounded and finite; values that depend on
each other (logits and their targets) are drawn together with ``@st.composite``.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps

sides = st.integers(min_value=1, max_value=6)
shapes = nps.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)
# Wide enough to overflow a naive exp() in float64 (exp(710) = inf) and to stress stability.
logit_floats = st.floats(min_value=-800.0, max_value=800.0, allow_nan=False, width=64)
moderate_floats = st.floats(min_value=-20.0, max_value=20.0, allow_nan=False, width=64)


@st.composite
def tensors(draw, shape=shapes, elements=moderate_floats) -> torch.Tensor:
    """A float64 tensor of a drawn shape."""
    array = draw(nps.arrays(dtype="float64", shape=shape, elements=elements))
    return torch.from_numpy(array)


@st.composite
def tensor_and_dim(draw, elements=logit_floats) -> tuple[torch.Tensor, int]:
    """A tensor and a valid dim of it, negative or positive."""
    x = draw(tensors(elements=elements))
    dim = draw(st.integers(min_value=-x.dim(), max_value=x.dim() - 1))
    return x, dim


@st.composite
def logits_and_targets(draw, elements=logit_floats) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (B, V) in float64 and integer class targets (B,) in [0, V)."""
    batch, classes = draw(sides), draw(st.integers(min_value=2, max_value=8))
    logits = draw(tensors(shape=st.just((batch, classes)), elements=elements))
    targets = draw(nps.arrays(dtype="int64", shape=batch, elements=st.integers(0, classes - 1)))
    return logits, torch.from_numpy(targets)


# --- assignment 1 ---


@st.composite
def network_case(draw) -> dict[str, torch.Tensor]:
    """Inputs and parameters of the one-hidden-layer network (float64, small sizes)."""
    B, D, H, V = (draw(st.integers(1, 5)) for _ in range(4))
    V = max(V, 2)
    values = st.floats(-3.0, 3.0, allow_nan=False, width=64)

    def t(*shape):
        return torch.from_numpy(draw(nps.arrays("float64", shape, elements=values)))

    y = torch.from_numpy(draw(nps.arrays("int64", B, elements=st.integers(0, V - 1))))
    return {"x": t(B, D), "y": y, "W1": t(D, H), "b1": t(H), "W2": t(H, V), "b2": t(V)}


@st.composite
def padded_batch(draw, pad: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (B, T, V) and targets (B, T) with some trailing padding, at least one real token."""
    B, T, V = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(2, 7))
    logits = draw(tensors(shape=st.just((B, T, V))))
    targets = torch.from_numpy(draw(nps.arrays("int64", (B, T), elements=st.integers(0, V - 1))))
    lengths = [draw(st.integers(1 if b == 0 else 0, T)) for b in range(B)]
    for b, n in enumerate(lengths):
        targets[b, n:] = pad
    return logits, targets


@st.composite
def token_batches(draw, vocab: int = 7) -> torch.Tensor:
    """(B, T) int64 token ids in [0, vocab)."""
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 9))
    return torch.from_numpy(draw(nps.arrays("int64", (B, T), elements=st.integers(0, vocab - 1))))


@st.composite
def bigram_case(draw) -> dict:
    """Parameters of the bigram LM (float64) and a batch of (prev, nxt) word ids.

    The vocabulary is small and the batch long enough that previous words repeat often: a
    repeated word's embedding gradient is the *sum* of its rows.
    """
    V, C, H = draw(st.integers(2, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    B = draw(st.integers(1, 8))
    values = st.floats(-2.0, 2.0, allow_nan=False, width=64)

    def t(*shape):
        return torch.from_numpy(draw(nps.arrays("float64", shape, elements=values)))

    def ids():
        return torch.from_numpy(draw(nps.arrays("int64", B, elements=st.integers(0, V - 1))))

    params = {"E": t(V, C), "W1": t(C, H), "b1": t(H), "W2": t(H, V), "b2": t(V)}
    return {"params": params, "prev": ids(), "nxt": ids()}


@st.composite
def padded_tokens(draw, vocab: int = 9, pad: int = 0) -> torch.Tensor:
    """(B, T) int64 ids in [1, vocab) with trailing ``pad`` — every row keeps at least one token."""
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    ids = torch.from_numpy(draw(nps.arrays("int64", (B, T), elements=st.integers(1, vocab - 1))))
    for b in range(B):
        ids[b, draw(st.integers(1, T)) :] = pad
    return ids


@st.composite
def masked_embeddings(draw) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (B, T, C) in float64 and a (B, T) bool mask with at least one True per row
    (anywhere, not only a prefix)."""
    B, T, C = draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(1, 5))
    emb = draw(tensors(shape=st.just((B, T, C))))
    mask = torch.from_numpy(draw(nps.arrays("bool", (B, T))))
    for b in range(B):
        mask[b, draw(st.integers(0, T - 1))] = True
    return emb, mask


# --- assignment 3: attention ---

attention_values = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, width=64)
# An additive mask: finite offsets (so where the mask is added, before or after the 1/√hs
# scaling, matters) and -inf (forbidden), which can leave a query with no key at all.
additive_mask_values = st.one_of(
    st.just(float("-inf")), st.floats(min_value=-4.0, max_value=4.0, width=64)
)


class AttentionCase(dict):
    """A dict whose repr (in Hypothesis' "Failing test case") shows sizes, options and small masks;
    the float inputs are left out (uniform in [-3, 3]), they would fill the message."""

    def __repr__(self) -> str:
        def shown(value):
            if isinstance(value, torch.Tensor):
                small = value.numel() <= 24
                return value.tolist() if small else f"<{value.dtype} {tuple(value.shape)}>"
            return repr(value)

        hidden = ("query", "key", "value")
        return f"AttentionCase({', '.join(f'{k}={shown(v)}' for k, v in self.items() if k not in hidden)})"

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis' pretty-printer
        p.text(repr(self))


@st.composite
def attention_cases(
    draw,
    *,
    batch_first: bool | None = None,
    bias: bool | None = None,
    self_attention: bool | None = None,
    padding: str | None = None,
    attn_mask: str | None = None,
    per_head: bool = False,
) -> AttentionCase:
    """Sizes, options and float64 inputs of one multi-head attention call.

    Options left at None are drawn. ``padding`` / ``attn_mask``: None, "bool" or "float" — the kind
    of key_padding_mask (B, Tk) / attn_mask, (Tq, Tk) or with ``per_head`` (B * nh, Tq, Tk).
    Self-attention uses the same tensor for query, key and value (so Tq = Tk). Inputs are laid out
    (B, T, C) when batch_first, else (T, B, C). ``seed`` seeds the module's weights.
    """
    B, nh, hs = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    C = nh * hs
    batch_first = draw(st.booleans()) if batch_first is None else batch_first
    bias = draw(st.booleans()) if bias is None else bias
    self_attention = draw(st.booleans()) if self_attention is None else self_attention
    Tq = draw(st.integers(1, 5))
    Tk = Tq if self_attention else draw(st.integers(1, 5))

    def t(shape, elements=attention_values):
        return torch.from_numpy(draw(nps.arrays("float64", shape, elements=elements)))

    def mask(kind, shape):
        if kind == "bool":
            return torch.from_numpy(draw(nps.arrays("bool", shape, elements=st.booleans())))
        return t(shape, additive_mask_values)

    query = t((B, Tq, C))
    key, value = (query, query) if self_attention else (t((B, Tk, C)), t((B, Tk, C)))
    if not batch_first:
        query, key, value = (x.transpose(0, 1) for x in (query, key, value))  # (T, B, C)
    mask_shape = (B * nh, Tq, Tk) if per_head else (Tq, Tk)
    return AttentionCase(
        {
            "B": B,
            "Tq": Tq,
            "Tk": Tk,
            "C": C,
            "nh": nh,
            "bias": bias,
            "batch_first": batch_first,
            "seed": draw(st.integers(0, 2**16)),
            "query": query,
            "key": key,
            "value": value,
            "key_padding_mask": None if padding is None else mask(padding, (B, Tk)),
            "attn_mask": None if attn_mask is None else mask(attn_mask, mask_shape),
        }
    )


@st.composite
def masked_lm_prompts(draw, vocab: int, *, anywhere: bool = False, max_words: int = 5) -> list[int]:
    """Token ids [CLS] words... [SEP] with 1-4 [MASK]s appended to the words, or (``anywhere``)
    shuffled among them. Ids 0-3 are [PAD], [CLS], [SEP], [MASK]; words are 4..vocab-1."""
    words = draw(st.lists(st.integers(4, vocab - 1), min_size=0, max_size=max_words))
    ids = [*words, *[3] * draw(st.integers(1, 4))]
    if anywhere:
        ids = draw(st.permutations(ids))
    return [1, *ids, 2]


# --- assignment 2 ---

rnn_values = st.floats(min_value=-1.5, max_value=1.5, allow_nan=False, width=64)
# Bounded away from 0 in magnitude, so no vector is (nearly) zero: cosine similarity is
# undefined for a zero vector, and ill-conditioned near one.
nonzero_values = st.builds(
    lambda m, s: m * s, st.floats(0.2, 3.0, width=64), st.sampled_from([-1.0, 1.0])
)


def _float64(draw, shape, elements=rnn_values) -> torch.Tensor:
    return torch.from_numpy(draw(nps.arrays("float64", shape, elements=elements)))


def _ids(draw, shape, vocab: int) -> torch.Tensor:
    return torch.from_numpy(draw(nps.arrays("int64", shape, elements=st.integers(0, vocab - 1))))


@st.composite
def rnn_step_cases(draw) -> dict[str, torch.Tensor]:
    """One step of the H3.1 RNN in float64: x (B, D), prev_h (B, H), U (H, D), W (H, H), b (H,),
    and an upstream gradient dnext_h (B, H)."""
    B, D, H = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return {
        "x": _float64(draw, (B, D)),
        "prev_h": _float64(draw, (B, H)),
        "U": _float64(draw, (H, D)),
        "W": _float64(draw, (H, H)),
        "b": _float64(draw, (H,)),
        "dnext_h": _float64(draw, (B, H)),
    }


@st.composite
def bptt_cases(draw) -> dict[str, torch.Tensor]:
    """A batch of sequences for the H3.1 RNN in float64: x (B, T, D), y (B, T) targets in [0, V),
    h0 (B, H), U (H, D), W (H, H), V (V, H), b (H,), c (V,). T = 1 has nothing to carry back."""
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    D, H, V = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(2, 5))
    return {
        "x": _float64(draw, (B, T, D)),
        "y": _ids(draw, (B, T), V),
        "h0": _float64(draw, (B, H)),
        "U": _float64(draw, (H, D)),
        "W": _float64(draw, (H, H)),
        "V": _float64(draw, (V, H)),
        "b": _float64(draw, (H,)),
        "c": _float64(draw, (V,)),
    }


@st.composite
def recurrent_cases(draw, *, init_states: bool | None = None) -> dict:
    """Sizes, a float64 input sequence x (B, T, C) and a seed for the weights of a recurrent
    unit; ``h0`` / ``c0`` (B, H) when ``init_states`` (drawn when None), else None."""
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    C, H, V = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(2, 5))
    init_states = draw(st.booleans()) if init_states is None else init_states
    return {
        "B": B,
        "T": T,
        "C": C,
        "H": H,
        "V": V,
        "x": _float64(draw, (B, T, C)),
        "h0": _float64(draw, (B, H)) if init_states else None,
        "c0": _float64(draw, (B, H)) if init_states else None,
        "seed": draw(st.integers(0, 2**16)),
    }


@st.composite
def cosine_attention_cases(draw) -> dict:
    """A decoder hidden state (1, B, H) and encoder outputs (B, T, H), with positive scale
    factors for the query (B,) and for each key (B, T). No vector is nearly zero, but the query or
    one key may be exactly zero (a state can be: the docstring's max(‖q‖ ‖k_t‖, 1e-8) makes its
    cosine 0)."""
    B, T, H = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    scales = st.floats(0.05, 20.0, width=64)
    hidden = _float64(draw, (1, B, H), nonzero_values)
    encoder_outputs = _float64(draw, (B, T, H), nonzero_values)
    zero = draw(st.sampled_from(("none", "query", "key")))
    b = draw(st.integers(0, B - 1))
    if zero == "query":
        hidden[0, b] = 0.0
    elif zero == "key":
        encoder_outputs[b, draw(st.integers(0, T - 1))] = 0.0
    return {
        "hidden": hidden,
        "encoder_outputs": encoder_outputs,
        "query_scale": _float64(draw, (B,), scales),
        "key_scale": _float64(draw, (B, T), scales),
    }


@st.composite
def seq2seq_cases(draw, *, model_type: str | None = None, attention: bool | None = None) -> dict:
    """Sizes and options of an Encoder / Decoder / Seq2Seq, int64 source (B, T) and target
    (B, T_tgt ≥ 2) ids, the <sos> id the two vocabularies share (any id, not always 0), and a seed
    for the weights. With an LSTM or with attention the encoder
    and decoder hidden sizes are equal (the cell state passes unchanged; cosine compares them)."""
    model_type = draw(st.sampled_from(["RNN", "LSTM"])) if model_type is None else model_type
    attention = draw(st.booleans()) if attention is None else attention
    B, T, T_tgt = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(2, 5))
    V_src, V_tgt, C = draw(st.integers(2, 7)), draw(st.integers(2, 7)), draw(st.integers(1, 4))
    H_enc = draw(st.integers(1, 4))
    tied = model_type == "LSTM" or attention
    H_dec = H_enc if tied else draw(st.integers(1, 4))
    return {
        "model_type": model_type,
        "attention": attention,
        "B": B,
        "T": T,
        "T_tgt": T_tgt,
        "V_src": V_src,
        "V_tgt": V_tgt,
        "C": C,
        "H_enc": H_enc,
        "H_dec": H_dec,
        "source": _ids(draw, (B, T), V_src),
        "target": _ids(draw, (B, T_tgt), V_tgt),
        "sos": draw(st.integers(0, min(V_src, V_tgt) - 1)),
        "seed": draw(st.integers(0, 2**16)),
    }


@st.composite
def translator_cases(draw, *, padding: bool | None = None, torch_layout: bool = False) -> dict:
    """Sizes of a TransformerTranslator, int64 inputs (B, T) and a seed for its weights.

    ``padding``: a (B, T) bool mask, True on a tail of each sentence that always leaves the first
    position real (drawn when None; all False when False). ``torch_layout``: d_q = d_k = d_v =
    H / nh, the layout ``torch.nn.TransformerEncoderLayer`` can hold."""
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    nh = draw(st.integers(1, 3))
    if torch_layout:
        d_k = d_v = draw(st.integers(1, 3))
        H = nh * d_k
    else:
        d_k, d_v, H = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(2, 8))
    padding = draw(st.booleans()) if padding is None else padding
    lengths = [draw(st.integers(1, T)) if padding else T for _ in range(B)]
    mask = torch.arange(T).expand(B, T) >= torch.tensor(lengths).unsqueeze(1)  # (B, T)
    V_src, V_tgt = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    return {
        "B": B,
        "T": T,
        "nh": nh,
        "d_k": d_k,
        "d_v": d_v,
        "H": H,
        "F": draw(st.integers(1, 8)),
        "V_src": V_src,
        "V_tgt": V_tgt,
        "max_length": T + draw(st.integers(0, 3)),
        "inputs": _ids(draw, (B, T), V_src),
        "padding_mask": mask,
        "seed": draw(st.integers(0, 2**16)),
    }


# --------------------------------------------------------------------------- contract (twin) cases
# Sizes of a module deliverable and an input for it, drawn together; small, so that a case costs
# milliseconds, and never the defaults alone (a padding id other than 0, several layers ...).


@st.composite
def dan_contract_cases(draw) -> dict:
    V = draw(st.integers(3, 12))
    pad_id = draw(st.sampled_from([0, V - 1, draw(st.integers(0, V - 1))]))
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    real = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))  # at least one real token
    rows = []
    for n in real:
        words = [draw(st.integers(0, V - 1).filter(lambda w: w != pad_id)) for _ in range(n)]
        rows.append(words + [pad_id] * (T - n))
    return {
        "V": V,
        "C": draw(st.integers(1, 5)),
        "H": draw(st.integers(1, 5)),
        "K": draw(st.integers(2, 4)),
        "pad_id": pad_id,
        "idx": torch.tensor(rows),
        "seed": draw(st.integers(0, 2**16)),
        "train": draw(st.booleans()),
    }


@st.composite
def char_lm_contract_cases(draw, *, recurrent: bool = True) -> dict:
    V = draw(st.integers(2, 9))
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    case = {
        "V": V,
        "C": draw(st.integers(1, 5)),
        "H": draw(st.integers(1, 5)),
        "idx": _ids(draw, (B, T), V),
        "seed": draw(st.integers(0, 2**16)),
        "train": draw(st.booleans()),
    }
    if recurrent:
        case["layers"] = draw(st.integers(1, 2))
        if draw(st.booleans()):  # continue from a given state (h, c), each (layers, B, H)
            shape = (case["layers"], B, case["H"])
            case["state"] = (_float64(draw, shape), _float64(draw, shape))
    return case


@st.composite
def translator_contract_cases(draw) -> dict:
    """translator_cases with a dropout-free mode drawn: train() or eval()."""
    case = draw(translator_cases())
    return {**case, "train": draw(st.booleans())}


@st.composite
def lora_contract_cases(draw) -> dict:
    """Sizes of a LoRALinear around an nn.Linear, a float64 input (B, T, C_in), and a mode."""
    C_in, C_out = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    return {
        "C_in": C_in,
        "C_out": C_out,
        "r": draw(st.integers(1, 4)),
        "alpha": draw(st.sampled_from([1.0, 2.0, 16.0, 0.5])),
        "bias": draw(st.booleans()),
        "x": _float64(draw, (B, T, C_in)),
        "seed": draw(st.integers(0, 2**16)),
        "train": draw(st.booleans()),
    }
