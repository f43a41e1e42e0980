"""The handshake, without I/O: a connection's states, and its transitions as data.

As h11's ``_state.py`` does for HTTP, the rules are a table from (state, event) to the
next state (`TRANSITIONS`); the server only reads messages, turns them into events
(`greet`), feeds them to a connection's `Handshake` and acts on the state it reaches. A
pair missing from the table is a bug in the caller, not a client's mistake, and raises.

- A connection starts ``NEW``: it has no session. Its ``hello`` with a protocol version
  range the server shares is ``HELLO`` and opens it; a hello the server refuses
  (``BAD_HELLO``: no versions, no common version) or any other request (``REQUEST``,
  answered "HandshakeRequired") leaves it ``NEW``, so the client may try again.
- An ``OPEN`` connection has a session; its requests (``REQUEST``, ``hello`` included,
  which is then an unknown operation) keep it open. This self-loop is the hot path of
  every call, so the server does not feed it: a session exists only while ``OPEN``.
- ``CLOSE`` (the client disconnected, or the server stops) ends either state. A client
  that comes back is a new connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from ..errors import ProtocolError
from .protocol import DEFAULT_MAX_MESSAGE_SIZE, choose_version

__all__ = ["TRANSITIONS", "Event", "Greeting", "Handshake", "State", "greet"]


class State(Enum):
    """Where a connection is in its handshake."""

    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class Event(Enum):
    """What happened on a connection, as the handshake sees it."""

    HELLO = "hello"
    BAD_HELLO = "bad hello"
    REQUEST = "request"
    CLOSE = "close"


#: (state, event) -> the next state. Pairs that are not here cannot happen.
TRANSITIONS: Mapping[tuple[State, Event], State] = MappingProxyType(
    {
        (State.NEW, Event.HELLO): State.OPEN,
        (State.NEW, Event.BAD_HELLO): State.NEW,
        (State.NEW, Event.REQUEST): State.NEW,
        (State.NEW, Event.CLOSE): State.CLOSED,
        (State.OPEN, Event.REQUEST): State.OPEN,
        (State.OPEN, Event.CLOSE): State.CLOSED,
    }
)


class Handshake:
    """One connection's handshake state; `receive` applies an event by the table."""

    def __init__(self) -> None:
        self.state = State.NEW

    def receive(self, event: Event) -> State:
        """Move to the state `TRANSITIONS` gives for `event`, and return it."""
        try:
            self.state = TRANSITIONS[self.state, event]
        except KeyError:
            raise ProtocolError(
                f"handshake: {event.value!r} cannot happen on a {self.state.value} connection"
            ) from None
        return self.state


@dataclass(frozen=True)
class Greeting:
    """What a connection's message says before it has a session.

    For a ``HELLO``: the version both sides speak, the largest reply the client takes
    (its ``max_message_size``) and what the client told about itself; otherwise the
    refusal to answer with, as ``(kind, message)``.
    """

    event: Event
    version: int | None = None
    client: dict[str, Any] = field(default_factory=dict)
    refusal: tuple[str, str] | None = None
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
            Event.REQUEST,
            refusal=(
                "HandshakeRequired",
                "this connection has no session (new or restarted server?): reconnect",
            ),
        )
    hello = arguments[0] if isinstance(arguments[0], dict) else {}
    offered = hello.get("versions")
    if not (
        isinstance(offered, list)
        and len(offered) == 2
        and all(type(version) is int for version in offered)
    ):
        return Greeting(
            Event.BAD_HELLO, refusal=("ProtocolError", "hello needs versions [low, high]")
        )
    try:
        version = choose_version((offered[0], offered[1]), versions)
    except ProtocolError as exc:
        return Greeting(Event.BAD_HELLO, refusal=("ProtocolError", str(exc)))
    max_reply_size = hello.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE)
    if type(max_reply_size) is not int or max_reply_size <= 0:
        return Greeting(
            Event.BAD_HELLO,
            refusal=("ProtocolError", "hello's max_message_size must be a positive int (bytes)"),
        )
    client = {
        key: value for key, value in hello.items() if key not in ("versions", "max_message_size")
    }
    return Greeting(Event.HELLO, version=version, client=client, max_reply_size=max_reply_size)
