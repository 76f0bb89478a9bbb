"""H3.5 — the one-layer Transformer translator, method by method.

Oracles: each method written here with torch primitives (``F.embedding``, ``F.linear``,
``F.layer_norm``, one head at a time) on the weights the test gave the module, and, where the
sizes allow (d_q = d_k = d_v = H / nh), ``torch.nn.TransformerEncoderLayer`` (post-norm, ReLU, no
dropout) holding the same numbers. Inputs are drawn by Hypothesis; padding masks mark a tail of each
sentence and always leave its first position real.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close, assert_equal, assert_unchanged, snapshot
from hypothesis import given
from strategies import translator_cases

from grader.testprocess.deliverables import deliverable, mutable

tr = deliverable("a2_seq2seq.transformer")
EPS = 1e-5  # nn.LayerNorm's default


def _model(weights, case):
    """The translator with the test's weights, and those weights (the oracles' numbers)."""
    d = case["d_k"]
    model = tr.TransformerTranslator(
        case["V_src"],
        case["V_tgt"],
        "cpu",
        hidden_dim=case["H"],
        num_heads=case["nh"],
        dim_feedforward=case["F"],
        dim_k=d,
        dim_v=case["d_v"],
        dim_q=d,
        max_length=case["max_length"],
    )
    return weights.filled(model, case["seed"])


def _x(case) -> torch.Tensor:
    """A (B, T, H) input for the methods after embed."""
    g = torch.Generator().manual_seed(case["seed"])
    return torch.randn(case["B"], case["T"], case["H"], generator=g, dtype=torch.float64)


def _sizes(case, mask: bool = False) -> str:
    text = (
        f"B={case['B']}, T={case['T']}, H={case['H']}, nh={case['nh']}, d_k={case['d_k']}, "
        f"d_v={case['d_v']}"
    )
    if mask:
        text += f", real lengths {(~case['padding_mask']).sum(dim=1).tolist()}"
    return text


# --------------------------------------------------------------------------- the oracle
# ``m`` is the weights the test wrote into the module, read like it (``m.q.weight``).


def _embed(m, inputs):
    T = inputs.shape[1]
    return F.embedding(inputs, m.embeddingL.weight) + m.posembeddingL.weight[:T]


def _attention(m, x, nh, d_k, d_v, mask=None):
    """One head at a time: softmax(q kᵀ / √d_k) v for head j's slices of q, k, v."""
    heads = []
    for j in range(nh):
        qs, vs = slice(j * d_k, (j + 1) * d_k), slice(j * d_v, (j + 1) * d_v)
        q = F.linear(x, m.q.weight[qs], m.q.bias[qs])  # (B, T, d_k)
        k = F.linear(x, m.k.weight[qs], m.k.bias[qs])
        v = F.linear(x, m.v.weight[vs], m.v.bias[vs])  # (B, T, d_v)
        scores = q @ k.transpose(1, 2) / math.sqrt(d_k)  # (B, T queries, T keys)
        if mask is not None:
            scores = scores.masked_fill(mask[:, None, :], float("-inf"))
        heads.append(torch.softmax(scores, dim=-1) @ v)
    projected = F.linear(
        torch.cat(heads, dim=-1),
        m.attention_head_projection.weight,
        m.attention_head_projection.bias,
    )
    return F.layer_norm(x + projected, x.shape[-1:], m.norm_mh.weight, m.norm_mh.bias, EPS)


def _feedforward(m, x):
    hidden = torch.relu(F.linear(x, m.feedforward1.weight, m.feedforward1.bias))
    out = F.linear(hidden, m.feedforward2.weight, m.feedforward2.bias)
    return F.layer_norm(x + out, x.shape[-1:], m.norm_ff.weight, m.norm_ff.bias, EPS)


def _forward(m, case, inputs, mask):
    x = _attention(m, _embed(m, inputs), case["nh"], case["d_k"], case["d_v"], mask)
    return F.linear(_feedforward(m, x), m.final.weight, m.final.bias)


def _no_grad(fn):
    def value():
        with torch.no_grad():
            return fn()

    return value


# --------------------------------------------------------------------------- the tests


