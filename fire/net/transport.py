"""`ZeroMQTransport`, the default transport (`fire.net.base`): a DEALER socket to a server.

It sends requests and receives replies, and notices a dead server or a refused key;
`fire.Remote` numbers the requests and matches the replies to them.

A receive timeout (not a poll per call) bounds each wait, in slices, so the hot path
costs nothing extra; between slices a socket monitor says whether the server went away.

On a Unix socket the monitor is read only between slices, never per request (reading
it per request would be a noticeable part of a short call). That needs no ordering of
its events against requests, because a lost connection is final there: the server closes
the session of a dropped connection, so once a disconnection is seen every later wait on
this transport fails at its first slice, and a request that reaches a restarted server
is answered at once with "reconnect".

Over TCP a link can drop and come back (a network blip, a relay restarted), so a lost
connection is not final: ZeroMQ reconnects by itself, and `fire.Remote` greets the
server again when it answers that it has no session for this connection (the server
closed the old one, rolling back its scopes). So the monitor is also read before each
TCP request is sent, and only a disconnection seen after that fails the wait for its
reply ("the link … was lost"): the reply to a request sent over a lost link never comes.
A request sent while the link is down waits, within its timeout, for the link to come
back. Heartbeats (``ZMQ_HEARTBEAT_*``) tell a link that went silent: this client pings
the server every `_HEARTBEAT_IVL_MS`, and drops the link when a ping got no answer
within its `heartbeat_timeout` (`DEFAULT_HEARTBEAT_TIMEOUT`; the server's own liveness
time, `fire.server.liveness`, sent with its pings, usually drops it sooner).

Messages longer than a frame travel in chunks (`fire.wire.protocol`). The socket refuses
frames over `protocol.FRAME_LIMIT`, so a server that has not proved its key yet can send
no more than that; a reply is bounded by `max_message_size`. Since every chunk but the
last is full, the socket is asked whether more frames follow only after a full frame:
a reply of one frame, nearly every reply, never pays for the question.

A thread that sleeps in ``recv`` until the reply comes wakes late, on virtual machines
late enough to make a short call far slower than one whose client polled
(docs/benchmarks.md, "Polling for a reply", has the figures). So a wait first polls the
socket without sleeping, for up to `spin_wait` seconds, handing the CPU to any other
runnable thread each time round (``sched_yield``: a server or database on the same CPU
runs as soon as it can), and only then sleeps in ``recv``. A call that returns within
the spin pays no wake-up; a longer one pays it once, as before. ``spin_wait=0`` sleeps
at once.

On TCP the socket is a CURVE client. A failed CURVE handshake is silent in ZeroMQ (the
socket just retries), so the monitor also watches for handshake failures, and the first
wait that sees one raises `AuthenticationError` naming the likely fix.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from typing import cast

import zmq
from zmq.utils.monitor import recv_monitor_message

from ..errors import AuthenticationError, FireError, ProtocolError, ServerUnavailable
from ..wire import protocol
from ..wire.protocol import FRAME_SIZE
from .addresses import Address, probe_unix_socket, start_hint
from .curve import ClientKeys, secure_client

__all__ = ["DEFAULT_SPIN_WAIT", "DEFAULT_TIMEOUT", "LinkLost", "ZeroMQTransport"]

#: Seconds a client waits for each reply unless told otherwise (`fire.connect`'s
#: ``timeout``, the runners' ``fire_timeout``).
DEFAULT_TIMEOUT = 30.0
_SLICE_MS = 250
#: Plain ints: ``int & zmq.POLLIN`` makes an enum, a third of a poll's time round.
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
#: Seconds a wait polls for its reply before it sleeps (see above): past the calls that
#: query a database once or twice (docs/benchmarks.md, "Polling for a reply").
DEFAULT_SPIN_WAIT = 0.001
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
#: Over TCP: a ping every 2 s, and the link dropped when the server has not answered
#: one within `heartbeat_timeout` seconds, by default the default reply timeout (the
#: server's own liveness time, sent with its pings, usually drops it first).
_HEARTBEAT_IVL_MS = 2000
DEFAULT_HEARTBEAT_TIMEOUT = DEFAULT_TIMEOUT


class LinkLost(ServerUnavailable):
    """The TCP link dropped while a request waited for its reply, which will never come.

    The link comes back by itself, as a new connection, for which the server has no
    session (it closed the old one: `fire.Remote` greets it again).
    """


class ZeroMQTransport:
    """One DEALER socket to one server (`fire.connect`'s arguments say what each one does)."""

    def __init__(
        self,
        address: Address,
        *,
        curve: ClientKeys | None = None,
        start_command: str | None = None,
        max_message_size: int = protocol.DEFAULT_MAX_MESSAGE_SIZE,
        spin_wait: float = DEFAULT_SPIN_WAIT,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    ) -> None:
        self.address = address
        if spin_wait < 0:
            raise FireError(f"spin_wait must be 0 or more seconds, not {spin_wait}")
        if not 0.001 <= heartbeat_timeout <= 2_000_000:  # ZeroMQ's option: milliseconds, an int
            raise FireError(
                "heartbeat_timeout must be between 0.001 and 2000000 seconds, "
                f"not {heartbeat_timeout}"
            )
        self.spin_wait = spin_wait
        self.curve = curve
        if max_message_size < FRAME_SIZE:
            raise FireError(
                f"max_message_size must be at least {FRAME_SIZE} bytes (one frame), "
                f"not {max_message_size}"
            )
        #: The largest reply this client takes, in bytes (the server learns it in hello).
        self.max_message_size = max_message_size
        #: How the service starts its server, for the fix in "no server there" errors.
        self.start_command = start_command
        if address.path is not None:
            probe_unix_socket(address.path, start_command)
        elif curve is None:
            raise FireError(
                f"{address} is a TCP address, which needs CURVE keys: pass curve= "
                "(fire.net.curve.client_keys) or, with the runners, --fire-curve-secret and "
                "--fire-curve-servers"
            )
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVTIMEO, _SLICE_MS)
        self._socket.setsockopt(zmq.MAXMSGSIZE, protocol.FRAME_LIMIT)
        if address.may_be_ipv6:
            self._socket.setsockopt(zmq.IPV6, 1)
        #: Whether the link may come back after a disconnection (TCP; see the docstring).
        self.reconnects = address.is_tcp
        if self.reconnects:
            self._socket.setsockopt(zmq.HEARTBEAT_IVL, _HEARTBEAT_IVL_MS)
            self._socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, round(heartbeat_timeout * 1000))
        if curve is not None:
            secure_client(self._socket, curve)
        self._monitor = _monitor(
            self._socket,
            zmq.EVENT_CONNECTED
            | zmq.EVENT_DISCONNECTED
            | zmq.EVENT_CONNECT_RETRIED
            | _HANDSHAKE_FAILED,
        )
        self._socket.connect(address.endpoint)
        self._connected = False
        self._ever_connected = False
        self._lost = False
        #: Disconnections seen, and how many there were when the last request was sent.
        self._drops = self._drops_at_send = 0
        self._refused: str | None = None
        self.closed = False

    def _check_monitor(self) -> None:
        while self._monitor.poll(0):
            message = recv_monitor_message(self._monitor)
            event = message["event"]
            if event & _HANDSHAKE_FAILED:
                self._refused = self._refusal(event, message["value"])
            elif event == zmq.EVENT_CONNECTED:
                self._connected = self._ever_connected = True
            elif event == zmq.EVENT_DISCONNECTED:
                # The server has closed this connection's session (see above).
                self._connected = False
                self._lost = True
                self._drops += 1
            elif event == zmq.EVENT_CONNECT_RETRIED and not self._connected:
                self._lost = True

    def _refusal(self, event: int, value: int) -> str:
        """What a failed CURVE handshake means, and the fix."""
        origin = self.curve.origin if self.curve else "no keys"
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            public = self.curve.public.decode() if self.curve else "?"
            return (
                f"the fire server at {self.address} refused this client's CURVE key "
                f"{public} (from {origin}; ZAP status {value}): copy the client's NAME.key "
                "into the server's --curve-clients directory"
            )
        mismatch = zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
        if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == mismatch:
            return (
                f"the server at {self.address} does not speak CURVE, so it is not a fire "
                "server: check the address (a fire server on TCP is started with "
                "--curve-secret and --curve-clients)"
            )
        return (
            f"the CURVE handshake with the fire server at {self.address} failed: the "
            f"server's public key this client has (from {origin}) is probably not that "
            "server's; copy the server's NAME.key again"
        )

    def _gone(self) -> str | None:
        """Why the reply to the last request will never come, if it will not (`LinkLost`
        raised for a TCP link that dropped since it was sent)."""
        if not self.reconnects or not self._ever_connected:
            return self._lost_message() if self._lost else None
        if self._drops != self._drops_at_send:
            raise LinkLost(
                f"the link to the fire server at {self.address} was lost while waiting for "
                "a reply (the request may have run): the server closes this connection's "
                "session, so its test scopes were rolled back and its references are gone; "
                "the link comes back by itself",
                str(self.address),
            )
        return None

    def _lost_message(self) -> str:
        if self._ever_connected:
            return f"the fire server at {self.address} went away while handling a request"
        return (
            f"no fire server answers at {self.address} (connection refused); "
            f"{start_hint(str(self.address), self.start_command)}"
        )

    def send(self, message: bytes) -> None:
        if self.closed:
            raise ServerUnavailable(f"connection to {self.address} is closed", str(self.address))
        if self.reconnects:  # what happened to the link before this request is not its fault
            self._check_monitor()
            self._drops_at_send = self._drops
        try:
            if len(message) > FRAME_SIZE:
                # ZeroMQ takes the other frames once it took the first: no half message.
                self._socket.send_multipart(protocol.split(message), zmq.NOBLOCK)
            else:
                self._socket.send(message, zmq.NOBLOCK)
        except zmq.Again:
            raise ServerUnavailable(
                f"cannot reach the fire server at {self.address}: not connected", str(self.address)
            ) from None

    def receive(self, deadline: float) -> bytes | None:
        """The next reply; None once ``time.monotonic()`` passes `deadline`."""
        spin_until_readable(self._socket, time.perf_counter() + self.spin_wait)
        while True:
            try:
                reply = self._socket.recv()
            except zmq.Again:
                self._check_monitor()
                if self._refused is not None:
                    raise AuthenticationError(self._refused) from None
                gone = self._gone()  # now, or during an earlier request (Unix sockets)
                if gone is not None:
                    raise ServerUnavailable(gone, str(self.address)) from None
                if time.monotonic() >= deadline:
                    if self.reconnects and self._ever_connected and not self._connected:
                        raise ServerUnavailable(
                            f"no reply from the fire server at {self.address}: the link to it "
                            "is down (lost, and not back yet; it reconnects by itself)",
                            str(self.address),
                        ) from None
                    return None
                continue
            if len(reply) >= FRAME_SIZE and self._socket.getsockopt(zmq.RCVMORE):
                return self._join(reply)
            return reply

    def _join(self, first: bytes) -> bytes:
        """The reply whose first chunk is `first`; a `ProtocolError` when over the bound.

        ZeroMQ delivers a multipart message whole, so its frames are all there.
        """
        frames = [first, *self._socket.recv_multipart()]
        try:
            return protocol.join(frames, self.max_message_size)
        except protocol.MessageTooLarge as exc:
            head = protocol.peek(frames, 1)
            raise ProtocolError(
                f"the reply to request {head[0] if head else '?'} from the fire server at "
                f"{self.address} is {exc.size:,} bytes, over this client's max_message_size "
                f"of {exc.limit:,} bytes (dropped): raise it with "
                "fire.connect(max_message_size=BYTES)"
            ) from None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            # Stop the monitor before closing its reader: libzmq sends monitor events
            # blocking, so an event sent to a closed reader would wedge the context's
            # I/O thread, and with it every other connection of this process.
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._socket.close(linger=0)


