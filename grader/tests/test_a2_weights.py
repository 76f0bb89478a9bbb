"""Assignment 2's weights by name (``tests/a2_seq2seq/conftest.py``): written where the model lives
in one request (``coursekit.a2_seq2seq.builders.fill_weights``) and drawn again in the test
process for the oracles. The names and shapes come back from the student's process: a reply that
does not name (parameter, shape) pairs of a model of these tests' size is refused before anything
is drawn for it."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from grader import course


@pytest.fixture
def weights():
    path = course.TESTS / "a2_seq2seq" / "conftest.py"
    spec = importlib.util.spec_from_file_location("a2_weights_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_model_holds_the_values_drawn_for_the_oracles(weights):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GRU(4, 2))
    model, written = weights.Weights.filled(model, seed=5)
    again = weights.Weights.fill(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.GRU(4, 2)), 5)
    names = [n for n, _ in model.named_parameters()]
    assert list(written._values) == names and len(names) == 6
    for name, p in model.named_parameters():
        assert p.dtype == torch.float64
        assert torch.equal(p, written._values[name])
        assert torch.equal(p, dict(again.named_parameters())[name])  # the seed alone decides
    assert torch.equal(written.__getattr__("0").weight, model[0].weight)


@pytest.mark.parametrize(
    "reply",
    [
        "weights",  # not a dict
        {"w": [10**5, 10**5]},  # 10^10 values: refused before 80 GB are drawn
        {"w": [-1, 3]},
        {"w": [2.5]},
        {"w": "3"},
        {1: [3]},
    ],
)
def test_a_reply_that_names_no_model_of_this_size_is_refused(weights, monkeypatch, reply):
    monkeypatch.setattr(weights, "build", lambda *args, **kwargs: reply)
    with pytest.raises(AssertionError, match="did not name"):
        weights.Weights.filled(torch.nn.Linear(2, 2), seed=0)