@pytest.mark.points(1)
@pytest.mark.number("5.1")
def test_layers(weights):
    """TransformerTranslator holds the embeddings, q/k/v, the head projection, two norms, the feed-forward and final layers"""
    model = tr.TransformerTranslator(
        11,
        13,
        "cpu",
        hidden_dim=8,
        num_heads=2,
        dim_feedforward=6,
        dim_k=3,
        dim_v=5,
        dim_q=3,
        max_length=7,
    )
    linear = {
        "q": (6, 8),
        "k": (6, 8),
        "v": (10, 8),
        "attention_head_projection": (8, 10),
        "feedforward1": (6, 8),
        "feedforward2": (8, 6),
        "final": (13, 8),
    }
    expected = [["embeddingL.weight", [11, 8]], ["posembeddingL.weight", [7, 8]]]
    for name, (n_out, n_in) in linear.items():
        expected += [[f"{name}.weight", [n_out, n_in]], [f"{name}.bias", [n_out]]]
    for norm in ("norm_mh", "norm_ff"):
        expected += [[f"{norm}.weight", [8]], [f"{norm}.bias", [8]]]
    assert_equal(
        weights.layout(model),
        sorted(expected),
        what="TransformerTranslator(11, 13, hidden_dim=8, num_heads=2, "
        "dim_feedforward=6, dim_k=3, dim_v=5, dim_q=3, max_length=7)'s parameters",
        hint="see the README's table: one q, k and v projection for all heads "
        "(H → nh·d), attention_head_projection (nh·d_v → H), norm_mh, feedforward1, "
        "feedforward2, norm_ff, final — every linear layer with a bias",
    )


@pytest.mark.points(2)
@pytest.mark.number("5.2")
@given(case=translator_cases(padding=False))
def test_embed(weights, case):
    """embed adds the embedding of each position 0 .. T-1 to the token embeddings"""
    (model, w), inputs = _model(weights, case), case["inputs"]
    with torch.no_grad():
        got = model.embed(inputs)
    assert_close(
        got,
        _no_grad(lambda: _embed(w, inputs)),
        what=f"embed(inputs) for inputs {tuple(inputs.shape)}, H={case['H']}",
        hint="embeddingL(inputs) (B, T, H) + posembeddingL(torch.arange(T)) (T, H)",
    )


@pytest.mark.points(1)
@pytest.mark.number("5.3")
@given(case=translator_cases(padding=False))
def test_positional_information(weights, case):
    """one word repeated: its embedding at position t carries posembeddingL's row t"""
    model, w = _model(weights, case)
    inputs = torch.full_like(case["inputs"], case["V_src"] - 1)  # (B, T), every word the same
    with torch.no_grad():
        got = model.embed(inputs)
    assert_close(
        got,
        _no_grad(lambda: _embed(w, inputs)),
        what=f"embed of one word repeated {case['T']} times, H={case['H']}",
        hint="the same word at different positions must get different vectors: add "
        "posembeddingL's row t at position t (positions count from 0 in every "
        "sentence)",
    )


ATTENTION_HINT = (
    "head j uses columns j·d .. (j+1)·d of q, k, v (view(B, T, nh, d) then "
    "transpose(1, 2)); softmax(q kᵀ / √d_k) over the keys (last dim) times v; heads "
    "back to (B, T, nh·d_v); norm_mh(inputs + attention_head_projection(heads))"
)


@pytest.mark.points(3)
@pytest.mark.number("5.4")
@given(case=translator_cases(padding=False))
def test_multi_head_attention(weights, case):
    """multi_head_attention: heads softmax(QKᵀ/√d_k)V concatenated, projected, residual, LayerNorm"""
    (model, w), x = _model(weights, case), _x(case)
    # x · 100 puts the scores hundreds apart: exp() of them overflows, softmax must not.
    for scale in (1.0, 100.0):
        with torch.no_grad():
            got = model.multi_head_attention(x * scale)
        assert_close(
            got,
            _no_grad(lambda s=scale: _attention(w, x * s, case["nh"], case["d_k"], case["d_v"])),
            what=f"multi_head_attention(x{f' · {scale:g}' if scale != 1 else ''}) for {_sizes(case)}",
            hint=ATTENTION_HINT
            + (
                ""
                if scale == 1
                else "; with scores hundreds apart, "
                "exp(score) overflows: use torch.softmax (it subtracts the row's maximum)"
            ),
        )


