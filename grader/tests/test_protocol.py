"""The boundary's protocol (``grader.boundary.protocol``): every operation is declared, served by
one handler, sent only as declared, and a message that breaks its declaration is refused."""

from __future__ import annotations

import copy

import pytest
import torch

from grader.boundary import protocol, server
from grader.boundary.proxy import remote_isinstance, remote_text
from grader.boundary.wire import WireError
from grader.tests.conftest import module_process, within_a_test

MODULE = """
import torch


class Box(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        self.items = [1, 2, 3]

    def forward(self, x):
        return (self.w * x).sum()

    def __str__(self):
        return "a box"


class Bag:
    def __init__(self):
        self.things = [1, 2, 3]

    def __getitem__(self, i):
        return self.things[i]

    def __len__(self):
        return len(self.things)

    def __iter__(self):
        return iter(self.things)

    def __contains__(self, thing):
        return thing in self.things


def apply(f, x):
    return f(x) + 1
"""


def test_every_declared_operation_has_one_handler_and_every_handler_a_declaration():
    handlers = {name[3:] for name in dir(server.Server) if name.startswith("op_")}
    assert handlers == set(protocol.TO_DELIVERABLE)


def test_the_test_process_sends_only_declared_requests(tmp_path):
    """Every request the test process makes in a run of calls, builds, attribute reads and writes,
    indexing, iteration, copies, backward and a callback, checked against its declaration as it
    leaves (so a request the protocol does not declare fails here, not in a grading)."""
    sent: list[str] = []
    with module_process(tmp_path, "boxes", MODULE) as process:
        process.start(fork=True)
        send = process.channel.send

        def checked(header, blobs):
            if "op" in header:
                sent.append(protocol.check_request(header, protocol.TO_DELIVERABLE))
            return send(header, blobs)

        process.channel.send = checked
        with within_a_test(process):
            mod = process.import_module("boxes")
            box = mod.Box()
            x = torch.ones(3, dtype=torch.float64, requires_grad=True)
            box(x).backward()
            assert x.grad.tolist() == [1.0, 1.0, 1.0]
            box.items = [4, 5]
            assert box.items == [4, 5]
            bag = mod.Bag()
            assert bag[0] == 1 and len(bag) == 3 and list(bag) == [1, 2, 3] and 3 in bag
            assert remote_text(box) == "a box" and remote_isinstance(box, "torch.nn.Module")
            assert copy.deepcopy(box) is not box
            assert mod.apply(lambda v: v * 2, 3) == 7  # the test's function, called back
            linear = process.call("torch.nn.Linear", (2, 2), {})
            assert linear.in_features == 2
    assert set(sent) == set(protocol.TO_DELIVERABLE)


@pytest.mark.parametrize(
    "message, why",
    [
        ({"op": "call", "id": 1}, "without"),
        ({"op": "call", "id": 1, "target": {}, "params": [], "grad": 1}, "'grad' is not a bool"),
        ({"op": "len", "id": True, "target": {}}, "'id' is not a int"),
        ({"op": "len", "id": 1, "target": {}, "exec": "x"}, "unknown field 'exec'"),
        ({"op": "callback", "id": 1, "target": {}, "params": []}, "does not serve"),
        ({"op": "__init__", "id": 1}, "does not serve"),
        ({"id": 1}, "does not serve"),
    ],
)
def test_a_request_that_breaks_its_declaration_is_refused(message, why):
    with pytest.raises(WireError, match=why):
        protocol.check_request(message, protocol.TO_DELIVERABLE)


def test_the_test_process_serves_callbacks_alone():
    ok = {
        "op": "callback",
        "id": 1,
        "target": {"side": "t", "id": 1, "kind": "callable", "type": "function"},
        "params": [],
    }
    assert protocol.check_request(ok, protocol.TO_TEST) == "callback"
    with pytest.raises(WireError, match="does not serve"):
        protocol.check_request(
            {"op": "getattr", "id": 1, "target": {}, "name": "x"}, protocol.TO_TEST
        )
