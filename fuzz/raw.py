"""A ZeroMQ DEALER that speaks fire's protocol by hand, or not: the live fuzzer's client.

The same shape as tests/fire/test_bad_input.py's ``RawClient``, with a bound on every
wait: a reply that does not come within `REPLY_SECONDS` is a failure of the server (the
bound is for a loaded machine, not a measure).
"""

from __future__ import annotations

import os
from typing import Any

import msgpack
import zmq

from fire.wire import protocol
from fire.wire.codec import EXT_REF, Codec
from fire.wire.protocol import Status

REPLY_SECONDS = 30.0


class NoReply(AssertionError):
    """The server did not answer a message within `REPLY_SECONDS`."""


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not plain data")


class Ref:
    """A reference in a reply: its id (what a client's proxy would hold)."""

    def __init__(self, data: bytes) -> None:
        self.ref_id: int = msgpack.unpackb(data)[0]

    def __repr__(self) -> str:
        return f"Ref({self.ref_id})"


def _reference(code: int, data: bytes) -> Ref:
    if code != EXT_REF:
        raise ValueError(f"unexpected extension {code} in a reply")
    return Ref(data)


#: Packs arguments (plain data only) and reads replies (references become `Ref`).
codec = Codec(_refuse, _reference)


class RawClient:
    """One connection: frames out, replies in, each reply read as a client reads it."""

    def __init__(self, endpoint: str) -> None:
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, int(REPLY_SECONDS * 1000))
        self.socket.connect(endpoint)
        self.request_id = 0
        #: The ids of the references this connection's session holds.
        self.refs: set[int] = set()

    def send(self, *frames: bytes | memoryview) -> None:
        self.socket.send_multipart(list(frames))

    def reply(self) -> tuple[Any, Status, Any]:
        try:
            frames = self.socket.recv_multipart()
        except zmq.Again:
            raise NoReply(f"no reply within {REPLY_SECONDS:.0f} s") from None
        request_id, status, body, _ = protocol.decode_reply(b"".join(frames))
        return request_id, status, codec.unpack(body)

    def request(
        self, operation: str, args: Any, releases: list[int] | None = None
    ) -> tuple[Status, Any]:
        """Send a request and read its reply (which must carry its id)."""
        self.request_id += 1
        message = protocol.encode_request(
            self.request_id, operation, codec.pack(args), releases or []
        )
        self.send(*(protocol.split(message) if len(message) > protocol.FRAME_SIZE else [message]))
        request_id, status, body = self.reply()
        if request_id != self.request_id:
            raise AssertionError(f"reply to request {request_id}, not {self.request_id}")
        return status, body

    def hello(self) -> dict[str, Any]:
        status, body = self.request(
            "hello", [{"versions": list(protocol.PROTOCOL_VERSIONS), "pid": os.getpid()}]
        )
        if status is not Status.OK:
            raise AssertionError(f"a good hello was refused: {body!r}")
        return body

    def close(self) -> None:
        self.socket.close(linger=0)