@pytest.mark.points(2)
@pytest.mark.number("5.5")
@given(case=translator_cases(padding=True))
def test_padding_mask(weights, case):
    """with a padding mask, padded positions get no attention weight as keys"""
    (model, w), x, mask = _model(weights, case), _x(case), case["padding_mask"]
    with torch.no_grad():
        got = model.multi_head_attention(x, mask)
    assert_close(
        got,
        _no_grad(lambda: _attention(w, x, case["nh"], case["d_k"], case["d_v"], mask)),
        what=f"multi_head_attention(x, padding_mask) for {_sizes(case, mask=True)}",
        hint="the mask (B, T) marks padded *keys*: scores.masked_fill(mask[:, None, None, "
        ":], -inf) before the softmax, so every query ignores them",
    )


@pytest.mark.points(1)
@pytest.mark.number("5.6")
@given(case=translator_cases(padding=True))
def test_padded_words_do_not_matter(weights, case):
    """changing the words under the padding mask leaves the scores at real positions unchanged"""
    (model, w), inputs, mask = _model(weights, case), case["inputs"], case["padding_mask"]
    changed = torch.where(mask, (inputs + 1) % case["V_src"], inputs)
    with torch.no_grad():
        got = model(changed, mask)[~mask]  # (real positions, V_tgt)
    assert_close(
        got,
        _no_grad(lambda: _forward(w, case, inputs, mask)[~mask]),
        what=f"forward's scores at real positions after changing padded words, "
        f"{_sizes(case, mask=True)}",
        hint="pass padding_mask from forward to multi_head_attention, and mask keys "
        "(the last dim of the scores), not queries",
    )


@pytest.mark.points(2)
@pytest.mark.number("5.7")
@given(case=translator_cases(padding=False))
def test_feedforward_layer(weights, case):
    """feedforward_layer: norm_ff(x + feedforward2(relu(feedforward1(x))))"""
    (model, w), x = _model(weights, case), _x(case)
    with torch.no_grad():
        got = model.feedforward_layer(x)
    assert_close(
        got,
        _no_grad(lambda: _feedforward(w, x)),
        what=f"feedforward_layer(x) for x {tuple(x.shape)}, F={case['F']}",
        hint="add the input to the two-layer ReLU network's output, then norm_ff "
        "(residual first, LayerNorm of the sum)",
    )


@pytest.mark.points(1)
@pytest.mark.number("5.8")
@given(case=translator_cases(padding=False))
def test_final_layer(weights, case):
    """final_layer gives scores (B, T, V_tgt), no softmax"""
    (model, w), x = _model(weights, case), _x(case)
    with torch.no_grad():
        got = model.final_layer(x)
    assert_close(
        got,
        _no_grad(lambda: F.linear(x, w.final.weight, w.final.bias)),
        what=f"final_layer(x) for x {tuple(x.shape)}, V_tgt={case['V_tgt']}",
        hint="the final linear layer alone: cross-entropy takes logits",
    )


@pytest.mark.points(2)
@pytest.mark.number("5.9")
@given(case=translator_cases())
def test_forward(weights, case):
    """forward = final_layer(feedforward_layer(multi_head_attention(embed(inputs), padding_mask)))"""
    (model, w), inputs, mask = _model(weights, case), case["inputs"], case["padding_mask"]
    with torch.no_grad():
        got = model(inputs, mask)
    assert_close(
        got,
        _no_grad(lambda: _forward(w, case, inputs, mask)),
        what=f"forward(inputs, padding_mask) for {_sizes(case, mask=True)}",
        hint="embed → multi_head_attention(·, padding_mask) → feedforward_layer → final_layer",
    )


