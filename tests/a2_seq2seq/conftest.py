"""Shared by the assignment-2 suites: weights set by parameter *name*.

A module's weights must not depend on how its constructor draws them (the order of layers, the
initialiser): the expected values of a graded run come from a run of the reference, so the tests
give every parameter values that depend only on its name, shape and a seed. The names and shapes
are part of the contract (README); ``layout`` shows a student theirs next to the expected ones.
"""

import zlib

import pytest
import torch
from torch import nn


class Weights:
    @staticmethod
    def fill(model: nn.Module, seed: int, scale: float = 0.5) -> nn.Module:
        """Every parameter ~ scale · N(0, 1), drawn from (seed, its name); float64; returns model."""
        model.double()
        with torch.no_grad():
            for name, p in model.named_parameters():
                g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
        return model

    @staticmethod
    def layout(model: nn.Module) -> list[list]:
        """[name, shape] of every parameter, sorted by name."""
        return sorted([n, list(p.shape)] for n, p in model.named_parameters())


@pytest.fixture(scope="session")
def weights() -> Weights:
    # Session scope: Hypothesis refuses function-scoped fixtures in @given tests.
    return Weights()
