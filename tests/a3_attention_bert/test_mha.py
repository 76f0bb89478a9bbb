"""H4.1 — multi-head attention from scratch, compared with ``torch.nn.MultiheadAttention``.

The oracle is PyTorch's module (float64, dropout 0) with the same weights, on sizes Hypothesis
draws: batch, query and key lengths, head count and head size (C = nh · hs). Every call of your
forward runs with the built-in attention functions replaced by functions that raise (the guard
``no_builtin_attention``, applied where your code runs); test 1.7 grades that rule by itself, by
reading every file of your submission (``assignment.toml``, ``[[rule]]``) as well as by running your forward.

Fully masked query rows are not graded: when every key is masked for a query (all True in a
boolean mask, all -inf in a float one, in some head), softmax over nothing has no value. PyTorch
2.13 itself gives NaN there when it computes the weights and 0 on its fused path (need_weights=
False), so either is right, and so is anything a -1e9 mask gives. Those rows are set to 0 in both
your output and the expected one before comparing; every other row must match.
"""

from __future__ import annotations

import pytest
import torch
from compare import assert_close, assert_equal, assert_unchanged, snapshot
from hypothesis import given
from strategies import AttentionCase, attention_cases

from grader.boundary.guards import HINT_BUILTIN_ATTENTION as HINT_FORBIDDEN
from grader.intake import audit
from grader.testprocess.deliverables import build, deliverable, guarded, mutable

mha = deliverable("a3_attention_bert.mha")
ASSIGNMENT = "a3_attention_bert"
RULE = "mha-from-scratch"  # tests/a3_attention_bert/assignment.toml, [[rule]]

# --------------------------------------------------------------------------- the forbidden functions
# Every call of the student's forward runs with the guard "no_builtin_attention" (in the process
# where that code runs: grader/boundary/guards.py), which makes the built-ins raise
# ForbiddenFunctionError with the handout's rule. Test 1.7 grades the rule by reading the whole
# submission (grader.intake.audit): the guard is a second layer, which code in that process can undo.


def _forward(module, *args, **kwargs):
    """The student's forward, with the built-ins refused; (out, weights)."""
    with guarded("no_builtin_attention"):
        result = module(*args, **kwargs)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"forward must return a tuple (out, weights), got {type(result).__name__}")
    return result


# --------------------------------------------------------------------------- cases and oracle


def _torch_mha(case) -> torch.nn.MultiheadAttention:
    """The oracle: PyTorch's module in float64, with random biases (its own init zeroes them)."""
    torch.manual_seed(case["seed"])
    ref = torch.nn.MultiheadAttention(
        case["C"],
        case["nh"],
        bias=case["bias"],
        batch_first=case["batch_first"],
        dtype=torch.float64,
    )
    if case["bias"]:
        g = torch.Generator().manual_seed(case["seed"])
        with torch.no_grad():
            ref.in_proj_bias.normal_(generator=g)
            ref.out_proj.bias.normal_(generator=g)
    return ref.eval()


def _ours(case, ref):
    """The student's module with ``ref``'s weights, copied by its ``load_from`` from an
    ``nn.MultiheadAttention`` built where the student's code runs, with ``ref``'s state."""
    source = build(
        "coursekit.a3_attention_bert.models.multihead_attention",
        case["C"],
        case["nh"],
        bias=case["bias"],
        batch_first=case["batch_first"],
        state=ref.state_dict(),
    )
    module = mha.MultiHeadAttention(
        case["C"],
        case["nh"],
        bias=case["bias"],
        batch_first=case["batch_first"],
        dtype=torch.float64,
    )
    module.load_from(source)
    return module


def _describe(case, **options) -> str:
    sizes = (
        f"B={case['B']}, Tq={case['Tq']}, Tk={case['Tk']}, C={case['C']}, nh={case['nh']}, "
        f"bias={case['bias']}, batch_first={case['batch_first']}"
    )
    masks = [
        f"{name}={'bool' if m.dtype == torch.bool else 'float'} {tuple(m.shape)}"
        for name in ("key_padding_mask", "attn_mask")
        if (m := options.pop(name, None)) is not None
    ]
    rest = [f"{k}={v}" for k, v in options.items()]
    return ", ".join([sizes, *masks, *rest])


