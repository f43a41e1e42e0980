"""The fire server: a ZeroMQ ROUTER socket, one session per client, a table of operations.

The loop is single-threaded: requests run one at a time in the thread that called
`serve_forever`. A socket monitor tells when a client's connection drops, so its
references and open scopes are freed at once (a killed client never leaves the server
stuck).

The request path is kept short, since a call should cost little more than a raw
ZeroMQ + msgpack echo: frames are received as `zmq.Frame` (whose ``more`` flag saves a
``getsockopt(RCVMORE)`` per request, and tells a request in chunks from one in a frame:
`fire.wire.protocol`); the monitor is read when the socket is idle,
before every handshake (so a new connection that reuses a dead one's file descriptor
is never closed by the old one's late "disconnected" event), and otherwise at most every
`_MONITOR_EVERY` seconds, not per request; and the extensions' request contexts are
entered only when an extension has one.

A TCP server is a CURVE server (`fire.net.curve`): ZeroMQ's handshake checks the client's
key before the connection carries a message, so an unknown peer never gets a session.
It has a ZeroMQ context of its own, whose ZAP handler (a thread) does that check. Before
it, a peer can send only frames up to `protocol.FRAME_LIMIT` (64 KiB): the socket's
``MAXMSGSIZE``, which ZeroMQ applies to every frame, handshake commands included.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgpack
import zmq
from zmq.utils.monitor import recv_monitor_message

from .._version import __version__
from ..errors import FireError, ProtocolError
from ..extensions import Later, Scopes, release_hook, request_context
from ..net.addresses import Address, is_loopback, parse_address, prepare_socket_path, private_umask
from ..net.curve import ServerKeys, secure_server, start_authenticator
from ..wire import protocol
from ..wire.codec import plain_codec
from ..wire.handshake import Event as HandshakeEvent
from ..wire.handshake import Handshake, greet
from ..wire.handshake import State as HandshakeState
from ..wire.protocol import DEFAULT_MAX_MESSAGE_SIZE, FRAME_SIZE, Status
from ..wire.values import ValueRules
from .exception_data import describe_exception
from .operations import OPERATIONS
from .session import Session
from .shapes import ShapeTable

__all__ = ["Server", "serve"]

log = logging.getLogger("fire.server")
_plain = plain_codec()
_POLL_MS = 200
#: While requests keep coming, the connection monitor is read at most this often (s).
_MONITOR_EVERY = 0.05
#: How to raise the bound on a request, for the message of a request over it.
_RAISE_LIMIT = (
    "the server command's --max-message-size BYTES (`python -m fire serve` has it, and so "
    "do the frameworks' commands), or fire.Server(max_message_size=BYTES)"
)
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class Server:
    """A fire server bound to one address. Use `serve()` for the common case.

    What a framework adds is given here, to this server only (`fire.extensions`):
    `extensions` (operations and hooks; default: the counting `Scopes`) and `values`
    (`ValueRules`: descriptors that always yield references, iterables read whole).
    `max_message_size` bounds a request, in bytes (at least one frame: 64 KiB); a
    larger one is answered with a `ProtocolError` naming the limit.
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
    ) -> None:
        self.address: Address = parse_address(address)
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
        if max_message_size < FRAME_SIZE:
            raise FireError(
                f"max_message_size must be at least {FRAME_SIZE} bytes (one frame), "
                f"not {max_message_size}"
            )
        self.curve = curve
        self.versions = versions
        self.max_message_size = max_message_size
        self.extensions = list(extensions) or [Scopes()]
        self.operations: dict[str, Callable[..., Any]] = dict(OPERATIONS)
        self.operations.update(ping=lambda session: "pong", info=self._info)
        for extension in self.extensions:
            for name, function in extension.operations().items():
                if name in self.operations:
                    raise FireError(f"extension {extension.name!r} redefines operation {name!r}")
                # Extension operations take [args, kwargs] (see Remote.call_extension).
                self.operations[name] = _with_keywords(function)
        self._has_request_context = any(hasattr(e, "request_context") for e in self.extensions)
        self._release_references = release_hook(self.extensions)
        self._ticks = [e.tick for e in self.extensions if hasattr(e, "tick")]
        self.sessions: dict[bytes, Session] = {}
        self._fds: dict[int, set[bytes]] = {}
        self.values = values or ValueRules()
        self._shapes = ShapeTable(self.values)
        self._stopping = threading.Event()
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
        self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        log.info("fire server %s listening at %s", __version__, self.endpoint)
        return self.endpoint

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler or another thread)."""
        self._stopping.set()

    def close(self) -> None:
        """Close every session, the sockets, and remove the Unix socket file."""
        for session in list(self.sessions.values()):
            self._close_session(session, "server stopping")
        if self._router is not None:
            self._router.disable_monitor()  # before its reader closes: see Transport.close
        for sock in (self._monitor, self._router):
            if sock is not None:
                sock.close(linger=0)
        self._monitor = self._router = None
        self._end_context()
        if self.address.path is not None:
            self.address.path.unlink(missing_ok=True)
        for extension in self.extensions:
            if hasattr(extension, "close"):
                extension.close()

    def _end_context(self) -> None:
        """Stop the ZAP handler and end a TCP server's own context (once its sockets closed)."""
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        if self.curve is not None and self._context is not None:
            self._context.term()
        self._context = None

    def serve_forever(self) -> None:
        """Answer requests until `stop()`; then close."""
        if self._router is None:
            self.bind()
        router = self._router
        assert router is not None
        recv, handle, stopping, clock = router.recv, self._handle, self._stopping, time.monotonic
        monitor_at = 0.0
        request: zmq.Frame | bytes | None  # one frame, or a request's chunks joined
        try:
            while not stopping.is_set():
                try:
                    identity = recv(copy=False)
                except zmq.Again:
                    self._drain_monitor()
                    self._tick()
                    monitor_at = clock() + _MONITOR_EVERY
                    continue
                except zmq.ContextTerminated:
                    break
                request = frame = recv(copy=False)
                if frame.more:
                    request = self._join(identity, frame)
                    if request is None:
                        continue
                now = clock()
                if now >= monitor_at:
                    self._drain_monitor()
                    self._tick()
                    monitor_at = now + _MONITOR_EVERY
                handle(identity, request)
        finally:
            self.close()

    def _tick(self) -> None:
        """Let the extensions answer what waits on time (`Later` answers past a deadline)."""
        for tick in self._ticks:
            try:
                tick()
            except Exception:
                log.exception("an extension's tick failed")

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
                    session = self.sessions.get(identity)
                    if session is not None:
                        self._close_session(session, "client disconnected")

    def _close_session(self, session: Session, why: str) -> None:
        self.sessions.pop(session.identity, None)
        if session.fd is not None:
            self._fds.get(session.fd, set()).discard(session.identity)
        for extension in self.extensions:
            if hasattr(extension, "session_closed"):
                try:
                    extension.session_closed(session)
                except Exception:
                    log.exception("extension %s failed to close a session", extension.name)
        self._release(session, session.take_all())
        log.info("session of %s closed: %s", session.describe(), why)
        session.handshake.receive(HandshakeEvent.CLOSE)
        session.close()

    def _release(self, session: Session, objects: list[Any]) -> None:
        """Drop the objects of released references: where an extension says (see there)."""
        if self._release_references is None or not objects:
            return  # dropped with the list, here
        try:
            self._release_references(session, objects)
        except Exception:
            log.exception("an extension failed to release references of %s", session.describe())

    # requests
    def _join(self, identity: zmq.Frame, first: zmq.Frame) -> bytes | None:
        """The request a message in chunks carries; None once one over the bound is answered.

        ZeroMQ delivers a multipart message whole, so its frames are all there. A request
        over `max_message_size` is answered with the limit and how to raise it; its
        releases are honoured, so a refused request leaves no reference behind.
        """
        router = self._router
        assert router is not None
        frames = [first]
        while frames[-1].more:
            frames.append(router.recv(copy=False))
        try:
            return protocol.join(frames, self.max_message_size)
        except protocol.MessageTooLarge as exc:
            head = protocol.peek(frames, 3)
            request_id = head[0] if head and isinstance(head[0], int) else None
            session = self.sessions.get(identity.bytes)
            if session is not None and head and isinstance(head[2], list):
                self._release(session, session.take([r for r in head[2] if isinstance(r, int)]))
            self._fail(
                identity,
                request_id,
                "ProtocolError",
                f"a request of {exc.size:,} bytes is over this server's max_message_size of "
                f"{exc.limit:,} bytes: send less, or raise the limit ({_RAISE_LIMIT})",
            )
            return None

    def _send(self, identity: zmq.Frame | bytes, reply: bytes) -> None:
        router = self._router
        assert router is not None
        try:
            # Two sends are cheaper than send_multipart's generic loop.
            router.send(identity, zmq.SNDMORE)
            if len(reply) > FRAME_SIZE:
                router.send_multipart(protocol.split(reply))
                return
            router.send(reply)
        except zmq.ZMQError as exc:  # the client is gone (ROUTER_MANDATORY): nothing to do
            log.debug("reply dropped: %s", exc)

    def _fail(
        self, identity: zmq.Frame | bytes, request_id: int | None, kind: str, message: str
    ) -> None:
        body = _plain.pack([kind, message])
        self._send(identity, protocol.encode_reply(request_id, Status.FIRE_ERROR, body, None))

    def _handle(self, identity: zmq.Frame, message: zmq.Frame | bytes) -> None:
        """Answer one request (a frame, or chunks joined) from the client `identity`."""
        try:
            # A zmq.Frame has the buffer protocol; pyzmq's stub does not declare __buffer__.
            request = protocol.decode_request(message)  # type: ignore[arg-type]
        except ProtocolError as exc:
            self._fail(identity, None, "ProtocolError", str(exc))
            return
        session = self.sessions.get(identity.bytes)
        if session is None:
            self._drain_monitor()  # first, so a dead connection's session is closed
            self._handshake(identity, request)
            return
        request_id, operation, arguments, releases = request
        if releases:
            self._release(session, session.take(releases))
        function = self.operations.get(operation)
        if function is None:
            self._fail(identity, request_id, "ProtocolError", f"unknown operation {operation!r}")
            return
        try:
            args = session.codec.unpack(arguments)
            if not isinstance(args, list):
                raise FireError("arguments must be a list")
        except Exception as exc:
            self._fail(identity, request_id, "ProtocolError", f"bad arguments: {exc}")
            return
        try:
            if self._has_request_context:
                with request_context(self.extensions, session, operation):
                    result = function(session, *args)
            else:
                result = function(session, *args)
            status = Status.OK
        except FireError as exc:
            self._fail(identity, request_id, type(exc).__name__, str(exc))
            return
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            result, status = describe_exception(exc), Status.RAISED
        if type(result) is Later:
            result._reply = self._answer_later(identity.bytes, request_id, session)
            return
        self._reply(identity, request_id, session, status, result)

    def _answer_later(
        self, identity: bytes, request_id: int, session: Session
    ) -> Callable[[Any, BaseException | None], None]:
        """How a `Later` an operation returned answers its request."""

        def reply(value: Any, error: BaseException | None) -> None:
            if self.sessions.get(identity) is not session:
                return  # the client left: nothing to answer
            if error is None:
                self._reply(identity, request_id, session, Status.OK, value)
            elif isinstance(error, FireError):
                self._fail(identity, request_id, type(error).__name__, str(error))
            else:
                self._reply(identity, request_id, session, Status.RAISED, describe_exception(error))

        return reply

    def _reply(
        self,
        identity: zmq.Frame | bytes,
        request_id: int,
        session: Session,
        status: Status,
        result: Any,
    ) -> None:
        refs_before = len(session.refs)
        try:
            body = session.codec.pack(result)
        except Exception as exc:
            session.reply_not_sent(refs_before)
            self._fail(identity, request_id, "ProtocolError", f"cannot encode result: {exc}")
            return
        shapes = session.take_new_shapes()
        reply = protocol.encode_reply(
            request_id, status, body, None if shapes is None else msgpack.packb(shapes)
        )
        if len(reply) > session.max_reply_size:
            session.reply_not_sent(refs_before, shapes)
            self._fail(
                identity,
                request_id,
                "ProtocolError",
                f"the reply of {len(reply):,} bytes is over this client's max_message_size of "
                f"{session.max_reply_size:,} bytes: return less, or raise the client's limit "
                "(fire.connect(max_message_size=BYTES))",
            )
            return
        self._send(identity, reply)

    def _handshake(self, identity: zmq.Frame, request: Any) -> None:
        """Feed a message of a connection without a session to `fire.wire.handshake`."""
        try:
            args = _plain.unpack(request.arguments)
        except Exception:
            args = None
        handshake = Handshake()
        greeting = greet(request.operation, args, self.versions)
        if handshake.receive(greeting.event) is not HandshakeState.OPEN:
            assert greeting.refusal is not None
            self._fail(identity, request.request_id, *greeting.refusal)
            return
        fd = identity.get(zmq.SRCFD)
        session = Session(identity.bytes, self._shapes, fd, self.values)
        session.handshake = handshake
        session.client = greeting.client
        session.version = greeting.version
        session.max_reply_size = greeting.max_reply_size
        self.sessions[identity.bytes] = session
        self._fds.setdefault(fd, set()).add(identity.bytes)
        self._send(
            identity,
            protocol.encode_reply(
                request.request_id, Status.OK, _plain.pack(self._info(session)), None
            ),
        )

    def _info(self, session: Session) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "fire_version": __version__,
            "python": sys.version.split()[0],
            "protocol": session.version,
            "protocol_versions": list(self.versions),
            "endpoint": self.endpoint,
            "extensions": {e.name: e.info() if hasattr(e, "info") else {} for e in self.extensions},
            "refs": len(session.refs),
            "total_refs": sum(len(s.refs) for s in self.sessions.values()),
            "sessions": len(self.sessions),
        }


def _with_keywords(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(session: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
        return function(session, *args, **kwargs)

    return call


def serve(
    address: str | os.PathLike[str],
    *,
    curve: ServerKeys | None = None,
    extensions: Iterable[Any] = (),
    values: ValueRules | None = None,
    allow_remote: bool = False,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
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
    )
    server.bind()
    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: server.stop())
    try:
        if ready is not None:
            ready(server)
        server.serve_forever()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
