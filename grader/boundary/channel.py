"""Requests and replies over one socket, in both directions.

Either side may ask; while a side waits for its reply it serves the other side's requests (the
deliverable process calling back a test's function while it runs a student's function, and the
test's function calling the student's code again). Requests carry ``"op"`` and an ``"id"``;
replies carry ``"re"`` (the id they answer) and either ``"value"`` or ``"error"``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from grader.boundary.wire import Budget, Reader, WireError, recv_frame, send_frame
from grader.limits import Caps

Frame = tuple[dict[str, Any], bytearray]
Reply = tuple[dict[str, Any], list[memoryview]]
Serve = Callable[[dict[str, Any], bytearray], Reply]


class Channel:
    def __init__(
        self, sock: socket.socket, caps: Caps, serve: Serve, may_serve: Callable[[], bool]
    ):
        self.sock, self.caps, self.serve = sock, caps, serve
        self.may_serve = may_serve  # whether the other side may ask something now
        self.budget = Budget(caps)
        self.reader = Reader(sock)
        self.next_id = 1
        self.waiting: list[int] = []  # ids of our requests still open, innermost last

    def send(self, header: dict[str, Any], blobs: list[memoryview]) -> None:
        send_frame(self.sock, header, blobs)

    def ask(self, header: dict[str, Any], blobs: list[memoryview], deadline: float | None) -> Frame:
        """Send a request and wait for its reply, serving the other side's requests meanwhile."""
        rid = self.next_id
        self.next_id += 1
        header = {**header, "id": rid}
        self.send(header, blobs)
        self.waiting.append(rid)
        try:
            while True:
                frame, blob = recv_frame(self.reader, deadline, self.caps, self.budget)
                if "op" in frame:
                    if not self.may_serve():
                        raise WireError(f"an unexpected request {str(frame.get('op'))[:40]!r}")
                    self.answer(frame, blob)
                    continue
                if frame.get("re") != rid:
                    raise WireError("a reply to a request that is not open")
                return frame, blob
        finally:
            self.waiting.pop()

    def answer(self, frame: dict[str, Any], blob: bytearray) -> None:
        qid = frame.get("id")
        if type(qid) is not int:
            raise WireError("a request without an id")
        header, blobs = self.serve(frame, blob)
        self.send({**header, "re": qid}, blobs)

    def serve_forever(self) -> None:
        """The deliverable process's main loop: answer requests until the other side closes."""
        while True:
            frame, blob = recv_frame(self.reader, None, self.caps, self.budget)
            if "op" not in frame:
                raise WireError("a reply to nothing")
            self.answer(frame, blob)


def deadline_in(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds
