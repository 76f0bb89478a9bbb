"""H1.3 — the one-hidden-layer sigmoid network, forward and manual backward.

Oracle: the same network in torch with autograd, float64; plus a centred finite difference.
"""

import pytest
import torch
import torch.nn.functional as F
from compare import assert_close, numerical_gradient
from hypothesis import given
from strategies import network_case

from grader.testprocess.deliverables import deliverable

net = deliverable("a1_lm_basics.network")
NAMES = ("x", "W1", "b1", "W2", "b2")


def oracle(case: dict[str, torch.Tensor]):
    """Loss and autograd gradients of (x, W1, b1, W2, b2)."""
    leaves = {k: case[k].clone().requires_grad_(True) for k in NAMES}
    h = torch.sigmoid(leaves["x"] @ leaves["W1"] + leaves["b1"])
    loss = F.cross_entropy(h @ leaves["W2"] + leaves["b2"], case["y"])
    loss.backward()
    return loss.detach(), [leaves[k].grad for k in NAMES]


@pytest.mark.points(2)
@pytest.mark.number("3.1")
@given(case=network_case())
def test_forward_loss(case):
    """network_forward's loss equals the mean cross-entropy of softmax(σ(x W1 + b1) W2 + b2)"""
    loss, _ = net.network_forward(**case)
    B, D = case["x"].shape
    assert_close(
        loss,
        lambda: oracle(case)[0],
        what=f"the loss for B={B}, D={D}",
        hint="h = sigmoid(x @ W1 + b1); logits = h @ W2 + b2; mean cross-entropy",
    )


HINTS = {
    "x": "∂J/∂x = δ1 W1ᵀ with δ1 = δ2 W2ᵀ ∘ h(1 - h): mind the transposes",
    "W1": "∂J/∂W1 = xᵀ δ1; the sigmoid's derivative is h(1 - h), not h",
    "b1": "sum δ1 over the batch",
    "W2": "∂J/∂W2 = hᵀ δ2 with δ2 = (ŷ - onehot(y)) / B",
    "b2": "sum δ2 over the batch (the 1/B is already in δ2)",
}


@pytest.mark.points(5)
@pytest.mark.number("3.2")
@given(case=network_case())
def test_backward_matches_autograd(case):
    """network_backward's five gradients equal autograd's (float64)"""
    _, cache = net.network_forward(**case)
    grads = net.network_backward(cache)
    assert len(grads) == 5, "return (dx, dW1, db1, dW2, db2)"
    expected = oracle(case)[1]
    for name, got, want in zip(NAMES, grads, expected, strict=True):
        assert_close(
            got, want, what=f"d{name} for x of shape {tuple(case['x'].shape)}", hint=HINTS[name]
        )


@pytest.mark.points(1)
@pytest.mark.number("3.3")
def test_backward_matches_finite_differences(check):
    """dW1 and dx agree with centred finite differences of the loss"""
    g = torch.Generator().manual_seed(0)
    case = {
        "x": torch.randn(4, 3, generator=g, dtype=torch.float64),
        "y": torch.tensor([0, 2, 1, 2]),
        "W1": torch.randn(3, 5, generator=g, dtype=torch.float64),
        "b1": torch.randn(5, generator=g, dtype=torch.float64),
        "W2": torch.randn(5, 3, generator=g, dtype=torch.float64),
        "b2": torch.randn(3, generator=g, dtype=torch.float64),
    }
    _, cache = net.network_forward(**case)
    dx, dW1, *_ = net.network_backward(cache)
    for name, got in (("W1", dW1), ("x", dx)):
        with check(f"d{name}"):

            def loss_of(v, name=name):
                h = torch.sigmoid(
                    (v if name == "x" else case["x"]) @ (v if name == "W1" else case["W1"])
                    + case["b1"]
                )
                return F.cross_entropy(h @ case["W2"] + case["b2"], case["y"])

            assert_close(
                got,
                lambda name=name, loss_of=loss_of: numerical_gradient(loss_of, case[name]),
                what=f"d{name} vs a centred finite difference",
                rtol=1e-6,
                atol=1e-9,
                why="finite differences with h=1e-6 carry ~1e-10 error",
                hint=HINTS[name],
            )
