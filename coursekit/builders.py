"""Kit objects built next to a student's objects, for tests that hand them to student code.

When grading, student code runs in a process of its own and a test holds proxies of its objects
(``grader.boundary``). An object that must refer to a student's object itself — an optimizer over
a model's parameters — is built in that process by name::

    optimizer = build("coursekit.builders.optimizer", model, "SGD", lr=0.5)

In a plain pytest run the same line builds it here. Nothing in this module is graded.
"""

from __future__ import annotations

from typing import Any

import torch


def optimizer(model: torch.nn.Module, name: str, **options: Any) -> torch.optim.Optimizer:
    """``torch.optim.<name>(model.parameters(), **options)``."""
    return getattr(torch.optim, name)(model.parameters(), **options)
