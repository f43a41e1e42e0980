"""`Transport`: what `fire.Remote` is written against, the way to one server and back.

A transport carries whole messages: requests encoded by `fire.wire.protocol` one way,
replies the other. It knows nothing of request ids, scopes or references: `Remote` numbers
its requests, matches replies to them, keeps the failures of requests it sent without
waiting, serialises threads and says when a reply did not come in time. What a transport
adds is the medium and how it fails:

- `fire.net.transport.ZeroMQTransport`, the default: a DEALER socket to a server's
  ROUTER, over a Unix socket or CURVE TCP; it notices a dead server and a refused key.
- `fire.net.loopback.LoopbackTransport`: hands each request to a server's dispatcher
  in this process (no socket, no thread), for tests of the client and server logic.

To add one, write a class with these members (no base class needed) and give it to
``fire.Remote(transport=...)``.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Transport"]


class Transport(Protocol):
    """One client's connection to one server, carrying whole messages.

    `Remote` calls `send` and `receive` holding its lock, so a transport is used by one
    thread at a time; `close` may come from any thread.
    """

    @property
    def address(self) -> object:
        """Where the server is, as error messages name it (``str()`` of it)."""

    @property
    def max_message_size(self) -> int:
        """The largest reply this client takes, in bytes (the server learns it in hello)."""

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""

    def send(self, message: bytes) -> None:
        """Send one request without waiting for anything.

        Raises `fire.ServerUnavailable` when it cannot be sent (closed, not connected).
        """

    def receive(self, deadline: float) -> bytes | None:
        """The next reply, whole; None once ``time.monotonic()`` passes `deadline`.

        Replies come in the server's order, not necessarily the requests' (`Remote`
        matches them). Raises `fire.ServerUnavailable` when the server is gone,
        `fire.AuthenticationError` when it refused this client, `fire.ProtocolError`
        for a reply over `max_message_size`.
        """

    def close(self) -> None:
        """Close the connection (the server frees the session); harmless twice."""
