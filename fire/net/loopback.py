"""`Loopback`: a server's dispatcher in this process, and transports that call it directly.

No socket, no thread, no process: a `Loopback` makes a server's dispatcher
(`fire.server.dispatch.Dispatcher`) whose replies it keeps for whichever connection they
are for; `LoopbackTransport.send` hands a request to the dispatcher, `receive` gives the
replies back. Everything between the
bytes of a request and the bytes of its reply is the real thing (handshake, sessions,
references, shapes, operations, extensions, errors), so the client's and the server's
logic can be tested in memory::

    loopback = Loopback(Dispatcher)  # Loopback(Dispatcher, values=rules, ...)
    with fire.Remote(transport=loopback.transport()) as remote:
        assert remote.module("operator").add(1, 2) == 3
    loopback.close()

What it leaves out is the socket's part: messages are never cut into frames (a request
is not bounded by the server's ``max_message_size``, which applies to chunks), there is
no CURVE, and a dead peer is a closed transport, never a killed process.

Every transport of one `Loopback` drives its dispatcher under one lock, as a server's
loop runs one request at a time; a reply that waits (a ``begin_scope`` in line) comes
when another connection's request, or a tick while waiting, gives it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import ServerUnavailable
from ..wire.protocol import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["Loopback", "LoopbackTransport"]

#: How often a wait for a reply lets the dispatcher answer what waits on time (s).
_TICK_EVERY = 0.01


class Dispatcher(Protocol):
    """What a loopback drives: `fire.server.dispatch.Dispatcher` (net imports no server)."""

    def handle(self, identity: bytes, message: bytes) -> None: ...

    def tick(self) -> None: ...

    def disconnected(self, identity: bytes) -> None: ...

    def close_sessions(self) -> None: ...

    def close(self) -> None: ...


class Loopback:
    """A server's dispatcher in this process, and the connections to it (`transport`).

    ``make(send, **options)`` makes the dispatcher (`fire.server.dispatch.Dispatcher`
    and its options), ``send(identity, reply)`` being how it hands its replies over.
    """

    def __init__(
        self, make: Callable[..., Dispatcher], *, name: str = "loopback", **options: Any
    ) -> None:
        self.name = name
        self._lock = threading.Lock()
        #: identity -> replies not yet received, for each open transport.
        self._inboxes: dict[bytes, deque[bytes]] = {}
        self._identities = itertools.count(1)
        self.dispatcher = make(self._deliver, **options)

    def transport(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> LoopbackTransport:
        """A new connection: give it to ``fire.Remote(transport=...)``."""
        identity = str(next(self._identities)).encode()
        with self._lock:
            self._inboxes[identity] = deque()
        return LoopbackTransport(self, identity, max_message_size)

    def close(self) -> None:
        """Stop the server: close every session, then the dispatcher."""
        with self._lock:
            self.dispatcher.close_sessions()
            self.dispatcher.close()

    def _handle(self, identity: bytes, message: bytes) -> None:
        with self._lock:
            self.dispatcher.handle(identity, message)

    def _tick(self) -> None:
        with self._lock:
            self.dispatcher.tick()

    def _disconnect(self, identity: bytes) -> None:
        with self._lock:
            self._inboxes.pop(identity, None)
            self.dispatcher.disconnected(identity)

    def _deliver(self, identity: bytes, reply: bytes) -> None:
        """The dispatcher's ``send``: called under the lock, from one of the above."""
        inbox = self._inboxes.get(identity)
        if inbox is not None:  # a connection closed since: dropped, as ZeroMQ drops it
            inbox.append(reply)


class LoopbackTransport:
    """One connection of a `Loopback` (a `fire.net.base.Transport`)."""

    def __init__(self, loopback: Loopback, identity: bytes, max_message_size: int) -> None:
        self._loopback = loopback
        self._identity = identity
        self._inbox = loopback._inboxes[identity]
        self.address = f"{loopback.name}:{identity.decode()}"
        self.max_message_size = max_message_size
        self.closed = False

    def send(self, message: bytes) -> None:
        if self.closed:
            raise ServerUnavailable(f"connection to {self.address} is closed", self.address)
        self._loopback._handle(self._identity, message)

    def receive(self, deadline: float) -> bytes | None:
        inbox = self._inbox
        while not inbox:
            if self.closed:
                raise ServerUnavailable(f"connection to {self.address} is closed", self.address)
            if time.monotonic() >= deadline:
                return None
            time.sleep(_TICK_EVERY)
            self._loopback._tick()
        return inbox.popleft()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loopback._disconnect(self._identity)