def _blocked(case, key_padding_mask=None, attn_mask=None, is_causal=False) -> torch.Tensor:
    """(B, Tq): True where a query has no key left to attend to in some head (not graded)."""
    B, nh, Tq, Tk = case["B"], case["nh"], case["Tq"], case["Tk"]
    allowed = torch.ones(B, nh, Tq, Tk, dtype=torch.bool)
    if is_causal and attn_mask is None:
        allowed &= torch.ones(Tq, Tk, dtype=torch.bool).tril()
    if attn_mask is not None:
        forbid = attn_mask if attn_mask.dtype == torch.bool else attn_mask == float("-inf")
        allowed &= ~(forbid.view(B, nh, Tq, Tk) if forbid.dim() == 3 else forbid)
    if key_padding_mask is not None:
        kpm = key_padding_mask
        forbid = kpm if kpm.dtype == torch.bool else kpm == float("-inf")
        allowed &= ~forbid.view(B, 1, 1, Tk)
    return (~allowed.any(dim=-1)).any(dim=1)


def _without_blocked(t, blocked, case, kind):
    """``t`` with the blocked query rows set to 0; a tensor of the wrong shape as it is."""
    B, nh, Tq, Tk, C = case["B"], case["nh"], case["Tq"], case["Tk"], case["C"]
    shapes = {
        "out": (B, Tq, C) if case["batch_first"] else (Tq, B, C),
        "weights": (B, Tq, Tk),
        "per-head weights": (B, nh, Tq, Tk),
    }
    if not isinstance(t, torch.Tensor) or tuple(t.shape) != shapes[kind]:
        return t  # the comparison reports it
    rows = {
        "out": blocked[:, :, None] if case["batch_first"] else blocked.T[:, :, None],
        "weights": blocked[:, :, None],
        "per-head weights": blocked[:, None, :, None],
    }[kind]
    return t.detach().masked_fill(rows, 0.0)


def _compare(case, hint, *, need_weights=True, average_attn_weights=True, **options):
    """Run the student's module and PyTorch's on one case; compare outputs and weights."""
    ref = _torch_mha(case)
    ours = _ours(case, ref)
    args = (case["query"], case["key"], case["value"])
    kwargs = {"need_weights": need_weights, "average_attn_weights": average_attn_weights, **options}
    out, weights = _forward(ours, *args, **kwargs)
    torch_options = dict(kwargs)
    if options.get("is_causal") and options.get("attn_mask") is None:  # PyTorch needs the mask
        T = case["Tq"]
        torch_options["attn_mask"] = torch.ones(T, T, dtype=torch.bool).triu(1)

    def expected():
        with torch.no_grad():
            return ref(*args, **torch_options)

    blocked = _blocked(
        case,
        options.get("key_padding_mask"),
        options.get("attn_mask"),
        options.get("is_causal", False),
    )
    described = _describe(case, **options)
    note = " (query rows with every key masked set to 0)" if bool(blocked.any()) else ""
    assert_close(
        _without_blocked(out, blocked, case, "out"),
        lambda: _without_blocked(expected()[0], blocked, case, "out"),
        what=f"output for {described}{note}",
        hint=hint,
    )
    if not need_weights:
        assert_equal(
            None if weights is None else type(weights).__name__,
            None,
            what=f"weights returned with need_weights=False ({described})",
            hint="return (out, None) when need_weights is False",
        )
        return
    kind = "weights" if average_attn_weights else "per-head weights"
    assert_close(
        _without_blocked(weights, blocked, case, kind),
        lambda: _without_blocked(expected()[1], blocked, case, kind),
        what=f"{kind} for {described}{note}",
        hint=hint,
    )


# --------------------------------------------------------------------------- properties
# Each is run inside one `check` of a test below: one part of the partial credit per case kind.


@given(case=attention_cases(self_attention=True, batch_first=True))
def _self_attention_batch_first(case):
    _compare(case, "batch_first=True: inputs and output are (B, T, C)")


@given(case=attention_cases(self_attention=True, batch_first=False))
def _self_attention_time_first(case):
    _compare(
        case,
        "batch_first=False (the default): inputs and output are (T, B, C) — "
        "transpose to (B, T, C) first and back at the end",
    )


@given(case=attention_cases(self_attention=False))
def _cross_attention(case):
    _compare(
        case,
        "queries come from query (Tq of them), keys and values from key and value (Tk): "
        "the scores are (B, nh, Tq, Tk)",
    )


@given(case=attention_cases(bias=False))
def _no_bias(case):
    _compare(case, "with bias=False the projections have no bias (mha.in_proj_bias is None)")


def _far_apart(case) -> AttentionCase:
    """The case with inputs 100 times larger: scores hundreds apart, where exp() overflows."""
    return AttentionCase({**case, **{k: case[k] * 100 for k in ("query", "key", "value")}})


