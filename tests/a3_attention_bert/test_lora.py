"""H2.3 — LoRA from scratch. Oracles: the formula y = W x + b + B A x · alpha / r written here in
float64, and peft's LoRA with the same A and B on a tiny BERT.

The layers and models your code wraps are built where your code runs (``coursekit.a3_attention_bert.models``)
with the weights of twins kept here; A and B are set by ``load_state_dict``, and the expected
values are computed here from the twins and the A and B this test chose.
"""

import copy

import pytest
import torch
from compare import assert_close, assert_equal, assert_unchanged, snapshot

from grader.testprocess.deliverables import build, deliverable, mutable

lora = deliverable("a3_attention_bert.lora")


def _base(c_in: int = 6, c_out: int = 5, seed: int = 0):
    """(the base layer handed to LoRALinear, its twin here): an nn.Linear in float64."""
    torch.manual_seed(seed)
    twin = torch.nn.Linear(c_in, c_out, dtype=torch.float64)
    base = build(
        "coursekit.a3_attention_bert.models.linear",
        c_in,
        c_out,
        dtype=torch.float64,
        state=twin.state_dict(),
    )
    return base, twin


def _x(seed: int = 1) -> torch.Tensor:
    return torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _randomise(layer) -> tuple[torch.Tensor, torch.Tensor]:
    """Random A (r, in) and B (out, r) written into the layer; returns them."""
    g = torch.Generator().manual_seed(7)
    shapes = [tuple(layer.lora_A.weight.shape), tuple(layer.lora_B.weight.shape)]
    a, b = (torch.randn(s, generator=g, dtype=torch.float64) for s in shapes)
    _load(layer, {"lora_A.weight": a, "lora_B.weight": b})
    return a, b


def _load(model, state: dict[str, torch.Tensor]) -> None:
    """Write tensors into the student's model (they may live in another process)."""
    result = model.load_state_dict(state, strict=False)
    unexpected = list(result[1]) if isinstance(result, tuple) and len(result) == 2 else []
    assert_equal(
        unexpected,
        [],
        what="tensors the test could not write into your model",
        hint="lora_A and lora_B are nn.Linear submodules (their weights are "
        "lora_A.weight and lora_B.weight in the state dict)",
    )


