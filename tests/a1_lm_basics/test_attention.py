"""H1.8 — the attention-exploration properties, as numerical checks of softmax attention."""

import pytest
import torch
from compare import assert_close
from hypothesis import given
from hypothesis import strategies as st
from strategies import tensors

from grader.testprocess.deliverables import deliverable

att = deliverable("a1_lm_basics.attention")


@pytest.mark.points(2)
@pytest.mark.number("9.1")
@given(
    q=tensors(shape=st.just((2, 3, 4))),
    k=tensors(shape=st.just((2, 5, 4))),
    v=tensors(shape=st.just((2, 5, 3))),
)
def test_matches_softmax_of_dot_products(q, k, v):
    """out = softmax(q kᵀ) v, and each query's weights form a distribution over the keys"""
    out, weights = att.attention(q, k, v)
    w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    assert_close(
        weights,
        w,
        what="attention weights (B, Tq, Tk)",
        hint="softmax over the keys: the last dimension of q @ kᵀ",
    )
    assert_close(
        weights.sum(dim=-1),
        lambda: torch.ones(2, 3, dtype=torch.float64),
        what="each query's weights summed over the keys",
    )
    assert_close(out, lambda: w @ v, what="attention output (B, Tq, Cv)")


def _orthonormal_keys():
    k = torch.eye(4, dtype=torch.float64)[None]  # (1, 4, 4): 4 orthonormal keys
    v = torch.arange(12, dtype=torch.float64).view(1, 4, 3)  # (1, 4, 3) values
    return k, v


@pytest.mark.points(1)
@pytest.mark.number("9.2")
def test_a_dominant_key_copies_its_value(check):
    """a query far more aligned with one key copies that key's value"""
    k, v = _orthonormal_keys()
    for j in range(4):
        with check(f"key {j}"):
            q = 40.0 * k[:, j : j + 1]  # (1, 1, 4)
            out, _ = att.attention(q, k, v)
            assert_close(
                out[0, 0],
                v[0, j],
                what=f"output for a query aligned with key {j}",
                rtol=1e-9,
                atol=1e-9,
                why="e^-40 of the other keys is ~4e-18 of the weight",
            )


@pytest.mark.points(1)
@pytest.mark.number("9.3")
def test_q_beta_ka_plus_kb_averages_two_values():
    """q = β(k_a + k_b) with large β averages v_a and v_b"""
    k, v = _orthonormal_keys()
    q = 40.0 * (k[:, 0:1] + k[:, 2:3])
    out, _ = att.attention(q, k, v)
    assert_close(
        out[0, 0],
        (v[0, 0] + v[0, 2]) / 2,
        what="output for q = β(k_0 + k_2)",
        rtol=1e-9,
        atol=1e-9,
        why="the other keys carry ~e^-40 of the weight",
    )