@given(case=attention_cases())
def _scores_far_apart(case):
    _compare(
        _far_apart(case),
        "inputs 100 times larger put the scores hundreds apart: exp(score) "
        "overflows to inf (and inf / inf is nan); F.softmax subtracts each row's maximum "
        "first",
    )


@given(case=attention_cases(padding="bool"))
def _scores_far_apart_padded(case):
    _compare(
        _far_apart(case),
        "with scores hundreds apart, a padding key's score must be -inf, "
        "not a large negative number (the real scores can be further below it), and the "
        "softmax must subtract each row's maximum",
        key_padding_mask=case["key_padding_mask"],
    )


def _parameter_count():
    # A bias on the keys shifts every score of a query's row alike, so softmax hides it: the
    # outputs cannot show a k_proj that keeps a bias with bias=False, its parameters do.
    for bias in (True, False):
        case = {"C": 8, "nh": 2, "bias": bias, "batch_first": True, "seed": 0}
        ref = _torch_mha(case)
        ours = _ours(case, ref)
        assert_equal(
            sum(p.numel() for p in ours.parameters()),
            sum(p.numel() for p in ref.parameters()),
            what=f"number of parameters of MultiHeadAttention(8, 2, bias={bias})",
            hint="each of the four projections is nn.Linear(C, C, bias=bias): with "
            "bias=False none of them has a bias",
        )


@given(case=attention_cases())
def _per_head_weights(case):
    _compare(
        case,
        "average_attn_weights=False returns the weights of every head: (B, nh, Tq, Tk)",
        average_attn_weights=False,
    )


@given(case=attention_cases())
def _weights_not_needed(case):
    _compare(case, "need_weights=False returns (out, None); out is the same", need_weights=False)


HINT_PADDING = (
    "key_padding_mask is (B, Tk) and True marks a padding key that no query may attend to "
    "(the opposite of Hugging Face's attention_mask); view it as (B, 1, 1, Tk) so it applies to "
    "every head and query"
)
HINT_ADDITIVE = (
    "a float mask is added to the scores after the 1/√hs scaling, just before the softmax"
)


@given(case=attention_cases(padding="bool"))
def _bool_padding(case):
    _compare(case, HINT_PADDING, key_padding_mask=case["key_padding_mask"])


@given(case=attention_cases(padding="float"))
def _float_padding(case):
    _compare(case, f"{HINT_PADDING}; {HINT_ADDITIVE}", key_padding_mask=case["key_padding_mask"])


HINT_BOOL_MASK = "in a boolean attn_mask True means *not allowed*: set those scores to -inf"
HINT_PER_HEAD = (
    "a 3-D attn_mask is (B * nh, Tq, Tk) with row b * nh + h for head h of batch element b: "
    "view it as (B, nh, Tq, Tk)"
)


@given(case=attention_cases(attn_mask="bool"))
def _bool_mask_2d(case):
    _compare(case, HINT_BOOL_MASK, attn_mask=case["attn_mask"])


@given(case=attention_cases(attn_mask="float"))
def _float_mask_2d(case):
    _compare(case, HINT_ADDITIVE, attn_mask=case["attn_mask"])


@given(case=attention_cases(attn_mask="bool", per_head=True))
def _bool_mask_3d(case):
    _compare(
        case,
        f"{HINT_PER_HEAD}; {HINT_BOOL_MASK}",
        attn_mask=case["attn_mask"],
        average_attn_weights=False,
    )


@given(case=attention_cases(attn_mask="float", per_head=True))
def _float_mask_3d(case):
    _compare(case, f"{HINT_PER_HEAD}; {HINT_ADDITIVE}", attn_mask=case["attn_mask"])


@given(case=attention_cases(attn_mask="float", padding="bool"))
def _both_masks(case):
    _compare(
        case,
        f"{HINT_ADDITIVE}; attn_mask and key_padding_mask together: apply both",
        attn_mask=case["attn_mask"],
        key_padding_mask=case["key_padding_mask"],
    )


HINT_CAUSAL = (
    "causal: query i may attend to keys 0..i only — forbid the keys above the diagonal "
    "(torch.ones(T, T, dtype=torch.bool).triu(1) is True where attention is not allowed)"
)


@given(case=attention_cases(self_attention=True))
def _causal(case):
    _compare(case, HINT_CAUSAL, is_causal=True)


