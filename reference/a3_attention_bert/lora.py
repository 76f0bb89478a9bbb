"""LoRA from scratch: low-rank adapters on a frozen linear layer (handout H2.3; Hu et al. 2021).

    y = base(x) + lora_B(lora_A(dropout(x))) * scaling,    scaling = lora_alpha / r

A is Kaiming-uniform initialised and B is zero-initialised, so a freshly wrapped layer computes
exactly what the base layer did; only A and B train. ``merge()`` folds ``B @ A * scaling`` into
the base weight (no extra cost at inference); ``unmerge()`` takes it out again. The names follow
peft's ``tuners/lora/layer.py``.

Shapes: B batch, T tokens, C_in / C_out the base layer's in and out features, r the rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update.

    Inputs:
        base: the pretrained layer, (C_out, C_in) weight; frozen here.
        r: the rank, a positive int.
        lora_alpha: the update is scaled by ``lora_alpha / r``.
        lora_dropout: dropout probability on the adapter's input.
    Attributes:
        lora_A: ``nn.Linear(C_in, r, bias=False)``, Kaiming-uniform with a=√5 — uniform on
            ±1/√C_in, as ``nn.Linear`` draws its own weight (the scale sets how fast LoRA learns).
        lora_B: ``nn.Linear(r, C_out, bias=False)``, zeros.
    Raises:
        ValueError: ``r`` is not a positive int.
    """

    def __init__(self, base: nn.Linear, r: int, lora_alpha: float = 1.0, lora_dropout: float = 0.0):
        super().__init__()
        self.base = base
        self.r = r
        self.lora_alpha = lora_alpha
        self.merged = False
        # BEGIN SOLUTION
        # TODO: reject a bad rank with ValueError naming the value; freeze the base layer's
        #       parameters; create self.lora_A = nn.Linear(C_in, r, bias=False) with
        #       Kaiming-uniform init (a=math.sqrt(5)), self.lora_B = nn.Linear(r, C_out,
        #       bias=False) initialised to zeros, self.lora_dropout (nn.Dropout, or nn.Identity
        #       when the probability is 0) and self.scaling. A and B take the base weight's
        #       dtype and device.
        if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
            raise ValueError(f"LoRA rank r must be a positive int, got {r!r}")
        for p in self.base.parameters():
            p.requires_grad_(False)
        like = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.lora_A = nn.Linear(base.in_features, r, bias=False, **like)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, **like)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)  # the wrapped layer starts as the base layer
        self.lora_dropout = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.scaling = lora_alpha / r
        # END SOLUTION

    def delta_weight(self) -> Tensor:
        """The update ``B @ A * scaling``, shaped like the base weight (C_out, C_in)."""
        # BEGIN SOLUTION
        # TODO: lora_B.weight is (C_out, r), lora_A.weight is (r, C_in).
        return self.lora_B.weight @ self.lora_A.weight * self.scaling
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., C_in) -> (..., C_out). After ``merge()`` the base layer alone computes it."""
        # BEGIN SOLUTION
        # TODO: base(x), plus (unless merged) lora_B(lora_A(dropout(x))) * scaling.
        out = self.base(x)
        if not self.merged:
            out = out + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling
        return out
        # END SOLUTION

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight; forward then skips the adapter."""
        # BEGIN SOLUTION
        # TODO: add delta_weight() to base.weight once (do nothing if already merged).
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True
        # END SOLUTION

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge`."""
        # BEGIN SOLUTION
        # TODO: subtract delta_weight() from base.weight (only if merged).
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False
        # END SOLUTION


def inject_lora(
    model: nn.Module,
    target_modules: Sequence[str] = ("query", "value"),
    r: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
    modules_to_save: Sequence[str] = (),
) -> nn.Module:
    """Wrap every ``nn.Linear`` whose name ends with one of ``target_modules`` in :class:`LoRALinear`.

    Everything else is frozen, except the parameters of modules whose name starts with one of
    ``modules_to_save`` (e.g. a new ``classifier`` head). Returns ``model``, changed in place.
    """
    # BEGIN SOLUTION
    # TODO: freeze all parameters; collect (parent, attribute, layer) for each matching
    #       nn.Linear from model.named_modules() (the last part of a name is its attribute on
    #       the parent: model.get_submodule(parent_name)), then setattr the LoRALinear wrapper;
    #       finally unfreeze the modules_to_save.
    for p in model.parameters():
        p.requires_grad_(False)
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.split(".")[-1] in target_modules
    ]
    for name, module in targets:
        parent_name, _, attribute = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attribute, LoRALinear(module, r, lora_alpha, lora_dropout))
    for name, module in model.named_modules():
        if any(name == m or name.startswith(m + ".") for m in modules_to_save):
            for p in module.parameters():
                p.requires_grad_(True)
    return model
    # END SOLUTION


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) numbers of parameters."""
    # BEGIN SOLUTION
    # TODO: sum p.numel() over model.parameters(), and over those with requires_grad.
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
    # END SOLUTION
