"""The wire protocol, without any I/O (as h11 does for HTTP): bytes in, messages out.

Every message is one msgpack array:

- request (client -> server): ``[request_id, operation, releases, arguments]``;
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
ordinary msgpack either way: any msgpack library reads and writes these messages.

A message travels in one ZeroMQ frame when it fits `FRAME_SIZE` (nearly every message),
else as one multipart ZeroMQ message of `FRAME_SIZE` chunks (`split`), joined on
receipt (`join`). Frames are small so that both sockets can refuse larger ones
(ZeroMQ's ``MAXMSGSIZE``, set to `FRAME_LIMIT`, bounds each frame, not a whole
message): a peer that has not yet passed the CURVE handshake can make its receiver hold
no more than one frame, and ZeroMQ drops a connection that announces a larger one
before reading it. The whole message is bounded by the receiver's ``max_message_size``,
checked by fire. Every chunk but the last is exactly `FRAME_SIZE` long, so a receiver
asks whether more frames follow only after a full one. A request's small fields come
before its arguments, so a request refused for its size still has an id to answer and
releases to honour (`peek`).

A connection opens with a handshake: the client sends ``hello`` with the range of
protocol versions it speaks; the server answers with the highest common version. Its
states and transitions are data in `fire.wire.handshake`, also without I/O.
Authentication is not part of this protocol: on TCP, ZeroMQ's CURVE handshake has
authenticated both sides before the first message (`fire.net.curve`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NamedTuple

import msgpack

from ..errors import ProtocolError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "CALLABLE",
    "CONTEXT_MANAGER",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FRAME_LIMIT",
    "FRAME_SIZE",
    "ITERATOR",
    "PROTOCOL_VERSIONS",
    "SIZED",
    "MessageTooLarge",
    "Request",
    "Status",
    "choose_version",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "join",
    "peek",
    "split",
]

#: The protocol versions this fire speaks, lowest and highest. Version 3: messages
#: longer than `FRAME_SIZE` travel in chunks, each side's frames are bounded by
#: `FRAME_LIMIT`, a request's releases come before its arguments, and ``hello`` says
#: the client's ``max_message_size``. (Version 2: shapes carry exception hierarchies and
#: type flags; ``iter`` and ``next`` replies say whether the object is its own iterator;
#: ``isinstance`` and ``issubclass`` operations.) Older peers are refused at the handshake.
PROTOCOL_VERSIONS: tuple[int, int] = (3, 3)

#: Flags of a shape (``[dotted name, {name: shape id or None}, flags, hierarchy]``, see
#: `fire.server.shapes`): what the object's type makes of it, so the client answers
#: ``callable()``, ``iter()``, ``len()`` and ``with`` without a round trip.
CALLABLE, ITERATOR, SIZED, CONTEXT_MANAGER = 1, 2, 4, 8

#: The most bytes fire puts in one ZeroMQ frame; a longer message travels in chunks of
#: this size. 64 KiB: one frame holds nearly every message (which then costs nothing
#: extra); chunks this size cost little more than larger ones, and far less than
#: smaller ones (docs/design.md, "Messages in 64 KiB frames", has the figures); and it
#: is all a peer that has not authenticated can make its receiver hold (CURVE's
#: handshake commands are a few hundred bytes).
FRAME_SIZE = 64 * 1024
#: The largest frame either side's socket accepts (ZeroMQ's ``MAXMSGSIZE``): a longer
#: one disconnects its sender, before it is read. The margin is for CURVE, which wraps
#: every frame in a 33-byte ``MESSAGE`` command.
FRAME_LIMIT = FRAME_SIZE + 64
#: The default bound on a whole message (``max_message_size``) on each side.
DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024 * 1024
#: `peek` reads a head from this many frames at most: the head (ids and releases) of any
#: real request fits far fewer.
_PEEK_FRAMES = 16


class MessageTooLarge(ProtocolError):
    """A message's frames add up to more than the receiver's ``max_message_size``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of {size:,} bytes is over the limit of {limit:,} bytes")
        self.size = size
        self.limit = limit


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
    """Encode a request whose arguments are already packed by the caller's codec."""
    return b"".join(
        (
            b"\x94",
            _pack(request_id),
            _pack(operation),
            _pack(releases) if releases else _EMPTY_LIST,
            _ext0_header(arguments),
            arguments,
        )
    )


