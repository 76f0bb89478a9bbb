"""Trusted instruments for training-loop deliverables.

A training loop written by the student receives an optimizer; the tests hand it an
:class:`OptimizerWatch` instead — an object of the test process (``grader.boundary.client
.Instrument``) whose ``zero_grad`` and ``step`` student code calls like an optimizer's. Each call
runs on the test side: ``step`` first reads, through the model's proxy, the model's mode and the
gradients it is about to apply, then passes the call on to the real optimizer (built where the
student's code runs). The record is the test's own — student code can call the two methods,
never read or write what they recorded — so a check can compare the loop with the handout's
contract: how many steps, in which mode, with which gradients (only this batch's, clipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from grader.testprocess.deliverables import Instrument


@dataclass
class Step:
    """What the model looked like when the student's loop called ``step``."""

    training: bool
    grads: dict[str, torch.Tensor]  # by parameter name; zeros where there was none


class OptimizerWatch(Instrument):
    """An optimizer for student code: ``zero_grad`` and ``step`` are observed, then passed on."""

    EXPOSED = ("zero_grad", "step")

    def __init__(self, optimizer: Any, model: Any) -> None:
        self._optimizer, self._model = optimizer, model
        self.steps: list[Step] = []
        self.zero_grads = 0

    def zero_grad(self, *args: Any, **kwargs: Any) -> None:
        self.zero_grads += 1
        self._optimizer.zero_grad(*args, **kwargs)

    def step(self, *args: Any, **kwargs: Any) -> Any:
        grads = {
            name: (torch.zeros_like(p) if p.grad is None else p.grad.detach().clone())
            for name, p in self._model.named_parameters()
        }
        self.steps.append(Step(training=self._model.training is True, grads=grads))
        return self._optimizer.step(*args, **kwargs)
