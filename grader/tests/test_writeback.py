"""The trusted side acts only on what it asked for: write-backs and instruments.

Write-back: the test process changes only what it handed over as ``mutable(...)``.

A reply from the deliverable process may carry changes to the call's arguments. The student's
process decides what it sends, so the trusted side checks every change before applying any: its
path lies inside an argument passed as mutable, and its value fits what is there (same shape and
dtype, same length, same keys). A forged change of any other argument fails the call and leaves
the test's values as they were. Each case runs a real deliverable process: the forger patches the
server loop it runs in, as a hostile submission would.

Instruments (``grader.testprocess.deliverables.Instrument``): a test's object handed to student code offers its
exposed methods and nothing else, even to a forged request.
"""

from __future__ import annotations

import pytest
import torch

from grader.boundary.client import Boundary
from grader.boundary.errors import BoundaryViolation
from grader.boundary.handles import Instrument, Mutable
from grader.tests.conftest import module_process, within_a_test

FORGER = '''
import sys

import torch

# The server loop runs as __main__ in a fresh interpreter, as grader.boundary.server when forked.
_server = next(m for m in (sys.modules.get("__main__"), sys.modules.get("grader.boundary.server"))
               if hasattr(m, "Server"))
_run = _server.Server._run


def _claims_everything(self, msg, blob, function):
    """Tell the server loop that every argument was handed over as mutable: whatever the
    functions below change comes back as a write-back the test did not ask for."""
    msg = dict(msg, mutable=[[0], [1]])
    return _run(self, msg, blob, function)


_server.Server._run = _claims_everything


def overwrite(x, y):
    """Returns the wrong answer and writes it into both arguments."""
    out = torch.zeros_like(x)
    x.copy_(out)
    y.copy_(out)
    return out


def grow(x):
    x.resize_(x.numel() + 1)
    return x.sum()


def update(params, lr):
    for i, p in enumerate(params["w"]):
        params["w"][i] = p - lr  # a new tensor in the list, as a careless sgd_step writes it
    params["steps"] = params["steps"] + 1
    return None


def shorten(items):
    items.pop()
    return len(items)


def use(watch):
    """Calls the exposed method, then reaches for what the instrument holds."""
    watch.step(2)
    found = []
    for name in ("calls", "_calls", "zero_grad"):
        try:
            getattr(watch, name)
            found.append(name)
        except AttributeError:
            pass
    if "calls" in repr(vars(watch)):  # what the stand-in here holds: a reference, no state
        found.append("vars")
    return found


def forge(watch):
    """Asks the test process for a method the instrument does not expose, by a forged reference."""
    type(watch).__getattr__ = lambda self, name: _server.TrustedFunction(
        self._server, {**self._ref, "method": name})
    return watch.calls()
'''


@pytest.fixture(scope="module")
def process(tmp_path_factory):
    with module_process(tmp_path_factory.mktemp("forger"), "forger", FORGER) as p:
        yield p


@pytest.fixture
def boundary(process):
    """The module's deliverable process, within one test (a refused reply ends the process: the
    next test starts a fresh one, as grading does)."""
    with within_a_test(process) as p:
        yield p


def _module(boundary: Boundary):
    return boundary.import_module("forger")


def test_a_forged_write_back_of_an_argument_not_handed_over_fails_the_call(boundary):
    x = torch.arange(4.0)
    y = torch.arange(4.0) + 10
    with pytest.raises(BoundaryViolation, match="did not hand over to be changed"):
        _module(boundary).overwrite(x, y)
    assert torch.equal(x, torch.arange(4.0)) and torch.equal(y, torch.arange(4.0) + 10)


def test_one_argument_handed_over_does_not_open_the_others(boundary):
    x = torch.arange(4.0)
    y = torch.arange(4.0) + 10
    with pytest.raises(BoundaryViolation, match="argument 2"):
        _module(boundary).overwrite(Mutable(x), y)
    # Nothing is applied when any change is refused: x is as it was too.
    assert torch.equal(x, torch.arange(4.0)) and torch.equal(y, torch.arange(4.0) + 10)


def test_a_change_of_shape_is_refused_even_for_a_mutable_argument(boundary):
    x = torch.arange(4.0)
    with pytest.raises(BoundaryViolation, match="shape"):
        _module(boundary).grow(Mutable(x))
    assert torch.equal(x, torch.arange(4.0))


def test_a_list_that_loses_an_item_is_refused(boundary):
    items = [torch.ones(2), torch.zeros(2)]
    with pytest.raises(BoundaryViolation, match="items for"):
        _module(boundary).shorten(Mutable(items))
    assert len(items) == 2


def test_honest_changes_of_a_mutable_argument_come_back_in_place(boundary):
    w = [torch.ones(2, dtype=torch.float64), torch.full((3,), 2.0, dtype=torch.float64)]
    params = {"w": list(w), "steps": 0}
    _module(boundary).update(Mutable(params), 0.5)
    assert params["steps"] == 1
    for before, after in zip(w, params["w"], strict=True):
        assert after is before  # the test's own tensors, changed in place
    assert torch.equal(w[0], torch.full((2,), 0.5, dtype=torch.float64))
    assert torch.equal(w[1], torch.full((3,), 1.5, dtype=torch.float64))


class Watch(Instrument):
    EXPOSED = ("step",)

    def __init__(self) -> None:
        self.calls: list = []

    def step(self, n):
        self.calls.append(n)
        return n


def test_an_instrument_offers_its_exposed_methods_and_nothing_else(boundary):
    watch = Watch()
    assert _module(boundary).use(watch) == []  # not even a method it does not expose
    assert watch.calls == [2]


def test_a_forged_call_of_a_method_not_exposed_fails_the_call(boundary):
    watch = Watch()
    with pytest.raises(BoundaryViolation, match="does not expose"):
        _module(boundary).forge(watch)
    assert watch.calls == []