def decode_request(message: ReadableBuffer) -> Request:
    """Parse a request (bytes or any buffer); raises `ProtocolError` naming what is wrong."""
    try:
        fields = msgpack.unpackb(message, raw=False, strict_map_key=False, ext_hook=_pair)
    except Exception as exc:
        raise ProtocolError(f"malformed request: not msgpack ({exc})") from None
    if type(fields) is not list or len(fields) != 4:
        raise ProtocolError(
            "malformed request: a request is [request_id, operation, releases, arguments]"
        )
    request_id, operation, releases, arguments = fields
    if not isinstance(request_id, int) or not isinstance(operation, str):
        raise ProtocolError("malformed request: request_id must be an int and operation a str")
    if type(releases) is not list or (releases and not all(isinstance(r, int) for r in releases)):
        raise ProtocolError("malformed request: releases must be a list of ints")
    if type(arguments) is not tuple or arguments[0] != 0:
        raise ProtocolError("malformed request: arguments must be packed in extension 0")
    return Request(request_id, operation, arguments[1], releases)


def encode_reply(
    request_id: int | None, status: Status, body: bytes, shapes: bytes | None
) -> bytes:
    """Encode a reply whose body (and shapes) are already packed by the server's codec."""
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


def decode_reply(message: bytes) -> tuple[int | None, Status, bytes, bytes | None]:
    """Split a reply into request id, status, packed body and packed shapes."""
    try:
        request_id, status, body, shapes = msgpack.unpackb(message, raw=False, ext_hook=_pair)
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


def split(message: bytes) -> list[memoryview]:
    """The frames a message longer than `FRAME_SIZE` travels in: full chunks, then the rest.

    Views, not copies: ZeroMQ copies each into its frame.
    """
    view = memoryview(message)
    return [view[start : start + FRAME_SIZE] for start in range(0, len(view), FRAME_SIZE)]


def join(frames: Sequence[Any], limit: int) -> bytes:
    """The message that `frames` (buffers, in order) carry; `MessageTooLarge` over `limit` bytes.

    The size is checked before anything is copied.
    """
    size = sum(map(len, frames))
    if size > limit:
        raise MessageTooLarge(size, limit)
    return b"".join(frames)


def peek(frames: Sequence[Any], count: int) -> list[Any] | None:
    """The first `count` fields of the message that `frames` carry, without joining them.

    For a message refused for its size: a request's ``[request_id, operation, releases]``
    (count 3) or a reply's ``[request_id]`` (count 1). None when they are not there (not
    msgpack, not an array of four, or not within `_PEEK_FRAMES` frames).
    """
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=_pair)
    fields: list[Any] = []
    started = False
    for frame in frames[:_PEEK_FRAMES]:
        unpacker.feed(frame)
        try:
            if not started:
                if unpacker.read_array_header() != 4:
                    return None
                started = True
            while len(fields) < count:
                fields.append(unpacker.unpack())
        except msgpack.OutOfData:
            continue
        except Exception:
            return None
        return fields
    return None


def choose_version(client: tuple[int, int], server: tuple[int, int] = PROTOCOL_VERSIONS) -> int:
    """The highest protocol version both sides speak, or a `ProtocolError` naming both ranges."""
    low, high = max(client[0], server[0]), min(client[1], server[1])
    if low > high:
        raise ProtocolError(
            f"no common protocol version: the client speaks {client[0]}..{client[1]}, "
            f"the server speaks {server[0]}..{server[1]}; upgrade the older side"
        )
    return high
