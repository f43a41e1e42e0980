"""The server's core, without I/O: messages in, replies out (as h11's `Connection` for HTTP).

A `Dispatcher` holds everything a server knows of its clients: their sessions (references,
shapes sent, extension state), the handshake, the table of operations and the answers
still owed (`fire.extensions.Later`). It reads and writes no socket: whoever drives it
gives it each request as bytes, with the identity of the connection it came on, and
gives it the function that delivers its replies. The ZeroMQ socket loop
(`fire.server.loop`) is one such driver; a test, or a client's in-process transport, is
another::

    replies = []
    dispatcher = Dispatcher(lambda identity, reply: replies.append((identity, reply)))
    dispatcher.handle(b"client-1", request_bytes)  # replies: [(b"client-1", reply_bytes)]

A reply is a whole encoded message (`fire.wire.protocol.encode_reply`), which the driver
cuts into frames if its transport needs to; `send(identity, reply)` is called with each,
in the order to send, before the method that caused it returns. A reply may go to
another connection than the one that spoke: an operation may answer another client's
deferred request (djfire's ``end_scope`` hands the server to the next client waiting in
``begin_scope``). The methods that cause replies:

- `handle` (a request in one buffer) and `handle_chunks` (a request in chunks, joined
  here under ``max_message_size``, or answered with the limit): a request of a
  connection without a session is its handshake;
- `tick`: the extensions answer what waits on time (a wait that ran out); call it every
  few tens of milliseconds;
- `disconnected`: a connection went away; its session closes (its references are
  released, and its scopes end, which may answer others);
- `close_sessions`, then `close`: the server stops.

All of them run in one thread, the driver's, and so do the `Later` answers, given from
within one of these calls. `on_greeting`, when given, is called with the identity of a
connection without a session before its message is read as a handshake: the socket
loop reads its disconnection events there, so that a dead connection's session is
closed before a new connection that reuses its file descriptor opens one.

(Replies are handed to a function rather than returned as a list: a list made per
request would be the only work this split added to a call.)
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgpack

from .._version import __version__
from ..errors import FireError, ProtocolError, error_to_wire
from ..extensions import Later, Scopes, release_hook, request_context
from ..wire import protocol
from ..wire.clock import wall_time
from ..wire.codec import plain_codec
from ..wire.handshake import greet
from ..wire.protocol import DEFAULT_MAX_MESSAGE_SIZE, FRAME_SIZE, Status
from ..wire.values import ValueRules
from .breakpoints import Breakpoints
from .exception_data import describe_exception
from .operations import OPERATIONS
from .post_mortem import Failures
from .session import Session
from .shapes import ShapeTable
from .stepping import stepped_call

__all__ = ["Dispatcher", "Send"]

log = logging.getLogger("fire.server")
_plain = plain_codec()

#: How a dispatcher's replies leave: ``send(identity, reply)``, the identity of the
#: connection the encoded reply goes to.
Send = Callable[[bytes, bytes], None]

#: How to raise the bound on a request, for the message of a request over it.
_RAISE_LIMIT = (
    "the server command's --max-message-size BYTES (`python -m fire serve` has it, and so "
    "do the frameworks' commands), or fire.Server(max_message_size=BYTES)"
)


class Dispatcher:
    """A fire server's sessions, handshake and operations, driven by messages (no I/O).

    Replies go to `send` (`Send`). `extensions` (operations and hooks; default: the
    counting `Scopes`) and `values` (`ValueRules`) are what a framework adds
    (`fire.extensions`). `versions` is the range of protocol versions spoken;
    `max_message_size` bounds a request in chunks, in bytes.
    `endpoint` is what ``info`` reports as the server's address (the driver sets it).
    """

    def __init__(
        self,
        send: Send,
        *,
        extensions: Iterable[Any] = (),
        values: ValueRules | None = None,
        versions: tuple[int, int] = protocol.PROTOCOL_VERSIONS,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        on_greeting: Callable[[bytes], None] | None = None,
    ) -> None:
        if max_message_size < FRAME_SIZE:
            raise FireError(
                f"max_message_size must be at least {FRAME_SIZE} bytes (one frame), "
                f"not {max_message_size}"
            )
        self.send = send
        self.versions = versions
        self.max_message_size = max_message_size
        self.on_greeting = on_greeting
        self.endpoint: str | None = None
        self.extensions = list(extensions) or [Scopes()]
        self.operations: dict[str, Callable[..., Any]] = dict(OPERATIONS)
        self.operations.update(ping=lambda session: "pong", info=self._info)
        self.operations.update(
            debug_attach=self._debug_attach,
            debug_start=lambda session, number: self._failures_of(session).start(number),
            debug_input=self._debug_input,
            debug_call=self._debug_call,
        )
        #: Where ``breakpoint()`` in served code goes (`fire.server.breakpoints`).
        self.breakpoints = Breakpoints()
        #: identity -> the kept failure of a session that asked (`fire.server.post_mortem`).
        self._failures: dict[bytes, Failures] = {}
        for extension in self.extensions:
            for name, function in extension.operations().items():
                if name in self.operations:
                    raise FireError(f"extension {extension.name!r} redefines operation {name!r}")
                # Extension operations take [args, kwargs] (see Remote.call_extension).
                self.operations[name] = _with_keywords(function)
        self._has_request_context = any(hasattr(e, "request_context") for e in self.extensions)
        self._release_references = release_hook(self.extensions)
        self._ticks = [e.tick for e in self.extensions if hasattr(e, "tick")]
        self.values = values or ValueRules()
        self._shapes = ShapeTable(self.values)
        #: identity -> session: a connection has one from its accepted hello on.
        self.sessions: dict[bytes, Session] = {}
        #: Reference ids, unique across this server's sessions (see `Session`).
        self._ref_ids = itertools.count(1)
        #: Whether an operation runs now: a stopping server's signal handler ends it
        #: (`fire.server.loop.Server.interrupt`), and nothing else.
        self.in_call = False

    # driving
    def handle(self, identity: bytes, message: Any) -> None:
        """Answer one request (bytes or any buffer) of the connection `identity`."""
        try:
            request = protocol.decode_request(message)
        except ProtocolError as exc:
            self._fail(identity, None, exc)
            return
        session = self.sessions.get(identity)
        if session is None:
            if self.on_greeting is not None:
                self.on_greeting(identity)
            self._greet(identity, request)
            return
        request_id, operation, arguments, releases = request
        if releases:
            self._release(session, session.take(releases))
        function = self.operations.get(operation)
        if function is None:
            self._fail(identity, request_id, ProtocolError(f"unknown operation {operation!r}"))
            return
        try:
            args = session.codec.unpack(arguments)
            if not isinstance(args, list):
                raise FireError("arguments must be a list")
        except Exception as exc:
            self._fail(identity, request_id, ProtocolError(f"bad arguments: {exc}"))
            return
        self.in_call = True
        try:
            if self._has_request_context:
                with request_context(self.extensions, session, operation):
                    result = function(session, *args)
            else:
                result = function(session, *args)
            status = Status.OK
        except FireError as exc:
            self.in_call = False
            self._fail(identity, request_id, exc)
            return
        except BaseException as exc:
            self.in_call = False
            if isinstance(exc, KeyboardInterrupt):
                raise
            result, status = describe_exception(exc), Status.RAISED
            failures = self._failures.get(identity)
            if failures is not None and failures.keep:
                result["failure"], dropped = failures.kept(exc)
                if dropped is not None:
                    self._release(session, [dropped])
        self.in_call = False
        if type(result) is Later:
            result._reply = self._answer_later(identity, request_id, session)
            return
        self._reply(identity, request_id, session, status, result)

    def handle_chunks(self, identity: bytes, chunks: Sequence[Any]) -> None:
        """Answer a request that came in chunks (`fire.wire.protocol.split`), in order.

        One over `max_message_size` is answered with the limit and how to raise it,
        before anything is copied; its releases are honoured, so a refused request
        leaves no reference behind.
        """
        try:
            message = protocol.join(chunks, self.max_message_size)
        except protocol.MessageTooLarge as exc:
            head = protocol.peek(chunks, 3)
            request_id = head[0] if head and isinstance(head[0], int) else None
            session = self.sessions.get(identity)
            if session is not None and head and isinstance(head[2], list):
                self._release(session, session.take([r for r in head[2] if isinstance(r, int)]))
            self._fail(
                identity,
                request_id,
                ProtocolError(
                    f"a request of {exc.size:,} bytes is over this server's max_message_size "
                    f"of {exc.limit:,} bytes: send less, or raise the limit ({_RAISE_LIMIT})"
                ),
            )
            return
        self.handle(identity, message)

    def tick(self) -> None:
        """Let the extensions answer what waits on time (`Later` answers past a deadline)."""
        for tick in self._ticks:
            try:
                tick()
            except Exception:
                log.exception("an extension's tick failed")

    def disconnected(self, identity: bytes) -> None:
        """The connection `identity` went away: close its session, if it has one."""
        session = self.sessions.get(identity)
        if session is not None:
            self._close_session(session, "client disconnected")

    def close_sessions(self) -> None:
        """Close every session (the server stops)."""
        for session in list(self.sessions.values()):
            self._close_session(session, "server stopping")

    def close(self) -> None:
        """Close what the extensions hold (after `close_sessions`)."""
        for extension in self.extensions:
            if hasattr(extension, "close"):
                extension.close()

    # sessions
    def _greet(self, identity: bytes, request: protocol.Request) -> None:
        """Open a session for a ``hello`` the server accepts (`fire.wire.handshake`), or refuse."""
        try:
            args = _plain.unpack(request.arguments)
        except Exception:
            args = None
        greeting = greet(request.operation, args, self.versions)
        if greeting.refusal is not None:
            self._fail(identity, request.request_id, greeting.refusal)
            return
        session = Session(identity, self._shapes, self.values, self._ref_ids)
        session.client = greeting.client
        sent = greeting.client.get("time")
        if isinstance(sent, (int, float)):
            session.clock_offset = wall_time() - sent
        session.version = greeting.version
        session.max_reply_size = greeting.max_reply_size
        self.sessions[identity] = session
        body = _plain.pack(self._info(session))
        self.send(identity, protocol.encode_reply(request.request_id, Status.OK, body, None))

    def _close_session(self, session: Session, why: str) -> None:
        self.sessions.pop(session.identity, None)
        session.undo.close()  # its patches and clocks first: the process is the others' too
        for extension in self.extensions:
            if hasattr(extension, "session_closed"):
                try:
                    extension.session_closed(session)
                except Exception:
                    log.exception("extension %s failed to close a session", extension.name)
        self._release(session, session.take_all())
        self.breakpoints.detach(session.identity)
        failures = self._failures.pop(session.identity, None)
        dropped = failures.drop() if failures is not None else None
        if dropped is not None:
            self._release(session, [dropped])
        log.info("session of %s closed: %s", session.describe(), why)
        session.close()

    def _release(self, session: Session, objects: list[Any]) -> None:
        """Drop the objects of released references: where an extension says (see there)."""
        if self._release_references is None or not objects:
            return  # dropped with the list, here
        try:
            self._release_references(session, objects)
        except Exception:
            log.exception("an extension failed to release references of %s", session.describe())

    # debugging (fire.server.post_mortem, fire.server.breakpoints, fire.server.stepping)
    def _debug_attach(self, session: Session, options: dict[str, Any]) -> dict[str, Any]:
        """``debug_attach``: keep this session's failed calls for a post-mortem
        (``post_mortem``), and send ``breakpoint()`` to its debugger (``breakpoints``, a
        Unix socket path, or None)."""
        if not isinstance(options, dict):
            raise FireError("debug_attach takes a dict of options")
        failures = self._failures_of(session)
        failures.keep = bool(options.get("post_mortem"))
        if not failures.keep:
            dropped = failures.drop()
            if dropped is not None:
                self._release(session, [dropped])
        address = options.get("breakpoints")
        self.breakpoints.attach(session.identity, address if isinstance(address, str) else None)
        return {"post_mortem": failures.keep, "breakpoints": bool(address)}

    def _debug_input(self, session: Session, line: object) -> dict[str, Any]:
        """``debug_input``: one pdb command; once pdb ends, the failure is let go (its
        frames' objects dropped where the extensions say)."""
        failures = self._failures_of(session)
        answer = failures.command(str(line))
        if answer["ended"]:
            dropped = failures.drop()
            if dropped is not None:
                self._release(session, [dropped])
        return answer

    def _debug_call(
        self, session: Session, target: Any, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        """``debug_call``: ``call``, stopping at the function's first line in the
        session's debugger (the test's pdb stepped onto it: `fire.server.stepping`); a
        plain call for a session that attached none."""
        function = session.resolve(target)
        address = self.breakpoints.address_of(session.identity)
        if address is None:
            return function(*args, **kwargs)
        return stepped_call(address, function, args, kwargs)

    def _failures_of(self, session: Session) -> Failures:
        failures = self._failures.get(session.identity)
        if failures is None:
            failures = self._failures[session.identity] = Failures()
        return failures

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

    # replies
    def _fail(self, identity: bytes, request_id: int | None, error: FireError) -> None:
        body = _plain.pack(error_to_wire(error))
        self.send(identity, protocol.encode_reply(request_id, Status.FIRE_ERROR, body, None))

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
                self._fail(identity, request_id, error)
            else:
                self._reply(identity, request_id, session, Status.RAISED, describe_exception(error))

        return reply

    def _reply(
        self, identity: bytes, request_id: int, session: Session, status: Status, result: Any
    ) -> None:
        refs_before = len(session.refs)
        try:
            body = session.codec.pack(result)
        except Exception as exc:
            session.reply_not_sent(refs_before)
            self._fail(identity, request_id, ProtocolError(f"cannot encode result: {exc}"))
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
                ProtocolError(
                    f"the reply of {len(reply):,} bytes is over this client's max_message_size "
                    f"of {session.max_reply_size:,} bytes: return less, or raise the client's "
                    "limit (fire.connect(max_message_size=BYTES))"
                ),
            )
            return
        self.send(identity, reply)


def _with_keywords(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(session: Session, args: list[Any], kwargs: dict[str, Any]) -> Any:
        return function(session, *args, **kwargs)

    return call
