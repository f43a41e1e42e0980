"""The fire server's socket loop: a ZeroMQ ROUTER socket in front of a `Dispatcher`.

The loop does the I/O and nothing else: it receives each request, hands it to the
dispatcher (`fire.server.dispatch`, which holds the sessions, the handshake and the
operations, and does no I/O), and sends the replies it gets back. Its own concerns are
the socket's: binding, CURVE, frames, the connection monitor, ticks, signals, shutdown.

The loop is single-threaded: requests run one at a time in the thread that called
`serve_forever`. A socket monitor tells when a client's connection drops, so its
session is closed at once (a killed client never leaves the server stuck).

The request path is kept short, since a call should cost little more than a raw
ZeroMQ + msgpack echo: frames are received as `zmq.Frame` (whose ``more`` flag saves a
``getsockopt(RCVMORE)`` per request, and tells a request in chunks from one in a frame:
`fire.wire.protocol`); the monitor is read when the socket is idle,
before every handshake (so a new connection that reuses a dead one's file descriptor
is never closed by the old one's late "disconnected" event), and otherwise at most every
`_MONITOR_EVERY` seconds, not per request.

A TCP server is a CURVE server (`fire.net.curve`): ZeroMQ's handshake checks the client's
key before the connection carries a message, so an unknown peer never gets a session.
It has a ZeroMQ context of its own, whose ZAP handler (a thread) does that check. Its
links are watched by ZeroMQ's heartbeats (`fire.server.liveness`): one silent for the
server's ``liveness`` time is closed, which closes its session like any disconnection.
Before CURVE has checked its key, a peer can send only frames up to `protocol.FRAME_LIMIT`
(64 KiB): the socket's ``MAXMSGSIZE``, which ZeroMQ applies to every frame, handshake
commands included.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from .._version import __version__
from ..errors import FireError
from ..net.addresses import (
    Address,
    is_loopback,
    parse_address,
    prepare_socket_path,
    private_umask,
    remove_socket,
)
from ..net.curve import ServerKeys, secure_server, start_authenticator
from ..wire import protocol
from ..wire.protocol import DEFAULT_MAX_MESSAGE_SIZE, FRAME_SIZE
from ..wire.values import ValueRules
from .dispatch import Dispatcher
from .liveness import DEFAULT_LIVENESS, heartbeat_options

__all__ = ["Server", "ServerStopping", "serve"]

log = logging.getLogger("fire.server")
_POLL_MS = 200
#: While requests keep coming, the connection monitor is read at most this often (s).
_MONITOR_EVERY = 0.05
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class ServerStopping(BaseException):
    """Ends a call the server was running when told to stop (`Server.interrupt`).

    A BaseException, as KeyboardInterrupt is, so that the call's own ``except
    Exception`` does not swallow it and carry on.
    """


class Server:
    """A fire server bound to one address. Use `serve()` for the common case.

    What a framework adds is given here, to this server only (`fire.extensions`):
    `extensions` (operations and hooks; default: the counting `Scopes`) and `values`
    (`ValueRules`: descriptors that always yield references, iterables read whole).
    `max_message_size` bounds a request, in bytes (at least one frame: 64 KiB); a
    larger one is answered with a `ProtocolError` naming the limit. Over TCP, a client
    silent for `liveness` seconds is dropped (`fire.server.liveness`). The sessions,
    handshake and operations are its `dispatcher`'s (`fire.server.dispatch`).
    """

    def __init__(
        self,
        address: str | os.PathLike[str],
        *,
        curve: ServerKeys | None = None,
        extensions: Iterable[Any] = (),
        values: ValueRules | None = None,
        allow_remote: bool = False,
        versions: tuple[int, int] = protocol.PROTOCOL_VERSIONS,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        liveness: float = DEFAULT_LIVENESS,
    ) -> None:
        self.address: Address = parse_address(address)
        self._heartbeats = heartbeat_options(liveness) if self.address.is_tcp else {}
        if self.address.is_tcp:
            if curve is None:
                raise FireError(
                    "a TCP server needs CURVE keys: pass --curve-secret NAME.key_secret and "
                    "--curve-clients DIR (or curve=); make key pairs with "
                    "`python -m fire keys DIRECTORY NAME`"
                )
            if not allow_remote and not is_loopback(self.address.host or ""):
                raise FireError(
                    f"refusing to listen on {self.address.host}: TCP binds to loopback "
                    "unless --allow-remote (allow_remote=True) is given"
                )
        self.curve = curve
        self.dispatcher = Dispatcher(
            self._send,
            extensions=extensions,
            values=values,
            versions=versions,
            max_message_size=max_message_size,
        )
        #: file descriptor -> identities of the connections that spoke on it, so that the
        #: monitor's "disconnected" (which names a descriptor) closes their sessions.
        self._fds: dict[int, set[bytes]] = {}
        self._stopping = threading.Event()
        self._interrupted = False  # by a signal (`interrupt`)
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None  # made by bind()
        self._authenticator: Any = None
        self._router: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        self.endpoint: str | None = None

    # lifecycle
    def bind(self) -> str:
        """Bind the socket (0600 for Unix sockets) and return the endpoint clients use."""
        # A CURVE server's ZAP handler belongs to a context: one context per TCP server.
        self._context = zmq.Context() if self.curve is not None else zmq.Context.instance()
        router = self._context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.MAXMSGSIZE, protocol.FRAME_LIMIT)
        router.setsockopt(zmq.RCVTIMEO, _POLL_MS)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        for option, value in self._heartbeats.items():
            router.setsockopt(option, value)
        if self.address.may_be_ipv6:
            router.setsockopt(zmq.IPV6, 1)
        if self.curve is not None:
            self._authenticator = start_authenticator(self._context, self.curve)
            secure_server(router, self.curve)
        self._monitor = router.get_monitor_socket(zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED)
        path = self.address.path
        try:
            if path is not None:
                prepare_socket_path(path)
                with private_umask():
                    router.bind(self.address.endpoint)
                os.chmod(path, 0o600)
            else:
                router.bind(self.address.endpoint)
        except Exception as exc:
            router.disable_monitor()
            self._monitor.close()
            self._monitor = None
            router.close()
            self._end_context()
            if isinstance(exc, zmq.ZMQError):  # "Address already in use": a message
                raise FireError(
                    f"cannot serve at {self.address.endpoint}: {exc.strerror}"
                ) from None
            raise
        self._router = router
        self.endpoint = self.dispatcher.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        log.info("fire server %s listening at %s", __version__, self.endpoint)
        return self.endpoint

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler or another thread)."""
        self._stopping.set()

    def interrupt(self, signum: int) -> None:
        """Stop, from a handler of signal `signum` in the loop's thread (SIGTERM, SIGINT).

        An operation that runs now is ended too: `ServerStopping` is raised in it, and
        its client gets that error. Otherwise a long call (a test's ``time.sleep(60)``,
        a slow query) would hold the server past its supervisor's patience, which then
        kills it before its teardown drops the test databases. Only on the first signal:
        a second one (Ctrl-C's SIGINT, then the runner's SIGTERM) must not cut short
        the unwinding of the first call (its savepoint's rollback, its locks' release).
        """
        first = not self._interrupted
        # A plain flag, set before the event: a second signal handled while the first's
        # handler is inside `Event.set` (which holds the event's lock) must return here,
        # never wait for that lock in the same thread (a server so deadlocked kept its
        # test databases after Ctrl-C's SIGINT and its runner's SIGTERM came together).
        self._interrupted = True
        if not first:
            return
        self._stopping.set()
        if self.dispatcher.in_call:
            raise ServerStopping(
                f"the fire server got {signal.Signals(signum).name} while running this "
                "call, and stops: the call was cut short"
            )

    def close(self) -> None:
        """Close every session, the sockets, and remove the Unix socket file (and the
        directory a runner made for it: `fire.net.addresses.remove_socket`)."""
        self.dispatcher.close_sessions()  # what their closing answers is sent: still open
        if self._router is not None:
            self._router.disable_monitor()  # before its reader closes: see Transport.close
        for sock in (self._monitor, self._router):
            if sock is not None:
                sock.close(linger=0)
        self._monitor = self._router = None
        self._end_context()
        if self.address.path is not None:
            remove_socket(self.address.path)
        self.dispatcher.close()

    def _end_context(self) -> None:
        """Stop the ZAP handler and end a TCP server's own context (once its sockets closed)."""
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        if self.curve is not None and self._context is not None:
            self._context.term()
        self._context = None

    def serve_forever(self) -> None:
        """Answer requests until `stop()`; then close.

        Served from the process's main thread (a server command: ``python -m fire
        serve``, ``runfireserver``), the server owns its process, and ``breakpoint()`` in
        served code goes to the debugger a client attached, or is skipped with a warning
        (`fire.server.breakpoints`); a server in another thread leaves its process's hook.
        """
        owns_process = threading.current_thread() is threading.main_thread()
        previous_hook = sys.breakpointhook
        if owns_process:
            sys.breakpointhook = self.dispatcher.breakpoints.hook
        try:
            self._serve_forever()
        finally:
            if owns_process:
                sys.breakpointhook = previous_hook

    def _serve_forever(self) -> None:
        if self._router is None:
            self.bind()
        router = self._router
        assert router is not None
        dispatcher = self.dispatcher
        recv, handle = router.recv, dispatcher.handle
        stopping, clock = self._stopping, time.monotonic
        monitor_at = 0.0
        identity: zmq.Frame

        def greeting(key: bytes) -> None:
            """A connection without a session speaks: first close the sessions of dead
            connections (one may have had its file descriptor), then note its own."""
            self._drain_monitor()
            self._fds.setdefault(identity.get(zmq.SRCFD), set()).add(key)

        dispatcher.on_greeting = greeting
        try:
            while not stopping.is_set():
                try:
                    identity = recv(copy=False)
                except zmq.Again:
                    self._drain_monitor()
                    dispatcher.tick()
                    monitor_at = clock() + _MONITOR_EVERY
                    continue
                except zmq.ContextTerminated:
                    break
                frame = recv(copy=False)
                now = clock()
                if now >= monitor_at:
                    self._drain_monitor()
                    dispatcher.tick()
                    monitor_at = now + _MONITOR_EVERY
                if frame.more:  # a request in chunks: ZeroMQ delivers them all at once
                    chunks = [frame]
                    while chunks[-1].more:
                        chunks.append(recv(copy=False))
                    dispatcher.handle_chunks(identity.bytes, chunks)
                else:
                    handle(identity.bytes, frame)
        finally:
            dispatcher.on_greeting = None
            self.close()

    # connections
    def _drain_monitor(self) -> None:
        monitor = self._monitor
        assert monitor is not None
        while monitor.poll(0):
            event = recv_monitor_message(monitor)
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                log.warning(
                    "a client failed the CURVE handshake (protocol error %#x): it has another "
                    "public key for this server than this server's, or speaks no CURVE",
                    event["value"],
                )
            elif event["event"] & _HANDSHAKE_FAILED:  # refused keys are logged by the ZAP check
                log.info("a client's CURVE handshake ended: %s", zmq.Event(event["event"]).name)
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                for identity in self._fds.pop(event["value"], ()):
                    self.dispatcher.disconnected(identity)

    # replies
    def _send(self, identity: bytes, reply: bytes) -> None:
        """Send a reply of the dispatcher to the connection `identity` (its `send`)."""
        router = self._router
        if router is None:  # closed: a session closing after the socket has nobody to answer
            return
        try:
            # Two sends are cheaper than send_multipart's generic loop.
            router.send(identity, zmq.SNDMORE)
            if len(reply) > FRAME_SIZE:
                router.send_multipart(protocol.split(reply))
                return
            router.send(reply)
        except zmq.ZMQError as exc:  # the client is gone (ROUTER_MANDATORY): nothing to do
            log.debug("reply dropped: %s", exc)


def serve(
    address: str | os.PathLike[str],
    *,
    curve: ServerKeys | None = None,
    extensions: Iterable[Any] = (),
    values: ValueRules | None = None,
    allow_remote: bool = False,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    liveness: float = DEFAULT_LIVENESS,
    ready: Callable[[Server], None] | None = None,
) -> None:
    """Serve fire at `address` until SIGTERM or SIGINT, then clean up (socket removed).

    The keyword arguments are `Server`'s; `ready(server)` is called once it is bound.
    """
    server = Server(
        address,
        curve=curve,
        extensions=extensions,
        values=values,
        allow_remote=allow_remote,
        max_message_size=max_message_size,
        liveness=liveness,
    )
    server.bind()
    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda signum, _: server.interrupt(signum))
    try:
        if ready is not None:
            ready(server)
        server.serve_forever()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
