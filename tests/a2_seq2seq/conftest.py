"""Shared by the assignment-2 suites: weights set by parameter *name*.

A module's weights must not depend on how its constructor draws them (the order of layers, the
initialiser): the expected values of a graded run come from a run of the reference, so the tests
give every parameter values that depend only on its name, shape and a seed. The names and shapes
are part of the contract (README); ``layout`` shows a student theirs next to the expected ones.

The model may live in another process (``grader.boundary``): its parameters are read as copies,
so the values are written back whole with ``load_state_dict``. The oracles compute with the values
the test wrote (``filled`` returns them, read like the model: ``w.q.weight``), never with what the
model reports its weights to be.
"""

import zlib

import pytest
import torch
from torch import nn


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
    @staticmethod
    def draw(model: nn.Module, seed: int, scale: float = 0.5) -> dict[str, torch.Tensor]:
        """scale · N(0, 1) for every parameter the model names, drawn from (seed, its name),
        float64."""
        values = {}
        for name, p in model.named_parameters():
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            values[name] = torch.randn(p.shape, generator=g, dtype=torch.float64) * scale
        return values

    @classmethod
    def filled(cls, model: nn.Module, seed: int, scale: float = 0.5) -> tuple[nn.Module, Written]:
        """The model in float64 with every parameter set by ``draw``, and the values written."""
        model.double()
        values = cls.draw(model, seed, scale)
        model.load_state_dict(values, strict=False)  # written whole: the model may be remote
        return model, Written(values)

    @classmethod
    def fill(cls, model: nn.Module, seed: int, scale: float = 0.5) -> nn.Module:
        """Every parameter ~ scale · N(0, 1), drawn from (seed, its name); float64; returns model."""
        return cls.filled(model, seed, scale)[0]

    @staticmethod
    def layout(model: nn.Module) -> list[list]:
        """[name, shape] of every parameter, sorted by name."""
        return sorted([n, list(p.shape)] for n, p in model.named_parameters())


@pytest.fixture(scope="session")
def weights() -> Weights:
    # Session scope: Hypothesis refuses function-scoped fixtures in @given tests.
    return Weights()
