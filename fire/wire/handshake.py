"""The handshake, without I/O: what a connection's message says before it has a session.

A connection has a session or it does not, and the server's table of sessions already
says which: that one bit is the handshake's whole state. A connection without a session
may send only ``hello``; `greet` reads that message and says either the version both
sides speak (the server then opens a session) or the error to refuse it with (no
session: the client may try again). A session's requests, ``hello`` included (then an
unknown operation), never come here; a session ends when its client disconnects or the
server stops, and a client that comes back is a new connection.

(An earlier version kept the states in a transition table, as h11's ``_state.py`` does
for HTTP. With two states, one of them the presence of a session, the table only
restated the session table, and nothing read the states it reached.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import FireError, HandshakeRequired, ProtocolError
from .protocol import DEFAULT_MAX_MESSAGE_SIZE, choose_version

__all__ = ["Greeting", "greet"]


@dataclass(frozen=True)
class Greeting:
    """What the message of a connection without a session says.

    For a ``hello`` the server accepts: the version both sides speak, the largest reply
    the client takes (its ``max_message_size``) and what the client told about itself.
    Otherwise `refusal`, the error to answer with.
    """

    version: int | None = None
    client: dict[str, Any] = field(default_factory=dict)
    refusal: FireError | None = None
    max_reply_size: int = DEFAULT_MAX_MESSAGE_SIZE


def greet(operation: str, arguments: Any, versions: tuple[int, int]) -> Greeting:
    """Read the message of a connection without a session (its unpacked `arguments`).

    ``hello`` takes one dict: ``versions`` ``[low, high]`` (ints), optionally
    ``max_message_size`` (the largest reply the client takes, in bytes; 256 MiB when
    absent) and what the client says about itself (pid, host, label…), kept as the
    session's ``client``.
    """
    if operation != "hello" or not isinstance(arguments, list) or not arguments:
        return Greeting(
            refusal=HandshakeRequired(
                "this connection has no session (new or restarted server?): reconnect"
            )
        )
    hello = arguments[0] if isinstance(arguments[0], dict) else {}
    offered = hello.get("versions")
    if not (
        isinstance(offered, list)
        and len(offered) == 2
        and all(type(version) is int for version in offered)
    ):
        return Greeting(refusal=ProtocolError("hello needs versions [low, high]"))
    try:
        version = choose_version((offered[0], offered[1]), versions)
    except ProtocolError as exc:
        return Greeting(refusal=exc)
    max_reply_size = hello.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
    if type(max_reply_size) is not int or max_reply_size <= 0:
        return Greeting(
            refusal=ProtocolError("hello's max_message_size must be a positive int (bytes)")
        )
    client = {
        key: value for key, value in hello.items() if key not in ("versions", "max_message_size")
    }
    return Greeting(version=version, client=client, max_reply_size=max_reply_size)