@given(case=attention_cases(self_attention=True, padding="bool"))
def _causal_and_padding(case):
    _compare(
        case,
        f"{HINT_CAUSAL}; both masks apply",
        is_causal=True,
        key_padding_mask=case["key_padding_mask"],
    )


@given(case=attention_cases(self_attention=True))
def _causal_hint_with_mask(case):
    causal = torch.nn.Transformer.generate_square_subsequent_mask(case["Tq"], dtype=torch.float64)
    _compare(
        case,
        "with an attn_mask, is_causal=True is only a hint: use the mask as given",
        attn_mask=causal,
        is_causal=True,
    )


# --------------------------------------------------------------------------- graded tests


@pytest.mark.points(3)
@pytest.mark.number("1.1")
def test_matches_torch_without_masks(check):
    """the same outputs and head-averaged weights as nn.MultiheadAttention, no masks, any input scale"""
    with check("self-attention, batch_first=True (B, T, C)"):
        _self_attention_batch_first()
    with check("self-attention, batch_first=False (T, B, C)"):
        _self_attention_time_first()
    with check("different query and key lengths (Tq != Tk)"):
        _cross_attention()
    with check("bias=False"):
        _no_bias()
    with check("inputs 100 times larger (scores hundreds apart)"):
        _scores_far_apart()
    with check("as many parameters as nn.MultiheadAttention, with and without bias"):
        _parameter_count()


@pytest.mark.points(2)
@pytest.mark.number("1.2")
def test_need_weights_and_per_head_weights(check):
    """average_attn_weights=False gives each head's weights; need_weights=False gives None"""
    with check("average_attn_weights=False: (B, nh, Tq, Tk)"):
        _per_head_weights()
    with check("need_weights=False: (out, None)"):
        _weights_not_needed()


@pytest.mark.points(2)
@pytest.mark.number("1.3")
def test_key_padding_mask(check):
    """key_padding_mask (B, Tk), boolean (True = padding) and additive, at any input scale"""
    with check("boolean key_padding_mask"):
        _bool_padding()
    with check("float (additive) key_padding_mask"):
        _float_padding()
    with check("boolean key_padding_mask, inputs 100 times larger (scores hundreds apart)"):
        _scores_far_apart_padded()


@pytest.mark.points(3)
@pytest.mark.number("1.4")
def test_attn_mask(check):
    """attn_mask, boolean and additive, shared (Tq, Tk) and per head (B·nh, Tq, Tk)"""
    with check("boolean (Tq, Tk)"):
        _bool_mask_2d()
    with check("additive (Tq, Tk)"):
        _float_mask_2d()
    with check("boolean per head (B·nh, Tq, Tk), per-head weights"):
        _bool_mask_3d()
    with check("additive per head (B·nh, Tq, Tk)"):
        _float_mask_3d()
    with check("additive attn_mask and boolean key_padding_mask together"):
        _both_masks()


@pytest.mark.points(2)
@pytest.mark.number("1.5")
def test_causal(check):
    """causal self-attention: is_causal=True, with padding, and as a hint with a causal attn_mask"""
    with check("is_causal=True without attn_mask"):
        _causal()
    with check("is_causal=True and a boolean key_padding_mask"):
        _causal_and_padding()
    with check("is_causal=True with a causal float attn_mask"):
        _causal_hint_with_mask()


def _gradients(batch_first: bool):
    g = torch.Generator().manual_seed(11)
    B, Tq, Tk, C, nh = 2, 4, 5, 12, 3
    case = {
        "B": B,
        "Tq": Tq,
        "Tk": Tk,
        "C": C,
        "nh": nh,
        "bias": True,
        "batch_first": batch_first,
        "seed": 5,
    }
    ref = _torch_mha(case)
    ours = _ours(case, ref)
    shapes = [(B, Tq, C), (B, Tk, C), (B, Tk, C)]
    inputs = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    if not batch_first:
        inputs = [x.transpose(0, 1).contiguous() for x in inputs]  # (T, B, C)
    padding = torch.tensor([[False] * Tk, [False, False, True, False, True]])  # no row fully masked
    upstream = torch.randn(inputs[0].shape, generator=g, dtype=torch.float64)

    def grads(module, call):
        xs = [x.clone().requires_grad_(True) for x in inputs]
        out, weights = call(module, *xs, key_padding_mask=padding)
        loss = (out * upstream).sum() + (weights * weights).sum()
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, xs)])

    assert_close(
        grads(ours, _forward),
        lambda: grads(ref, lambda m, *a, **k: m(*a, **k)),
        what=f"gradients of (query, key, value), B={B}, Tq={Tq}, Tk={Tk}, C={C}, nh={nh}, "
        f"batch_first={batch_first}, key_padding_mask=bool (2, 5)",
        hint="compute with differentiable tensor operations only: no .data, .detach(), "
        ".item(), numpy or torch.no_grad() in forward",
    )


