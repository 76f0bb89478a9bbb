"""H2.1 — the averaged-context character LM: c_t = mean(e_1..e_t), z_t = W c_t.

Oracles: a step-by-step loop written here, and causality checked by changing the future."""

import pytest
import torch
from compare import assert_close, assert_equal
from hypothesis import given
from hypothesis import strategies as st
from strategies import tensors, token_batches

from grader.testprocess.deliverables import deliverable

lm = deliverable("a1_lm_basics.context_lm")
TEXT = "to be, or not to be: that is the question."


@pytest.mark.points(1)
@pytest.mark.number("6.1")
def test_char_tokenizer(check):
    """the tokenizer's vocabulary is the sorted characters; decode(encode(s)) == s"""
    tok = lm.CharTokenizer(TEXT)
    with check("vocabulary"):
        assert_equal(tok.vocab_size, len(set(TEXT)), what="vocab_size")
        assert_equal(
            tok.decode(torch.arange(tok.vocab_size)),
            "".join(sorted(set(TEXT))),
            what="decode(0..V-1)",
            hint="sort the set of characters",
        )
    with check("round trip"):
        ids = tok.encode("not to be")
        assert_equal(str(ids.dtype), "torch.int64", what="encode(...).dtype")
        assert_equal(tok.decode(ids), "not to be", what="decode(encode('not to be'))")
    with check("the empty string: (0,) int64"):
        empty = tok.encode("")
        assert_equal(
            [list(empty.shape), str(empty.dtype)],
            [[0], "torch.int64"],
            what="[shape, dtype] of encode('')",
            hint="torch.tensor([]) is float32: pass dtype=torch.long",
        )


@pytest.mark.points(2)
@pytest.mark.number("6.2")
@given(e=tensors(shape=st.tuples(st.integers(1, 3), st.integers(1, 8), st.integers(1, 5))))
def test_averaged_context_equals_a_loop(e):
    """averaged_context equals the running mean computed step by step"""

    def loop():
        return torch.stack([e[:, : t + 1].mean(dim=1) for t in range(e.shape[1])], dim=1)

    assert_close(
        lm.averaged_context(e),
        loop,
        what=f"averaged_context of e {tuple(e.shape)}",
        hint="cumsum over time (dim 1) divided by 1, 2, ..., T — the count up to and "
        "including step t",
    )


@pytest.mark.points(2)
@pytest.mark.number("6.3")
@given(idx=token_batches(), t=st.integers(0, 8), seed=st.integers(0, 3))
def test_causal(idx, t, seed):
    """changing the tokens after step t never changes the logits at steps ≤ t"""
    T = idx.shape[1]
    t = min(t, T - 1)
    torch.manual_seed(seed)
    model = lm.AveragedContextLM(7, 4).double()
    changed = idx.clone()
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % 7
    with torch.no_grad():
        assert_close(
            model(changed)[:, : t + 1],
            model(idx)[:, : t + 1],
            what=f"logits at steps 0..{t} after changing the tokens after step {t}",
            hint="step t may only average embeddings 1..t: no look-ahead",
        )


@pytest.mark.points(2)
@pytest.mark.number("6.4")
@given(idx=token_batches())
def test_logits_are_W_times_context(idx):
    """forward returns W c_t for every step, shaped (B, T, V)"""
    torch.manual_seed(0)
    model = lm.AveragedContextLM(7, 5).double()
    with torch.no_grad():
        got = model(idx)

        def expected():
            e = model.embed(idx)  # (B, T, C)
            W = model.W.weight  # (V, C), read once (a copy when grading)
            steps = [e[:, : t + 1].mean(dim=1) @ W.T for t in range(idx.shape[1])]
            return torch.stack(steps, dim=1)

        assert_close(
            got,
            expected,
            what=f"logits for tokens of shape {tuple(idx.shape)}",
            hint="logits = W(averaged_context(embed(idx)))",
        )