def _monitor(socket: zmq.Socket[bytes], events: int) -> zmq.Socket[bytes]:
    """The reader of `socket`'s `events`, whose queue has no bound.

    libzmq sends monitor events blocking, from the context's I/O thread. A connection
    nobody uses while its server is gone (a dead server's `fire.Remote`, kept until the
    run ends) retries ten times a second, one event each; with pyzmq's
    ``get_monitor_socket`` (a queue of 1,000) the I/O thread blocked once the queue was
    full, and every other connection of the process went silent with it, and
    ``disable_monitor`` hung at exit. Unbounded (``RCVHWM`` 0 on the connecting side of
    inproc), an undrained queue costs some bytes per event instead; `_check_monitor`
    empties it at every use.
    """
    address = f"inproc://fire-monitor-{id(socket):x}"
    socket.monitor(address, events)
    reader: zmq.Socket[bytes] = socket.context.socket(zmq.PAIR)
    reader.setsockopt(zmq.RCVHWM, 0)
    reader.connect(address)
    return reader


def spin_until_readable(socket: zmq.Socket[bytes], until: float) -> None:
    """Poll `socket` without sleeping until a message is there or `perf_counter()` passes
    `until`, yielding the CPU each time round (why: the module's docstring)."""
    # EVENTS is an int option (pyzmq types every option's value as int | bytes).
    events, clock = cast("Callable[[int], int]", socket.getsockopt), time.perf_counter
    while not events(_EVENTS) & _POLLIN and clock() < until:
        os.sched_yield()


def client_description() -> dict[str, object]:
    """What the client tells the server about itself, for "server held by …" messages."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "argv": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[
            :200
        ],
    }
