"""H2.3 — LoRA from scratch. Oracles: the formula y = W x + b + B A x · alpha / r written here in
float64, and peft's LoRA with the same A and B on a tiny BERT."""

import pytest
import torch
from compare import assert_close, assert_equal

from grader.deliverables import deliverable

lora = deliverable("a3_attention_bert.lora")
pytestmark = pytest.mark.in_process("not yet behind the boundary")


def _base(c_in: int = 6, c_out: int = 5, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(c_in, c_out, dtype=torch.float64)


def _x(seed: int = 1) -> torch.Tensor:
    return torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _randomise(layer) -> None:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        layer.lora_A.weight.copy_(
            torch.randn(layer.lora_A.weight.shape, generator=g, dtype=torch.float64)
        )
        layer.lora_B.weight.copy_(
            torch.randn(layer.lora_B.weight.shape, generator=g, dtype=torch.float64)
        )


@pytest.mark.points(2)
@pytest.mark.number("2.1")
def test_starts_as_the_base_layer(check):
    """a freshly wrapped layer computes exactly the base layer (B = 0, A random)"""
    base = _base()
    layer = lora.LoRALinear(base, r=2, lora_alpha=4)
    x = _x()
    with check("output equals the base layer's"):
        assert_close(layer(x), lambda: base(x), what="LoRALinear(x) at initialisation",
                     hint="initialise lora_B to zeros so training starts at the base model")  # fmt: skip
    with check("A is randomly initialised, B is zero"):
        assert_equal(
            [bool(layer.lora_A.weight.abs().sum() > 0), bool(layer.lora_B.weight.abs().sum() == 0)],
            [True, True],
            what="[A is non-zero, B is zero]",
            hint="A: Kaiming-uniform (a=sqrt(5)); B: zeros — a zero A and B would never train",
        )
    with check("shapes: A (r, in), B (out, r)"):
        assert_equal(
            [list(layer.lora_A.weight.shape), list(layer.lora_B.weight.shape)],
            [[2, 6], [5, 2]],
            what="[A.weight.shape, B.weight.shape]",
        )


@pytest.mark.points(2)
@pytest.mark.number("2.2")
@pytest.mark.parametrize("r, alpha", [(1, 1.0), (2, 16.0), (4, 8.0)])
def test_forward_formula(r, alpha):
    """y = W x + b + (B A x) · alpha / r"""
    base = _base()
    layer = lora.LoRALinear(base, r=r, lora_alpha=alpha)
    _randomise(layer)
    x = _x()

    def expected():
        update = x @ layer.lora_A.weight.T @ layer.lora_B.weight.T  # (3, 4, out)
        return base(x) + update * (alpha / r)

    assert_close(layer(x), expected, what=f"LoRALinear(x) with r={r}, alpha={alpha}",
                 hint="scale the update by lora_alpha / r (not r / lora_alpha)")  # fmt: skip


@pytest.mark.points(1)
@pytest.mark.number("2.3")
def test_only_the_adapter_trains(check):
    """the base weight and bias are frozen; gradients reach A and B only"""
    base = _base()
    layer = lora.LoRALinear(base, r=2, lora_alpha=2)
    _randomise(layer)
    layer(_x()).sum().backward()
    with check("requires_grad: base frozen, A and B trainable"):
        assert_equal(
            [base.weight.requires_grad, base.bias.requires_grad,
             layer.lora_A.weight.requires_grad, layer.lora_B.weight.requires_grad],
            [False, False, True, True],
            what="requires_grad of [base.weight, base.bias, A, B]",
            hint="freeze the base layer: p.requires_grad_(False) for its parameters",
        )  # fmt: skip
    with check("gradients only on A and B"):
        assert_equal(
            [base.weight.grad is None, layer.lora_A.weight.grad is not None],
            [True, True],
            what="[no gradient on the base weight, a gradient on A]",
        )


@pytest.mark.points(2)
@pytest.mark.number("2.4")
def test_merge_and_unmerge(check):
    """merge() folds B A · alpha/r into W with the same outputs; unmerge() restores W"""
    base = _base()
    w0 = base.weight.detach().clone()
    layer = lora.LoRALinear(base, r=3, lora_alpha=6)
    _randomise(layer)
    x = _x()
    before = layer(x).detach()
    delta = (layer.lora_B.weight @ layer.lora_A.weight * 2.0).detach()
    layer.merge()
    with check("merged weight = W + B A · alpha/r"):
        assert_close(base.weight.detach(), w0 + delta, what="base.weight after merge()",
                     hint="merge adds lora_B.weight @ lora_A.weight * scaling to the base weight")  # fmt: skip
    with check("same outputs after merging"):
        assert_close(layer(x), before, what="LoRALinear(x) after merge()",
                     hint="once merged, forward must not add the adapter a second time")  # fmt: skip
    layer.unmerge()
    with check("unmerge restores W"):
        assert_close(base.weight.detach(), w0, what="base.weight after merge() then unmerge()",
                     hint="unmerge subtracts the same update")  # fmt: skip
    with check("same outputs after unmerging"):
        assert_close(layer(x), before, what="LoRALinear(x) after unmerge()")


@pytest.mark.points(1)
@pytest.mark.number("2.5")
@pytest.mark.parametrize("r", [0, -2, 2.5])
def test_a_bad_rank_is_refused(r):
    """a rank that is not a positive int raises ValueError naming it"""
    with pytest.raises(ValueError, match=str(r)):
        lora.LoRALinear(_base(), r=r, lora_alpha=1.0)


def _tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    return BertForSequenceClassification(config).eval()


@pytest.mark.points(3)
@pytest.mark.number("2.6")
def test_inject_lora_matches_peft(check):
    """inject_lora on a BERT equals peft's LoRA with the same A and B"""
    import copy

    from peft import LoraConfig, get_peft_model

    model = _tiny_bert()
    oracle = get_peft_model(
        copy.deepcopy(model),
        LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["query", "value"],
            lora_dropout=0.0,
            modules_to_save=["classifier"],
        ),  # fmt: skip
    ).eval()
    ours = lora.inject_lora(model, target_modules=("query", "value"), r=4, lora_alpha=8,
                            modules_to_save=("classifier",))  # fmt: skip
    g = torch.Generator().manual_seed(3)
    wrapped = [
        (n, m) for n, m in ours.named_modules() if hasattr(m, "lora_A") and hasattr(m, "lora_B")
    ]
    with check("query and value of both layers are wrapped"):
        assert_equal(
            sorted(n for n, _ in wrapped),
            sorted(
                f"bert.encoder.layer.{i}.attention.self.{p}"
                for i in range(2)
                for p in ("query", "value")
            ),
            what="the wrapped modules",
            hint="match nn.Linear modules whose name ends with a target (query, value)",
        )
    with torch.no_grad():
        for name, module in wrapped:
            a = torch.randn(module.lora_A.weight.shape, generator=g)
            b = torch.randn(module.lora_B.weight.shape, generator=g)
            module.lora_A.weight.copy_(a)
            module.lora_B.weight.copy_(b)
            peft_module = oracle.base_model.model.get_submodule(name)
            peft_module.lora_A["default"].weight.copy_(a)
            peft_module.lora_B["default"].weight.copy_(b)
    ids = torch.randint(0, 50, (3, 7), generator=g)
    with check("logits equal peft's"):
        assert_close(ours.eval()(input_ids=ids).logits, lambda: oracle(input_ids=ids).logits,
                     what="BERT logits with LoRA on query/value", rtol=1e-5, atol=1e-6,
                     why="float32 attention through the same weights, summed in another order")  # fmt: skip
    with check("the same parameters train as in peft"):
        ours_trainable, _ = lora.count_parameters(ours)
        theirs = sum(p.numel() for n, p in oracle.named_parameters() if p.requires_grad
                     and "original_module" not in n)  # fmt: skip
        assert_equal(ours_trainable, theirs, what="trainable parameters (adapters + classifier)",
                     hint="freeze everything but A, B and the modules_to_save")  # fmt: skip


@pytest.mark.points(1)
@pytest.mark.number("2.7")
def test_count_parameters():
    """count_parameters returns (trainable, total)"""
    model = _tiny_bert()
    for p in model.bert.parameters():
        p.requires_grad_(False)
    assert_equal(
        list(lora.count_parameters(model)),
        lambda: [
            sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()),
        ],  # fmt: skip
        what="count_parameters(model) with the encoder frozen",
    )
