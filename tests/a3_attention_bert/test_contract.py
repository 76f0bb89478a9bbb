"""The whole contract of assignment 3's modules, against the reference twin (``tests/twin.py``).

Multi-head attention (drawn sizes, layouts, biases, padding, per-head weights, the causal mask)
and LoRALinear (drawn ranks and scales, train and eval mode) run beside the instructor's
implementation holding the student's own weights — every weight drawn at random first, so LoRA's B
is not zero and A's gradient shows: the same outputs, the same gradient for every parameter
(frozen ones included: none) and floating-point input, and nothing changed by the call.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import attention_cases, lora_contract_cases
from twin import REFERENCE_ONLY, compare_call, reference, twin_of

from grader.testprocess.deliverables import build, deliverable, guarded

pytestmark = REFERENCE_ONLY

mha = deliverable("a3_attention_bert.mha")
lora = deliverable("a3_attention_bert.lora")

CASES = settings(max_examples=10)


@pytest.mark.points(2)
@pytest.mark.number("1.9")
@CASES
@given(
    case=attention_cases(padding=None),
    padded=st.booleans(),
    need_weights=st.booleans(),
    average=st.booleans(),
    causal=st.booleans(),
)
def test_mha_against_the_reference(case, padded, need_weights, average, causal):
    """MultiHeadAttention: outputs, weights and every parameter's gradient, as the reference's"""
    C, nh, bias, batch_first = case["C"], case["nh"], case["bias"], case["batch_first"]
    causal = causal and case["Tq"] == case["Tk"]
    torch.manual_seed(case["seed"])
    mine = mha.MultiHeadAttention(C, nh, bias=bias, batch_first=batch_first, dtype=torch.float64)
    mine = mine.eval()
    what = f"MultiHeadAttention(C={C}, nh={nh}, bias={bias}, batch_first={batch_first})"
    ref = reference("a3_attention_bert.mha")

    def build_twin():
        return ref.MultiHeadAttention(
            C, nh, bias=bias, batch_first=batch_first, dtype=torch.float64
        )

    twin = twin_of(mine, build_twin, what, seed=case["seed"]).eval()
    padding = None
    if padded:  # a bool mask with the first key always allowed (no row is fully masked)
        g = torch.Generator().manual_seed(case["seed"])
        padding = torch.rand(case["B"], case["Tk"], generator=g) < 0.4
        padding[:, 0] = False
    kwargs = {
        "key_padding_mask": padding,
        "need_weights": need_weights,
        "average_attn_weights": average,
        "is_causal": causal,
    }
    options = ", ".join(
        f"{k}={'a mask' if isinstance(v, torch.Tensor) else v}" for k, v in kwargs.items()
    )
    with guarded("no_builtin_attention"):
        compare_call(
            mine,
            twin,
            (case["query"], case["key"], case["value"]),
            kwargs,
            what=f"{what}({options})",
            seed=case["seed"],
            hint="project, split the heads, scores q kᵀ/√hs, mask, softmax over the keys, "
            "weights @ v, merge the heads, out_proj",
        )


@pytest.mark.points(1)
@pytest.mark.number("2.10")
@CASES
@given(case=lora_contract_cases())
def test_lora_against_the_reference(case):
    """LoRALinear: outputs, every parameter's gradient (the base's: none) and the state after, as the reference's"""
    C_in, C_out, r, alpha = case["C_in"], case["C_out"], case["r"], case["alpha"]
    train = case["train"]
    p = 0.0 if train else 0.3  # dropout's masks depend on the order of random draws: eval only
    torch.manual_seed(case["seed"])
    base = build("torch.nn.Linear", C_in, C_out, bias=case["bias"], dtype=torch.float64)
    mine = lora.LoRALinear(base, r, lora_alpha=alpha, lora_dropout=p)
    mine = mine.train() if train else mine.eval()
    what = (
        f"LoRALinear(nn.Linear({C_in}, {C_out}, bias={case['bias']}), r={r}, lora_alpha={alpha}, "
        f"lora_dropout={p}) in {'train' if train else 'eval'} mode"
    )
    ref = reference("a3_attention_bert.lora")

    def build_twin():
        return ref.LoRALinear(
            torch.nn.Linear(C_in, C_out, bias=case["bias"], dtype=torch.float64),
            r,
            lora_alpha=alpha,
            lora_dropout=p,
        )

    twin = twin_of(mine, build_twin, what, seed=case["seed"])
    twin = twin.train() if train else twin.eval()
    compare_call(
        mine,
        twin,
        (case["x"],),
        what=f"{what} on x {tuple(case['x'].shape)}",
        seed=case["seed"],
        hint="base(x) + lora_B(lora_A(dropout(x))) * lora_alpha / r, with the base frozen",
    )
