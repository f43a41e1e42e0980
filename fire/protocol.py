"""The wire protocol, without any I/O (as h11 does for HTTP): bytes in, messages out.

Every message is one msgpack array in one ZeroMQ frame.

- request (client -> server): ``[request_id, operation, arguments, releases]``;
  ``releases`` lists reference ids the client dropped since its last request.
- reply (server -> client): ``[request_id, status, body, shapes]``.

``arguments``, ``body`` and ``shapes`` travel as msgpack extension 0 holding bytes
already packed by the sender's codec: the server reads the envelope before it knows
which session (and so which references) the arguments belong to, and each side keeps
its own codec. Speed matters here (a call should cost little more than a raw
ZeroMQ + msgpack echo), so the envelope is written by joining bytes around the packed
payloads (one shared `Packer` packs the few plain values: it does so wholly in C, so
threads cannot interleave), and read with an extension hook that returns a plain
``(code, data)`` pair instead of building `msgpack.ExtType` objects. The bytes are
ordinary msgpack either way: any msgpack library reads and writes these frames.

A connection opens with a handshake: the client sends ``hello`` with the range of
protocol versions it speaks; the server answers with the highest common version. Its
states and transitions are data in `fire.handshake`, also without I/O.
Authentication is not part of this protocol: on TCP, ZeroMQ's CURVE handshake has
authenticated both sides before the first message (`fire.curve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import msgpack

from .errors import ProtocolError

__all__ = [
    "PROTOCOL_VERSIONS",
    "Reply",
    "Request",
    "Status",
    "choose_version",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
]

#: The protocol versions this fire speaks, lowest and highest. Version 2: shapes carry
#: exception hierarchies and type flags (callable, iterator, sized); ``iter`` and
#: ``next`` replies say whether the object is its own iterator; ``isinstance`` and
#: ``issubclass`` operations. A version 1 peer is refused at the handshake.
PROTOCOL_VERSIONS: tuple[int, int] = (2, 2)


class Status(IntEnum):
    """What a reply's body is."""

    OK = 0  # the operation's result
    RAISED = 1  # remote code raised: the body describes the exception
    FIRE_ERROR = 2  # fire refused the request: the body is [kind, message]
    # 3 was the token challenge, gone with the token mode: not reused, so an old peer
    # reads an unknown status, never a wrong one.


class Request(NamedTuple):
    """One client request; `arguments` is still packed when it may hold references.

    A named tuple, not a dataclass: one is built per request, and this is the cheaper.
    """

    request_id: int
    operation: str
    arguments: Any
    releases: list[int]


@dataclass(frozen=True, slots=True)
class Reply:
    """One server reply; `shapes` carries attribute tables of types new to the client."""

    request_id: int | None
    status: Status
    body: Any
    shapes: dict[int, Any] | None


#: The statuses by number, so a reply's status is an index, not an enum lookup.
_STATUSES: tuple[Status, ...] = tuple(Status)
#: Plain values only (ints, str, lists of ints): packed in C without calling back into
#: Python, so one shared packer is safe across threads.
_pack = msgpack.Packer().pack
#: msgpack "ext 8" headers of extension 0, by data length.
_EXT0_SMALL = [bytes((0xC7, size, 0)) for size in range(0x100)]
_EMPTY_LIST = b"\x90"
_NIL = b"\xc0"


def _ext0_header(data: bytes) -> bytes:
    """The msgpack header of extension 0 around `data` (ext 8, 16 or 32 by length)."""
    size = len(data)
    if size < 0x100:
        return _EXT0_SMALL[size]
    if size < 0x10000:
        return b"\xc8" + size.to_bytes(2, "big") + b"\x00"
    return b"\xc9" + size.to_bytes(4, "big") + b"\x00"


def _pair(code: int, data: bytes) -> tuple[int, bytes]:
    # Extensions in an envelope: a tuple, which no plain msgpack value decodes to.
    return code, data


def encode_request(request_id: int, operation: str, arguments: bytes, releases: list[int]) -> bytes:
    """Frame a request whose arguments are already packed by the caller's codec."""
    return b"".join(
        (
            b"\x94",
            _pack(request_id),
            _pack(operation),
            _ext0_header(arguments),
            arguments,
            _pack(releases) if releases else _EMPTY_LIST,
        )
    )


def decode_request(frame: bytes) -> Request:
    """Parse a request frame (bytes or any buffer); raises `ProtocolError` naming what is wrong."""
    try:
        message = msgpack.unpackb(frame, raw=False, strict_map_key=False, ext_hook=_pair)
    except Exception as exc:
        raise ProtocolError(f"malformed frame: not msgpack ({exc})") from None
    if type(message) is not list or len(message) != 4:
        raise ProtocolError(
            "malformed frame: a request is [request_id, operation, arguments, releases]"
        )
    request_id, operation, arguments, releases = message
    if not isinstance(request_id, int) or not isinstance(operation, str):
        raise ProtocolError("malformed frame: request_id must be an int and operation a str")
    if type(arguments) is not tuple or arguments[0] != 0:
        raise ProtocolError("malformed frame: arguments must be packed in extension 0")
    if type(releases) is not list or (releases and not all(isinstance(r, int) for r in releases)):
        raise ProtocolError("malformed frame: releases must be a list of ints")
    return Request(request_id, operation, arguments[1], releases)


def encode_reply(
    request_id: int | None, status: Status, body: bytes, shapes: bytes | None
) -> bytes:
    """Frame a reply whose body (and shapes) are already packed by the server's codec."""
    if shapes is None:
        return b"".join(
            (
                b"\x94",
                _pack(request_id),
                _pack(int(status)),
                _ext0_header(body),
                body,
                _NIL,
            )
        )
    return b"".join(
        (
            b"\x94",
            _pack(request_id),
            _pack(int(status)),
            _ext0_header(body),
            body,
            _ext0_header(shapes),
            shapes,
        )
    )


def decode_reply(frame: bytes) -> tuple[int | None, Status, bytes, bytes | None]:
    """Split a reply frame into request id, status, packed body and packed shapes."""
    try:
        request_id, status, body, shapes = msgpack.unpackb(frame, raw=False, ext_hook=_pair)
        if not 0 <= status < len(_STATUSES):
            raise ValueError(f"unknown status {status!r}")
        if type(body) is not tuple or body[0] != 0:
            raise ValueError("the body must be packed in extension 0")
        if shapes is not None:
            if type(shapes) is not tuple or shapes[0] != 0:
                raise ValueError("shapes must be packed in extension 0")
            shapes = shapes[1]
        return request_id, _STATUSES[status], body[1], shapes
    except Exception as exc:
        raise ProtocolError(f"malformed reply from server ({exc})") from None


def choose_version(client: tuple[int, int], server: tuple[int, int] = PROTOCOL_VERSIONS) -> int:
    """The highest protocol version both sides speak, or a `ProtocolError` naming both ranges."""
    low, high = max(client[0], server[0]), min(client[1], server[1])
    if low > high:
        raise ProtocolError(
            f"no common protocol version: the client speaks {client[0]}..{client[1]}, "
            f"the server speaks {server[0]}..{server[1]}; upgrade the older side"
        )
    return high