def _torch_layer(m, case):
    """torch.nn.TransformerEncoderLayer holding the module's numbers ``m``."""
    layer = torch.nn.TransformerEncoderLayer(
        case["H"], case["nh"], case["F"], dropout=0.0, batch_first=True, dtype=torch.float64
    )
    attn = layer.self_attn
    with torch.no_grad():
        attn.in_proj_weight.copy_(torch.cat([m.q.weight, m.k.weight, m.v.weight]))
        attn.in_proj_bias.copy_(torch.cat([m.q.bias, m.k.bias, m.v.bias]))
        pairs = (
            (attn.out_proj, m.attention_head_projection),
            (layer.linear1, m.feedforward1),
            (layer.linear2, m.feedforward2),
            (layer.norm1, m.norm_mh),
            (layer.norm2, m.norm_ff),
        )
        for theirs, ours in pairs:
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    return layer.train()  # training mode with dropout 0: the plain path, not the fused one


@pytest.mark.points(2)
@pytest.mark.number("5.10")
@given(case=translator_cases(torch_layout=True))
def test_matches_torch_encoder_layer(weights, case):
    """with d_k = d_v = H / nh, forward equals torch.nn.TransformerEncoderLayer between embed and final"""
    (model, w), inputs, mask = _model(weights, case), case["inputs"], case["padding_mask"]
    with torch.no_grad():
        got = model(inputs, mask)

    def expected():
        with torch.no_grad():
            hidden = _torch_layer(w, case)(_embed(w, inputs), src_key_padding_mask=mask)
            return F.linear(hidden, w.final.weight, w.final.bias)

    assert_close(
        got,
        expected,
        what=f"forward vs torch.nn.TransformerEncoderLayer, {_sizes(case, mask=True)}",
        hint="post-norm as in 'Attention is all you need': LayerNorm(x + sublayer(x)) "
        "after attention and after the feed-forward layer",
    )


def _fixed_case() -> dict:
    """B = 2 sentences of T = 5 positions, the second with 2 padded; H = 6, 2 heads of d = 3."""
    g = torch.Generator().manual_seed(9)
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    return {
        "B": 2,
        "T": 5,
        "nh": 2,
        "d_k": 3,
        "d_v": 3,
        "H": 6,
        "F": 7,
        "V_src": 8,
        "V_tgt": 9,
        "max_length": 6,
        "inputs": torch.randint(0, 8, (2, 5), generator=g),
        "padding_mask": mask,
        "seed": 9,
    }


@pytest.mark.points(1)
@pytest.mark.number("5.11")
def test_default_padding_mask(weights):
    """forward(inputs) without a padding_mask attends to every position"""
    case = _fixed_case()
    (model, w), inputs = _model(weights, case), case["inputs"]
    with torch.no_grad():
        got = model(inputs)
    assert_close(
        got,
        _no_grad(lambda: _forward(w, case, inputs, None)),
        what=f"forward(inputs) without a padding_mask, {_sizes(case)}",
        hint="padding_mask=None means no padding: every query attends to every key "
        "(pass None on to multi_head_attention; do not index or convert it)",
    )


IN_PLACE_HINT = (
    "compute on new tensors: x = norm(inputs + sublayer(inputs)); an in-place "
    "inputs += ... (or add_, masked_fill_ on the mask) changes the caller's tensor"
)


@pytest.mark.points(1)
@pytest.mark.number("5.12")
def test_arguments_left_unchanged(check, weights):
    """embed, multi_head_attention, feedforward_layer, final_layer and forward leave their inputs and the mask as they found them"""
    case = _fixed_case()
    (model, _), inputs, mask, x = (
        _model(weights, case),
        case["inputs"],
        case["padding_mask"],
        _x(case),
    )
    calls = {
        "embed(inputs)": (model.embed, (inputs,)),
        "multi_head_attention(inputs, padding_mask)": (model.multi_head_attention, (x, mask)),
        "feedforward_layer(inputs)": (model.feedforward_layer, (x,)),
        "final_layer(inputs)": (model.final_layer, (x,)),
        "forward(inputs, padding_mask)": (model, (inputs, mask)),
    }
    for label, (method, args) in calls.items():
        with check(label):
            before = snapshot(args)
            with torch.no_grad():
                method(*(mutable(a) for a in args))
            assert_unchanged(args, before, what=f"the arguments of {label}", hint=IN_PLACE_HINT)