@pytest.mark.points(2)
@pytest.mark.number("2.1")
def test_starts_as_the_base_layer(check):
    """a freshly wrapped layer computes exactly the base layer (B = 0, A Kaiming-uniform)"""
    base, twin = _base()
    layer = lora.LoRALinear(base, r=2, lora_alpha=4)
    x = _x()
    with check("output equals the base layer's"):
        assert_close(
            layer(x),
            lambda: twin(x),
            what="LoRALinear(x) at initialisation",
            hint="initialise lora_B to zeros so training starts at the base model",
        )
    with check("A is randomly initialised, B is zero"):
        assert_equal(
            [bool(layer.lora_A.weight.abs().sum() > 0), bool(layer.lora_B.weight.abs().sum() == 0)],
            [True, True],
            what="[A is non-zero, B is zero]",
            hint="A: Kaiming-uniform (a=sqrt(5)); B: zeros — a zero A and B would never train",
        )
    with check("A is Kaiming-uniform (a=√5): uniform on ±1/√C_in"):
        # 16 x 256 draws: a uniform on ±b has std b/√3, and its largest |value| is above 0.995 b
        # unless all 4,096 miss the top 0.5 % (probability e^-20). The bands are > 10 standard
        # errors wide, so an honest draw never leaves them, whatever the seed; a law 5 % narrower
        # or wider (another slope a) always does.
        wide = lora.LoRALinear(_base(256, 3)[0], r=16, lora_alpha=16)
        a = wide.lora_A.weight.detach().double()
        bound = 1 / 256**0.5
        stats = {"max |A|": float(a.abs().max()), "std": float(a.std()), "mean": float(a.mean())}
        ok = (
            0.995 * bound <= stats["max |A|"] <= bound * (1 + 1e-6)
            and abs(stats["mean"]) <= 0.1 * bound
            and 0.9 <= stats["std"] / (bound / 3**0.5) <= 1.1
        )
        assert ok, (
            f"lora_A of a 256-input layer: {', '.join(f'{k} {v:.4g}' for k, v in stats.items())}; "
            f"Kaiming-uniform gives values within ±{bound:.4g} (= 1/√256) with std "
            f"{bound / 3**0.5:.4g} and mean 0. Use nn.init.kaiming_uniform_(A, a=math.sqrt(5)) "
            "(nn.Linear's own default), not a normal or constant init: the scale of A sets how "
            "fast LoRA learns."
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
    base, twin = _base()
    layer = lora.LoRALinear(base, r=r, lora_alpha=alpha)
    a, b = _randomise(layer)
    x = _x()

    def expected():
        update = x @ a.T @ b.T  # (3, 4, out)
        return twin(x) + update * (alpha / r)

    assert_close(
        layer(x),
        expected,
        what=f"LoRALinear(x) with r={r}, alpha={alpha}",
        hint="scale the update by lora_alpha / r (not r / lora_alpha)",
    )


@pytest.mark.points(1)
@pytest.mark.number("2.3")
def test_only_the_adapter_trains(check):
    """the base weight and bias are frozen; gradients reach A and B only"""
    base, _ = _base()
    layer = lora.LoRALinear(base, r=2, lora_alpha=2)
    _randomise(layer)
    layer(_x()).sum().backward()  # runs backward where the layer lives
    base_weight, base_bias = base.weight, base.bias  # as they are now (with .grad)
    a, b = layer.lora_A.weight, layer.lora_B.weight
    with check("requires_grad: base frozen, A and B trainable"):
        assert_equal(
            [base_weight.requires_grad, base_bias.requires_grad, a.requires_grad, b.requires_grad],
            [False, False, True, True],
            what="requires_grad of [base.weight, base.bias, A, B]",
            hint="freeze the base layer: p.requires_grad_(False) for its parameters",
        )
    with check("gradients only on A and B"):
        assert_equal(
            [base_weight.grad is None, a.grad is not None],
            [True, True],
            what="[no gradient on the base weight, a gradient on A]",
        )


@pytest.mark.points(2)
@pytest.mark.number("2.4")
def test_merge_and_unmerge(check):
    """merge() folds B A · alpha/r into W with the same outputs; unmerge() restores W"""
    base, twin = _base()
    w0 = twin.weight.detach().clone()
    layer = lora.LoRALinear(base, r=3, lora_alpha=6)
    a, b = _randomise(layer)
    x = _x()
    before = layer(x).detach()
    delta = b @ a * 2.0  # from the A and B written in
    layer.merge()
    with check("merged weight = W + B A · alpha/r"):
        assert_close(
            base.weight.detach(),
            w0 + delta,
            what="base.weight after merge()",
            hint="merge adds lora_B.weight @ lora_A.weight * scaling to the base weight",
        )
    with check("same outputs after merging"):
        assert_close(
            layer(x),
            before,
            what="LoRALinear(x) after merge()",
            hint="once merged, forward must not add the adapter a second time",
        )
    layer.unmerge()
    with check("unmerge restores W"):
        assert_close(
            base.weight.detach(),
            w0,
            what="base.weight after merge() then unmerge()",
            hint="unmerge subtracts the same update",
        )
    with check("same outputs after unmerging"):
        assert_close(layer(x), before, what="LoRALinear(x) after unmerge()")
    with check("delta_weight() = B A · alpha/r"):
        assert_close(
            layer.delta_weight(),
            delta,
            what="delta_weight() (C_out, C_in)",
            hint="lora_B.weight @ lora_A.weight * scaling",
        )
    # A second merge() (unmerge()) must not fold the update in (take it out) again. The contract
    # is "once": doing nothing is what the handout asks, and refusing with an error is accepted.
    base, _ = _base()
    layer = lora.LoRALinear(base, r=3, lora_alpha=6)
    _randomise(layer)
    layer.merge()
    with check("merge() twice adds the update once"):
        _again(layer.merge)
        assert_close(
            base.weight.detach(),
            w0 + delta,
            what="base.weight after merge() twice",
            hint="remember that the layer is merged (self.merged) and do nothing the second time",
        )
        assert_close(layer(x), before, what="LoRALinear(x) after merge() twice")
    layer.unmerge()
    with check("unmerge() twice subtracts the update once"):
        _again(layer.unmerge)
        assert_close(
            base.weight.detach(),
            w0,
            what="base.weight after merge() twice then unmerge() twice",
            hint="unmerge only a merged layer (self.merged), once",
        )
        assert_close(layer(x), before, what="LoRALinear(x) after unmerge() twice")


def _again(method) -> None:
    """A repeated merge() / unmerge(): doing nothing is the contract; an error refusing it is
    accepted too (the weight is checked after either)."""
    try:
        method()
    except Exception:  # noqa: BLE001 - any refusal is fine; folding in twice is not
        pass


@pytest.mark.points(1)
@pytest.mark.number("2.5")
@pytest.mark.parametrize("r", [0, -2, 2.5])
def test_a_bad_rank_is_refused(r):
    """a rank that is not a positive int raises ValueError naming it"""
    base, _ = _base()
    with pytest.raises(ValueError, match=str(r)):
        lora.LoRALinear(base, r=r, lora_alpha=1.0)


@pytest.mark.points(1)
@pytest.mark.number("2.8")
def test_dropout_on_the_adapter_input(check):
    """lora_dropout: in train() the adapter reads dropout(x), the base layer x; eval() drops nothing"""
    p, r, alpha = 0.5, 6, 3.0
    base, twin = _base(c_in=6, c_out=8)
    layer = lora.LoRALinear(base, r=r, lora_alpha=alpha, lora_dropout=p)
    a, b = _randomise(layer)  # A (6, 6), B (8, 6): B A has full column rank, so x is recoverable
    x = _x()
    scaling = alpha / r

    def no_dropout():
        return twin(x) + x @ a.T @ b.T * scaling

    with check("eval(): no dropout"):
        layer.eval()
        assert_close(
            layer(x),
            no_dropout,
            what=f"LoRALinear(x) in eval() with lora_dropout={p}",
            hint="nn.Dropout is off in eval(); F.dropout needs training=self.training",
        )
    layer.train()
    with check("train() with B = 0: exactly the base layer (no dropout on the base path)"):
        _load(layer, {"lora_B.weight": torch.zeros_like(b)})
        torch.manual_seed(0)
        assert_close(
            layer(x),
            lambda: twin(x),
            what=f"LoRALinear(x) in train() with B = 0, lora_dropout={p}",
            hint="dropout applies to the adapter's input only: "
            "base(x) + lora_B(lora_A(dropout(x))) * scaling",
        )
        _load(layer, {"lora_B.weight": b})
    with check("train(): the adapter reads x with each entry dropped (0) or kept and scaled"):
        torch.manual_seed(0)  # the dropout mask is drawn where your code runs, from this seed
        got = layer(x)
        # Solve (B A · scaling) z = y - base(x) for the adapter's input z (exact up to rounding):
        # every entry of z must be 0 or x / (1 - p). No dropout, dropout on the output, or on
        # lora_A's output mix the entries and give other values.
        assert_equal(list(got.shape), list(x.shape[:-1]) + [8], what="LoRALinear(x).shape")
        update = (got - twin(x)).detach().reshape(-1, 8)  # (N, C_out)
        z = torch.linalg.lstsq(b @ a * scaling, update.T).solution.T.reshape(x.shape)  # (.., C_in)
        kept = x / (1 - p)
        nearest = torch.where((z - kept).abs() < z.abs(), kept, torch.zeros_like(x))
        assert_close(
            z,
            nearest,
            what=f"the adapter's input recovered from LoRALinear(x) in "
            f"train() (lora_dropout={p}): each entry 0 or x / (1 - p)",
            rtol=1e-7,
            atol=1e-9,
            why="a float64 least-squares solve through a well-conditioned (8, 6) matrix",
            hint="base(x) + lora_B(lora_A(dropout(x))) * scaling, "
            "with nn.Dropout(lora_dropout) on the input x",
        )
        dropped = int((nearest == 0).sum())
        assert_equal(
            0 < dropped < x.numel(),
            True,
            what=f"some but not all of the {x.numel()} entries dropped ({dropped} were)",
            hint="apply dropout in train()",
        )
    with check("x is left unchanged"):
        before = snapshot(x)
        layer(mutable(x))  # changes to x come back here
        assert_unchanged(
            x,
            before,
            what="LoRALinear's x in train()",
            hint="no in-place dropout (inplace=True) or other in-place change of x",
        )


TINY_BERT = {
    "vocab_size": 50,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 16,
    "num_labels": 2,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}


def _tiny_bert():
    """(a tiny BERT classifier where the student's code runs, its twin here), evaluation mode."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    twin = BertForSequenceClassification(BertConfig(**TINY_BERT)).eval()
    model = build(
        "coursekit.a3_attention_bert.models.bert",
        "sequence_classification",
        state=twin.state_dict(),
        train=False,
        **TINY_BERT,
    )
    return model, twin


def _same_random_adapters(ours, oracle, wrapped, g: torch.Generator) -> None:
    """Random A and B (B non-zero, so the adapters show) for every wrapped module of ``ours``
    and the same in peft's ``oracle``."""
    adapters = {}
    for name, module in wrapped:
        a = torch.randn(module.lora_A.weight.shape, generator=g)
        b = torch.randn(module.lora_B.weight.shape, generator=g)
        adapters[f"{name}.lora_A.weight"], adapters[f"{name}.lora_B.weight"] = a, b
        peft_module = oracle.base_model.model.get_submodule(name)
        with torch.no_grad():
            peft_module.lora_A["default"].weight.copy_(a)
            peft_module.lora_B["default"].weight.copy_(b)
    _load(ours, adapters)


@pytest.mark.points(3)
@pytest.mark.number("2.6")
def test_inject_lora_matches_peft(check):
    """inject_lora on a BERT equals peft's LoRA with the same A and B"""
    from peft import LoraConfig, get_peft_model

    model, twin = _tiny_bert()
    oracle = get_peft_model(
        copy.deepcopy(twin),
        LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["query", "value"],
            lora_dropout=0.0,
            modules_to_save=["classifier"],
        ),
    ).eval()
    ours = lora.inject_lora(
        model, target_modules=("query", "value"), r=4, lora_alpha=8, modules_to_save=("classifier",)
    )
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
    _same_random_adapters(ours, oracle, wrapped, g)
    ids = torch.randint(0, 50, (3, 7), generator=g)
    with check("logits equal peft's"):
        assert_close(
            ours.eval()(input_ids=ids)["logits"],
            lambda: oracle(input_ids=ids).logits,
            what="BERT logits with LoRA on query/value",
            rtol=1e-5,
            atol=1e-6,
            why="float32 attention through the same weights, summed in another order",
        )
    with check("the same parameters train as in peft"):
        ours_trainable, _ = lora.count_parameters(ours)
        theirs = sum(
            p.numel()
            for n, p in oracle.named_parameters()
            if p.requires_grad and "original_module" not in n
        )
        assert_equal(
            ours_trainable,
            theirs,
            what="trainable parameters (adapters + classifier)",
            hint="freeze everything but A, B and the modules_to_save",
        )


