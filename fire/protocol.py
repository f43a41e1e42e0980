"""The wire protocol, without any I/O (as h11 does for HTTP): bytes in, messages out.

Every message is one msgpack array in one ZeroMQ frame.

- request (client -> server): ``[request_id, operation, arguments, releases]``;
  ``releases`` lists reference ids the client dropped since its last request.
- reply (server -> client): ``[request_id, status, body, shapes]``.

A connection opens with a handshake: the client sends ``hello`` with the range of
protocol versions it speaks; the server answers with the highest common version, or
with a challenge when it needs a token. The token never crosses the wire: the client
answers the challenge with an HMAC of the server's nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack

from .errors import ProtocolError

__all__ = [
    "PROTOCOL_VERSIONS",
    "Reply",
    "Request",
    "Status",
    "answer_challenge",
    "choose_version",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "make_challenge",
    "token_matches",
]

#: The protocol versions this fire speaks, lowest and highest.
PROTOCOL_VERSIONS: tuple[int, int] = (1, 1)


class Status(IntEnum):
    """What a reply's body is."""

    OK = 0  # the operation's result
    RAISED = 1  # remote code raised: the body describes the exception
    FIRE_ERROR = 2  # fire refused the request: the body is [kind, message]
    CHALLENGE = 3  # handshake: the body is the server's nonce


@dataclass(frozen=True, slots=True)
class Request:
    """One client request; `arguments` is still packed when it may hold references."""

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


def encode_request(request_id: int, operation: str, arguments: bytes, releases: list[int]) -> bytes:
    """Frame a request whose arguments are already packed by the caller's codec."""
    return msgpack.packb([request_id, operation, msgpack.ExtType(0, arguments), releases])


def decode_request(frame: bytes) -> Request:
    """Parse a request frame; raises `ProtocolError` naming what is wrong."""
    try:
        message = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ProtocolError(f"malformed frame: not msgpack ({exc})") from None
    if not isinstance(message, list) or len(message) != 4:
        raise ProtocolError("malformed frame: a request is [request_id, operation, arguments, releases]")
    request_id, operation, arguments, releases = message
    if not isinstance(request_id, int) or not isinstance(operation, str):
        raise ProtocolError("malformed frame: request_id must be an int and operation a str")
    if not isinstance(arguments, msgpack.ExtType) or arguments.code != 0:
        raise ProtocolError("malformed frame: arguments must be packed in extension 0")
    if not isinstance(releases, list) or not all(isinstance(r, int) for r in releases):
        raise ProtocolError("malformed frame: releases must be a list of ints")
    return Request(request_id, operation, arguments.data, releases)


def encode_reply(request_id: int | None, status: Status, body: bytes, shapes: bytes | None) -> bytes:
    """Frame a reply whose body (and shapes) are already packed by the server's codec."""
    return msgpack.packb(
        [request_id, int(status), msgpack.ExtType(0, body),
         None if shapes is None else msgpack.ExtType(0, shapes)]
    )


def decode_reply(frame: bytes) -> tuple[int | None, Status, bytes, bytes | None]:
    """Split a reply frame into request id, status, packed body and packed shapes."""
    try:
        request_id, status, body, shapes = msgpack.unpackb(frame, raw=False)
        return request_id, Status(status), body.data, None if shapes is None else shapes.data
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


def make_challenge() -> bytes:
    """A fresh nonce for the token challenge."""
    return secrets.token_bytes(32)


def answer_challenge(token: str, nonce: bytes) -> bytes:
    """The client's proof that it knows the token, without sending the token."""
    return hmac.new(token.encode(), nonce, hashlib.sha256).digest()


def token_matches(token: str, nonce: bytes, answer: Any) -> bool:
    """Whether `answer` proves knowledge of `token` for this `nonce` (constant time)."""
    return isinstance(answer, bytes) and hmac.compare_digest(answer_challenge(token, nonce), answer)

