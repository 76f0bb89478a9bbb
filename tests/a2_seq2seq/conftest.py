"""Shared by the assignment-2 suites: weights set by parameter *name*.

A module's weights must not depend on how its constructor draws them (the order of layers, the
initialiser): the expected values of a graded run come from a run of the reference, so the tests
give every parameter values that depend only on its name, shape and a seed. The names and shapes
are part of the contract (README); ``layout`` shows a student theirs next to the expected ones.

The model may live in another process (``grader.boundary``): the values are written where it
lives (``coursekit.a2_seq2seq.builders.fill_weights``, one request), and drawn again here from the
names and shapes it reports. The oracles compute with the values drawn here (``filled`` returns
them, read like the model: ``w.q.weight``), never with what the model reports its weights to be.
"""

import math

import pytest
import torch
from torch import nn

from coursekit.a2_seq2seq.builders import drawn_weights
from grader.testprocess.deliverables import build

# The most parameters a model of these tests has is under 100,000: a reply naming more (it comes
# from the student's process) is refused before anything is drawn for it.
MAX_DRAWN = 10_000_000


class Written:
    """The values a test wrote into a model, read like the model: ``w.rnn.weight_ih_l0``."""

    def __init__(self, values: dict[str, torch.Tensor], prefix: str = "") -> None:
        self._values, self._prefix = values, prefix

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        key = self._prefix + name
        if key in self._values:
            return self._values[key]
        if any(k.startswith(key + ".") for k in self._values):
            return Written(self._values, key + ".")
        raise AttributeError(
            f"the model has no parameter or submodule {key!r}: the tests use the names of the "
            f"README (its parameters are {sorted(self._values)})"
        )


class Weights:
    @classmethod
    def filled(cls, model: nn.Module, seed: int, scale: float = 0.5) -> tuple[nn.Module, Written]:
        """The model in float64, every parameter set to scale · N(0, 1) drawn from (seed, its
        name) (``drawn_weights``), and those values."""
        shapes = build("coursekit.a2_seq2seq.builders.fill_weights", model, seed, scale)
        if not (
            isinstance(shapes, dict)
            and all(
                isinstance(n, str)
                and isinstance(s, list)
                and all(type(d) is int and d >= 0 for d in s)
                for n, s in shapes.items()
            )
            and sum(math.prod(s) for s in shapes.values()) <= MAX_DRAWN
        ):
            raise AssertionError(
                "the model's named_parameters() did not name (parameter, shape) pairs of a "
                "model of this size"
            )
        return model, Written(drawn_weights(shapes, seed, scale))

    @classmethod
    def fill(cls, model: nn.Module, seed: int, scale: float = 0.5) -> nn.Module:
        """``filled``'s model alone."""
        return cls.filled(model, seed, scale)[0]

    @staticmethod
    def layout(model: nn.Module) -> list[list]:
        """[name, shape] of every parameter, sorted by name."""
        return sorted([n, list(p.shape)] for n, p in model.named_parameters())


@pytest.fixture(scope="session")
def weights() -> Weights:
    # Session scope: Hypothesis refuses function-scoped fixtures in @given tests.
    return Weights()