@pytest.mark.points(1)
@pytest.mark.number("2.9")
def test_inject_lora_options(check):
    """inject_lora with other target_modules (key, dense), lora_dropout and no modules_to_save"""
    from peft import LoraConfig, get_peft_model

    targets = ("key", "dense")
    model, twin = _tiny_bert()
    config = LoraConfig(r=2, lora_alpha=4, target_modules=list(targets), lora_dropout=0.5)
    oracle = get_peft_model(copy.deepcopy(twin), config).eval()
    ours = lora.inject_lora(model, target_modules=targets, r=2, lora_alpha=4, lora_dropout=0.5)
    expected = sorted(
        n
        for n, m in twin.named_modules()
        if isinstance(m, torch.nn.Linear) and n.split(".")[-1] in targets
    )
    wrapped = [
        (n, m) for n, m in ours.named_modules() if hasattr(m, "lora_A") and hasattr(m, "lora_B")
    ]
    with check("every nn.Linear named key or dense is wrapped, nothing else"):
        assert_equal(
            sorted(n for n, _ in wrapped),
            expected,
            what="the wrapped modules with target_modules=('key', 'dense')",
            hint="wrap the modules whose name ends with "
            "one of target_modules (the argument, not the default)",
        )
    g = torch.Generator().manual_seed(4)
    _same_random_adapters(ours, oracle, wrapped, g)
    ids = torch.randint(0, 50, (3, 7), generator=g)
    with check("eval(): logits equal peft's; the adapters and nothing else train"):
        assert_close(
            ours.eval()(input_ids=ids)["logits"],
            lambda: oracle(input_ids=ids).logits,
            what="BERT logits with LoRA on key/dense, eval()",
            rtol=1e-5,
            atol=1e-6,
            why="float32 attention through the same weights, summed in another order",
        )
        assert_equal(
            lora.count_parameters(ours)[0],
            sum(p.numel() for p in oracle.parameters() if p.requires_grad),
            what="trainable parameters (adapters only: no modules_to_save)",
        )
    with check("lora_dropout reaches the adapters: train() differs from eval()"):
        # The BERT's own dropout is 0: only the adapters' can make train() differ. The chance
        # that dropout p=0.5 keeps every entry of every adapter input is below 2^-1000.
        torch.manual_seed(0)
        trained = ours.train()(input_ids=ids)["logits"].detach()
        evaluated = ours.eval()(input_ids=ids)["logits"].detach()
        assert_equal(
            bool((trained - evaluated).abs().max() > 1e-4),
            True,
            what="logits in train() differ from eval() with lora_dropout=0.5",
            hint="pass lora_dropout on to every LoRALinear",
        )


@pytest.mark.points(1)
@pytest.mark.number("2.7")
def test_count_parameters():
    """count_parameters returns (trainable, total)"""
    model, twin = _tiny_bert()
    model.bert.requires_grad_(False)  # the encoder frozen, over there and here
    twin.bert.requires_grad_(False)
    assert_equal(
        list(lora.count_parameters(model)),
        lambda: [
            sum(p.numel() for p in twin.parameters() if p.requires_grad),
            sum(p.numel() for p in twin.parameters()),
        ],
        what="count_parameters(model) with the encoder frozen",
    )
