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
        # TODO: reject a bad rank with ValueError naming the value; freeze the base layer's
        #       parameters; create self.lora_A = nn.Linear(C_in, r, bias=False) with
        #       Kaiming-uniform init (a=math.sqrt(5)), self.lora_B = nn.Linear(r, C_out,
        #       bias=False) initialised to zeros, self.lora_dropout (nn.Dropout, or nn.Identity
        #       when the probability is 0) and self.scaling. A and B take the base weight's
        #       dtype and device.
        raise NotImplementedError("LoRALinear.__init__: fill in the TODO above")

    def delta_weight(self) -> Tensor:
        """The update ``B @ A * scaling``, shaped like the base weight (C_out, C_in)."""
        # TODO: lora_B.weight is (C_out, r), lora_A.weight is (r, C_in).
        raise NotImplementedError("LoRALinear.delta_weight: fill in the TODO above")

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., C_in) -> (..., C_out). After ``merge()`` the base layer alone computes it."""
        # TODO: base(x), plus (unless merged) lora_B(lora_A(dropout(x))) * scaling.
        raise NotImplementedError("LoRALinear.forward: fill in the TODO above")

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight; forward then skips the adapter."""
        # TODO: add delta_weight() to base.weight once (do nothing if already merged).
        raise NotImplementedError("LoRALinear.merge: fill in the TODO above")

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge`."""
        # TODO: subtract delta_weight() from base.weight (only if merged).
        raise NotImplementedError("LoRALinear.unmerge: fill in the TODO above")


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
    # TODO: freeze all parameters; collect (parent, attribute, layer) for each matching
    #       nn.Linear from model.named_modules() (the last part of a name is its attribute on
    #       the parent: model.get_submodule(parent_name)), then setattr the LoRALinear wrapper;
    #       finally unfreeze the modules_to_save.
    raise NotImplementedError("inject_lora: fill in the TODO above")


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) numbers of parameters."""
    # TODO: sum p.numel() over model.parameters(), and over those with requires_grad.
    raise NotImplementedError("count_parameters: fill in the TODO above")