@pytest.mark.points(1)
@pytest.mark.number("1.6")
def test_gradients(check):
    """gradients reach query, key and value exactly as through nn.MultiheadAttention"""
    for batch_first in (True, False):
        with check(f"batch_first={batch_first}"):
            _gradients(batch_first)


@given(case=attention_cases())
def _no_builtins(option, case):
    ref = _torch_mha(case)
    ours = _ours(case, ref)
    args = (case["query"], case["key"], case["value"])
    need_weights = option == "need_weights=True"
    described = _describe(case, need_weights=need_weights)
    calls: list[str] = []
    out = None
    try:
        out, _ = _forward(ours, *args, need_weights=need_weights)
    except Exception as exc:  # the guard's refusal arrives named as the guard's error
        if type(exc).__name__ != "ForbiddenFunctionError":
            raise
        calls.append(str(exc).split(". ")[0])  # "your forward called ..., which ... forbids"
    assert_equal(
        calls, [], what=f"built-in attention functions called ({described})", hint=HINT_FORBIDDEN
    )

    def expected():
        with torch.no_grad():
            return ref(*args, need_weights=need_weights)[0]

    assert_close(
        out,
        expected,
        what=f"output of the from-scratch forward ({described})",
        hint="the points of this test need a forward that works, too",
    )


@pytest.mark.points(2)
@pytest.mark.number("1.7")
def test_no_builtin_attention(check, graded_tree):
    """written from scratch: no file uses a library's attention or dynamic access, and forward runs with the built-ins refused"""
    # The score relies on reading the submitted source here, on the trusted side: code in the
    # student's process could undo the guard. A finding costs the whole test.
    rule = audit.rules(ASSIGNMENT)[RULE]
    found = audit.violations(graded_tree, ASSIGNMENT, rule)
    if found:
        listed = "\n".join(f"  {f.describe()}" for f in found[:10])
        more = f"\n  ... and {len(found) - 10} more" if len(found) > 10 else ""
        raise AssertionError(
            f"your submission breaks H4.1's from-scratch rule ({len(found)} finding"
            f"{'s' if len(found) != 1 else ''}, read from your source: a line counts whether or "
            f"not it runs, so none of this test's points):\n{listed}{more}\nHint: {rule.why}"
        )
    for option in ("need_weights=True", "need_weights=False"):
        with check(option):
            _no_builtins(option)


@pytest.mark.points(1)
@pytest.mark.number("1.8")
def test_arguments_left_unchanged(check):
    """forward leaves query, key, value and both masks as it found them (no in-place changes)"""
    g = torch.Generator().manual_seed(3)
    B, Tq, Tk, C, nh = 2, 3, 4, 6, 2
    for batch_first in (True, False):
        with check(f"batch_first={batch_first}, float masks with -inf entries"):
            case = {
                "B": B,
                "Tq": Tq,
                "Tk": Tk,
                "C": C,
                "nh": nh,
                "bias": True,
                "batch_first": batch_first,
                "seed": 1,
            }
            ours = _ours(case, _torch_mha(case))
            shapes = [(B, Tq, C), (B, Tk, C), (B, Tk, C)]
            if not batch_first:
                shapes = [(T, B_, C_) for B_, T, C_ in shapes]
            args = {
                name: torch.randn(shape, generator=g, dtype=torch.float64)
                for name, shape in zip(("query", "key", "value"), shapes, strict=True)
            }
            args["key_padding_mask"] = torch.tensor(
                [[0.0, -1.0, float("-inf"), 0.5]] * B, dtype=torch.float64
            )
            args["attn_mask"] = torch.zeros(Tq, Tk, dtype=torch.float64)
            args["attn_mask"][0, 1] = float("-inf")  # no row fully masked
            before = snapshot(args)
            _forward(ours, **{name: mutable(t) for name, t in args.items()})  # changes come back
            for name, t in args.items():
                assert_unchanged(
                    t,
                    before[name],
                    what=f"forward's {name}",
                    hint="compute new tensors (t = t + ..., masked_fill, transpose) instead "
                    "of changing the caller's in place (+=, masked_fill_, clamp_ ...)",
                )
