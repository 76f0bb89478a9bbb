"""Kit objects built next to a student's objects, for tests that hand them to student code.

When grading, student code runs in a process of its own and a test holds proxies of its objects
(``grader.boundary``). An object that must refer to a student's object itself — an optimizer over
a model's parameters — is built in that process by name::

    optimizer = build("coursekit.builders.optimizer", model, "SGD", lr=0.5)

In a plain pytest run the same line builds it here. A training run's epoch runs there too
(``train_epoch``): the batches cross once an epoch instead of four requests a batch. The training
data is public, and what runs there only trains the model: its graded figure is computed where
the tests run, from what the model outputs. Nothing in this module is graded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def optimizer(model: torch.nn.Module, name: str, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.<name>(model.parameters(), **options)``."""
    return getattr(torch.optim, name)(model.parameters(), **options)


class ClassifierLoss(nn.Module):
    """``cross_entropy(model(x), y)``: a classifier's training loss, next to the model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return nn.functional.cross_entropy(self.model(x), y)


def train_epoch(
    loss_of: Callable[..., Tensor],
    optimizer: torch.optim.Optimizer,
    batches: Sequence[tuple],
    desc: str | None = None,
) -> list[float]:
    """For each batch in order: zero the gradients, ``loss_of(*batch)``, backward, an optimizer
    step. The batches' losses, in order; with ``desc``, a progress bar."""
    from tqdm.auto import tqdm

    losses: list[float] = []
    bar = tqdm(batches, disable=desc is None, desc=desc, unit="batch")
    for batch in bar:
        optimizer.zero_grad()
        loss = loss_of(*batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses) / len(losses):.3f}")
    return losses
