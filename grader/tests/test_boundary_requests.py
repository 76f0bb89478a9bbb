"""What the test process asks the deliverable process, and what it remembers within a test.

A method or a module's function is looked up once a test (``obj.step(...)`` would otherwise ask
for ``step`` before every call); a value is asked for each time, so a change made by student code
is seen; setting an attribute from the test forgets what was found; the next test looks again.
"""

from __future__ import annotations

import pytest

from grader.boundary.client import Boundary
from grader.boundary.proxy import remote_text
from grader.tests.conftest import module_process, within_a_test

COUNTER = '''
class Counter:
    def __init__(self):
        self.count = 0

    def step(self):
        self.count += 1
        return self.count

    def negated(self):
        return -self.count

    def rewire(self):
        """Student code that gives this object a step of its own."""
        self.step = lambda: 100


def make():
    return Counter()


def swap():
    """Student code that replaces one of its module's functions."""
    global make
    make = lambda: "swapped"  # noqa: E731
'''


@pytest.fixture(scope="module")
def process(tmp_path_factory):
    with module_process(tmp_path_factory.mktemp("counter"), "counter", COUNTER) as p:
        yield p


@pytest.fixture
def boundary(process):
    with within_a_test(process) as p:
        yield p


def _asked(boundary: Boundary, monkeypatch) -> list[str]:
    """The operations the test process sends, in order."""
    ops: list[str] = []
    ask = boundary._ask

    def counting(header, blobs, **kw):
        ops.append(header.get("op"))
        return ask(header, blobs, **kw)

    monkeypatch.setattr(boundary, "_ask", counting)
    return ops


def test_a_method_is_looked_up_once_a_test_and_a_value_every_time(boundary, monkeypatch):
    counter = boundary.import_module("counter").make()
    ops = _asked(boundary, monkeypatch)
    assert [counter.step() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert ops == ["getattr"] + ["call"] * 5
    ops.clear()
    assert [counter.count for _ in range(3)] == [5, 5, 5]
    assert ops == ["getattr"] * 3  # a value: asked for each time


def test_a_method_set_from_the_test_is_the_one_called(boundary):
    module = boundary.import_module("counter")
    counter = module.make()
    assert counter.step() == 1
    counter.step = counter.negated
    assert counter.step() == -1


def test_the_next_test_looks_again(process):
    """A module lives as long as the process; what was found in it lasts one test."""
    with within_a_test(process):
        module = process.import_module("counter")
        module.make()
        module.swap()
    with within_a_test(process):
        assert process.import_module("counter").make() == "swapped"


def test_a_method_of_a_class_is_called_in_one_request_on_its_next_object(boundary, monkeypatch):
    """Once ``step`` is known as a function of Counter, ``other.step()`` on another Counter is one
    request, looked up over there at the call — on that object (its own count)."""
    module = boundary.import_module("counter")
    first, other = module.Counter(), module.Counter()  # (make() was swapped above)
    assert first.step() == 1
    ops = _asked(boundary, monkeypatch)
    assert [other.step() for _ in range(3)] == [1, 2, 3]
    assert ops == ["call"] * 3
    assert first.count == 1 and other.count == 3


def test_a_method_called_by_name_is_looked_up_at_the_call(boundary):
    """Student code that gives one object a step of its own: calling ``step`` runs that one, as
    Python would, though the class's step is known."""
    module = boundary.import_module("counter")
    first, other = module.Counter(), module.Counter()  # (make() was swapped above)
    assert first.step() == 1
    other.rewire()
    assert other.step() == 100 and first.step() == 2


def test_a_method_read_but_not_called_is_the_attribute_itself(boundary):
    module = boundary.import_module("counter")
    first, other = module.Counter(), module.Counter()  # (make() was swapped above)
    first.step()
    step = other.step  # known by class: asked for only when used otherwise than called
    assert "step" in remote_text(step) or "method" in repr(step)
    assert other.negated() == 0
