"""The reference twin: the instructor's implementation of a module deliverable, run here, in the
trusted test process, on the student's own weights.

Outputs alone say little about training: a parameter cut off the graph, one never registered, a
forward that changes its weights or its mode all give the right numbers and a model that does
not learn. So a contract check runs the student's module and its twin on the same input and
compares

- the outputs;
- the gradient of one random scalar of the outputs, ``Σ_i (R_i ⊙ out_i).sum()``, with respect
  to **every parameter** (by name) and every floating-point input;
- the state the call leaves: the mode (``training``), and every parameter and buffer unchanged.

The twin is the kit's ``reference/`` package, imported in this process under names of its own
(never the student's modules). It holds the instructor's solutions: where grading happens away
from the kit (Gradescope) it travels in the autograder readable by root alone, and student code,
which runs as another user in a process of its own, cannot read it. A handout carries no
reference, so test files that use a twin are left out of it (``pytestmark = REFERENCE_ONLY``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import torch
from compare import assert_close, assert_equal

# Both sides compute in float64; the formulas may differ in the order of their sums (a loop over
# heads vs one matmul, einsum vs matmul): rounding of ~1e-13 relative. 1e-7 is far above that and
# far below any real difference (a missing scale, a cut gradient: O(1)).
RTOL, ATOL = 1e-7, 1e-10
WHY = "float64 on both sides; sums in another order differ by ~1e-13, a mistake by far more"

REFERENCE_ONLY = pytest.mark.reference_only(
    "compares with the instructor's implementation, which only the grader has"
)

_twins: dict[str, ModuleType] = {}


def reference(module: str) -> ModuleType:
    """The reference implementation of ``module`` (e.g. ``"a1_lm_basics.dan"``), imported in this
    process from the kit's ``reference/`` folder. While it is imported, the assignment's package
    names mean the reference's (its modules import each other by those names); afterwards they
    mean what they meant before (the student's modules in a plain in-process run, nothing when
    grading), and the twin keeps its own."""
    if module in _twins:
        return _twins[module]
    from grader.course import kit_root

    root = kit_root() / "reference"
    if not (root / module.split(".")[0]).is_dir():
        pytest.fail(
            f"Setup problem (not a mistake in your code): the reference implementation of "
            f"{module} is not here, so this check cannot run (it runs where the grader has it)."
        )
    package = module.split(".")[0]
    mine = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == package}
    sys.path.insert(0, str(root))
    try:
        importlib.import_module(module)
    finally:
        sys.path.remove(str(root))
        loaded = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == package}
        sys.modules.update(mine)
    _twins.update(loaded)
    return _twins[module]


def twin_of(
    student: Any, build: Callable[[], torch.nn.Module], what: str, seed: int | None = 0
) -> torch.nn.Module:
    """``build()`` (the reference class with the constructor's arguments) in float64, holding the
    student's weights. Names are part of the contract: a parameter the student's module lacks
    (a tensor never registered as an ``nn.Parameter`` or submodule) or has in excess fails here.

    ``seed``: first give every floating-point parameter and buffer of the student's module
    values drawn from it (0.5 · N(0, 1), by name), so that no weight starts at a value that hides
    a gradient — LoRA's B starts at zero, and with it every gradient of A."""
    twin = build().double()
    state = {name: value.detach().double() for name, value in student.state_dict().items()}
    expected, got = sorted(twin.state_dict()), sorted(state)
    assert_equal(
        got,
        expected,
        what=f"the names of {what}'s parameters and buffers (its state_dict)",
        hint="register every weight as an nn.Parameter (or a submodule's) under the name the "
        "docstring gives: a plain tensor attribute is not a parameter, is not in state_dict(), "
        "and an optimizer never updates it",
    )
    if seed is not None:
        g = torch.Generator().manual_seed(seed)
        drawn = {
            name: torch.randn(state[name].shape, generator=g, dtype=torch.float64) * 0.5
            for name in expected
            if state[name].is_floating_point()
        }
        student.load_state_dict(drawn, strict=False)  # written whole: the module may be remote
        state.update(drawn)
    twin.load_state_dict(state)
    return twin


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _inputs(args: tuple) -> tuple[tuple, list[torch.Tensor]]:
    """Fresh copies of the arguments (floating-point tensors require grad); those tensors."""

    def copy(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            out = value.detach().clone()
            return out.requires_grad_(True) if out.is_floating_point() else out
        if isinstance(value, tuple | list):
            return type(value)(copy(v) for v in value)
        return value

    copied = copy(args)
    return copied, [t for t in _tensors(copied) if t.requires_grad]


def _scalar(outputs: list[torch.Tensor], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros((), dtype=torch.float64)
    for out in outputs:
        if out.is_floating_point():
            weights = torch.randn(out.shape, generator=g, dtype=torch.float64)
            total = total + (out.double() * weights).sum()
    return total


def compare_call(
    student: Any,
    twin: torch.nn.Module,
    args: tuple,
    kwargs: dict | None = None,
    *,
    what: str,
    method: str | None = None,
    seed: int = 0,
    hint: str = "",
) -> None:
    """Run ``student`` and ``twin`` (or their ``method``) on copies of ``args`` (and ``kwargs``,
    which hold no tensor that needs a gradient: ids, options) and compare the
    outputs, the gradient of a random scalar of them with respect to every parameter and every
    floating-point input, and the state the call leaves behind."""
    mode = twin.training
    assert_equal(
        student.training,
        mode,
        what=f"{what}: the module's mode before the call",
        hint="the test sets the mode with train()/eval()",
    )
    before = {name: t.detach().clone() for name, t in student.state_dict().items()}
    student.zero_grad(set_to_none=True)
    twin.zero_grad(set_to_none=True)
    mine_args, mine_inputs = _inputs(args)
    ref_args, ref_inputs = _inputs(args)
    call_mine = getattr(student, method) if method else student
    call_ref = getattr(twin, method) if method else twin
    kwargs = kwargs or {}
    with torch.enable_grad():
        mine = call_mine(*mine_args, **kwargs)
        expected = call_ref(*ref_args, **kwargs)
    mine_out, ref_out = _tensors(mine), _tensors(expected)
    assert_equal(len(mine_out), len(ref_out), what=f"{what}: how many tensors the call returns")
    for i, (a, b) in enumerate(zip(mine_out, ref_out, strict=True)):
        where = f"{what}: output {i}" if len(ref_out) > 1 else f"{what}: the output"
        assert_close(a.detach(), b.detach(), what=where, rtol=RTOL, atol=ATOL, why=WHY, hint=hint)
    # One backward on each side; gradients of every parameter (by name) and every input.
    _scalar(ref_out, seed).backward()
    if any(t.requires_grad for t in mine_out):
        _scalar(mine_out, seed).backward()
    grads = {name: p.grad for name, p in student.named_parameters()}
    for name, p in twin.named_parameters():
        expected_grad = torch.zeros_like(p) if p.grad is None else p.grad
        got = grads.get(name)
        got = torch.zeros_like(p) if got is None else got.double()
        assert_close(
            got,
            expected_grad,
            what=f"{what}: the gradient of parameter {name!r} "
            "(of one random scalar of the outputs)",
            rtol=RTOL,
            atol=ATOL,
            why=WHY,
            hint=f"{name} does not learn as it should: is it on the graph from input to "
            "output (no .detach(), .data, .item() or torch.no_grad() on the way), and "
            "used as the formula says?",
        )
    for i, (a, b) in enumerate(zip(mine_inputs, ref_inputs, strict=True)):
        got = torch.zeros_like(b) if a.grad is None else a.grad
        expected_grad = torch.zeros_like(b) if b.grad is None else b.grad
        assert_close(
            got,
            expected_grad,
            what=f"{what}: the gradient of floating-point input "
            f"{i} (of one random scalar of the outputs)",
            rtol=RTOL,
            atol=ATOL,
            why=WHY,
            hint="the gradient must flow back to the inputs: no .detach(), .data or "
            "in-place change of an input on the way",
        )
    # What the call leaves: the mode it found, and every parameter and buffer as it was.
    assert_equal(
        student.training,
        mode,
        what=f"{what}: the module's mode after the call",
        hint="forward must not call train()/eval() or set self.training",
    )
    after = student.state_dict()
    for name, value in before.items():
        assert_close(
            after[name],
            value,
            what=f"{what}: {name!r} after the call (a forward "
            "leaves parameters and buffers as it found them)",
            rtol=0.0,
            atol=0.0,
            why="nothing may change them",
            hint="write no parameter or buffer in "
            "forward (no in-place update, no .data assignment)",
        )


def decisive_classifier(
    texts: list[str], tokenizer, *, num_labels: int, seed: int = 0, **config: Any
) -> tuple[torch.nn.Module, dict, list[int]]:
    """A small random BERT classifier, kept here, whose predictions on ``texts`` turn on what
    each text says: (the model in eval mode, its ``BertConfig`` fields, its predictions, one text
    at a time).

    A freshly initialised BERT (weights of spread 0.02) reads every text alike and predicts one
    class for all of them, so a wrong order, a missing ``eval()`` or attention paid to padding
    all pass. Here the weights have spread 0.5 and the head's bias is centred on the texts'
    logits, so the texts fall on different sides of its decision boundaries, each at a margin
    (≥ 1e-3, asserted) far above float32 rounding (~1e-6). The set-up also asserts that the
    predictions differ between texts and that reading the padding of a batch changes some.
    """
    from transformers import BertConfig, BertForSequenceClassification

    config = {
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        **config,
        "num_labels": num_labels,
        "initializer_range": 0.5,
    }
    torch.manual_seed(seed)
    model = BertForSequenceClassification(BertConfig(**config)).eval()
    with torch.no_grad():

        def one_at_a_time() -> torch.Tensor:  # (N, K)
            return torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in texts])

        model.classifier.bias.sub_(one_at_a_time().mean(dim=0))
        logits = one_at_a_time()
        batch = tokenizer(list(texts), padding=True, return_tensors="pt")
        unmasked = model(input_ids=batch["input_ids"]).logits.argmax(-1).tolist()
    top2 = logits.topk(2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    predictions = logits.argmax(-1).tolist()
    assert margin >= 1e-3, f"test set-up: a decision margin of {margin:.2g} is too close to call"
    assert len(set(predictions)) >= 2, f"test set-up: one class for every text ({predictions})"
    assert unmasked != predictions, "test set-up: the padding of a batch should matter"
    return model, config, predictions
