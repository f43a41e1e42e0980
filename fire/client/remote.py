"""`Remote`: a connection to one fire server, and the entry point to its modules."""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

import msgpack
from tblib import Traceback

from ..errors import (
    FireError,
    HandshakeRequired,
    ProtocolError,
    RemoteError,
    ServerBusy,
    ServerUnavailable,
    error_from_wire,
    remote_exception_class,
)
from ..net.addresses import parse_address
from ..net.base import Transport
from ..net.curve import ClientKeys
from ..net.transport import (
    DEFAULT_HEARTBEAT_TIMEOUT,
    DEFAULT_SPIN_WAIT,
    DEFAULT_TIMEOUT,
    LinkLost,
    ZeroMQTransport,
    client_description,
)
from ..wire import protocol
from ..wire.clock import wall_time
from ..wire.codec import EXT_ARGREF, EXT_REF, CannotSend, Codec, plain_codec
from ..wire.protocol import CALLABLE, Status
from .clock import RemoteClock
from .debugging import paused_since
from .patches import Patch
from .proxy import CallableProxy, Proxy

__all__ = ["Remote", "connect"]

_plain = plain_codec()
#: A reply's status, body and shapes (`protocol.decode_reply` without the request id).
_Reply = tuple[Status, bytes, bytes | None]
_NO_RELEASES: list[int] = []  # shared and never changed: see Remote._request
#: `Remote.patch`'s ``new`` when none is given (None is a value to patch in).
_DEFAULT = object()


class Remote:
    """A connection to a fire server. Prefer `fire.connect()`; use it as a context manager.

    One `Remote` may be shared by threads: each exchange holds the connection's lock.

    The messages travel over a `transport` (`fire.net.base.Transport`): by default a
    `ZeroMQTransport` to `address`, made with `curve`, `start_command`,
    `max_message_size`, `spin_wait` and `heartbeat_timeout` (`connect` says what each one
    does). Given a
    transport, give no address and none of those: they are the transport's.
    """

    def __init__(
        self,
        address: str | os.PathLike[str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        curve: ClientKeys | None = None,
        name: str | None = None,
        versions: tuple[int, int] = protocol.PROTOCOL_VERSIONS,
        start_command: str | None = None,
        max_message_size: int = protocol.DEFAULT_MAX_MESSAGE_SIZE,
        spin_wait: float = DEFAULT_SPIN_WAIT,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        transport: Transport | None = None,
    ) -> None:
        if transport is None:
            if address is None:
                raise FireError("fire.Remote needs the server's address (or a transport)")
            transport = ZeroMQTransport(
                parse_address(address),
                curve=curve,
                start_command=start_command,
                max_message_size=max_message_size,
                spin_wait=spin_wait,
                heartbeat_timeout=heartbeat_timeout,
            )
        elif address is not None or (
            (curve, start_command, max_message_size, spin_wait, heartbeat_timeout)
            != (
                None,
                None,
                protocol.DEFAULT_MAX_MESSAGE_SIZE,
                DEFAULT_SPIN_WAIT,
                DEFAULT_HEARTBEAT_TIMEOUT,
            )
        ):
            raise FireError(
                "fire.Remote was given a transport and an address or socket options "
                "(curve, start_command, max_message_size, spin_wait, heartbeat_timeout): "
                "those are the transport's, give them to it"
            )
        self._transport = transport
        self.address = transport.address
        self.name = name or str(self.address)
        #: Seconds to wait for each reply before raising `ServerUnavailable`.
        self.timeout = timeout
        #: Held across each request and the wait for its reply (threads share a Remote).
        self._lock = threading.RLock()
        #: The id of the last request sent (ids count from 1 on each connection).
        self._last_id = 0
        #: request id -> what to name it by, for requests sent without waiting: their
        #: replies are read on the way to a later one's (see `_wait`).
        self._unanswered: dict[int, str] = {}
        #: (name, status, body) of those that failed, raised by the next request.
        self._late_failures: list[tuple[str, Status, bytes]] = []
        #: shape id -> the shape the server sent. Read with a proxy's shape, which is None
        #: when the server sent it none: None is never a key, and reads as unknown.
        self._shapes: dict[int | None, list[Any]] = {}
        #: shape id -> what a reference of that shape becomes: `Proxy`, `CallableProxy`,
        #: or the local class standing for a remote exception class (see `_add_shapes`).
        self._shape_classes: dict[int | None, type] = {}
        #: Reference ids to release with the next request: appended from any thread (a
        #: proxy's finalizer), taken one by one (see `_take_releases`).
        self._releases: deque[int] = deque()
        #: name -> module proxy: a module is imported once per server process, so its
        #: proxy is fetched once per connection (see `module`).
        self._modules: dict[str, Any] = {}
        self._codec = Codec(self._encode_argument, self._decode_reference)
        #: How many times this connection greeted the server again (`_greet_again`), and
        #: that count for each scope begun and not ended yet, innermost last.
        self._sessions = 0
        self._scopes: list[int] = []
        #: Requests that set this connection's session up (``debug_attach``), sent again
        #: to each new session (`_greet_again`).
        self._session_settings: list[tuple[str, list[Any]]] = []
        try:
            self._info = self._handshake(versions)
        except BaseException:
            self._transport.close()
            raise
        self.protocol_version: int = self._info["protocol"]

    # lifecycle
    @property
    def closed(self) -> bool:
        return self._transport.closed

    def close(self) -> None:
        """Close the connection; the server frees this client's references and scopes.

        Ctrl-C (KeyboardInterrupt) while a request waits for its reply closes it too.
        """
        self._transport.close()

    @property
    def server_info(self) -> dict[str, Any]:
        """What the server said of itself in the handshake, as `info()` would, without a
        round trip (so also once the connection is closed)."""
        return self._info

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"protocol {self.protocol_version}"
        return f"<fire.Remote {self.name!r} at {self.address} ({state})>"

    # public operations
    def module(self, name: str) -> Any:
        """Import module `name` on the server and return a proxy of it.

        The proxy is kept: asking again for the same name costs no round trip and gives
        the same proxy, as ``importlib.import_module`` gives the same module (a test
        that asks for its modules in every test pays for them once per connection).
        """
        found = self._modules.get(name)
        if found is None:
            found = self._modules[name] = self._request("module", [name])
        return found

    def ping(self) -> float:
        """Round-trip time to the server, in seconds."""
        start = time.perf_counter()
        self._request("ping", [])
        return time.perf_counter() - start

    def info(self) -> dict[str, Any]:
        """Server pid, fire and Python versions, protocol version, extensions, live references."""
        return self._request("info", [])

    def call_extension(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """Call an operation a server extension registered (djfire's `begin_scope`, …)."""
        return self._request(operation, [list(args), kwargs])

    def begin_scope(
        self,
        kind: str = "test",
        *,
        transactional: bool = False,
        wait: float = 60.0,
        **options: Any,
    ) -> int:
        """Open a test scope on the server (a transaction on every database, with djfire).

        When another client holds the server, wait for up to `wait` seconds, in line
        with the other waiting clients (first come, first served), then raise
        `ServerBusy` naming the holder. Returns the new scope depth. A scope asked for
        ahead with the same arguments (`begin_next_scope`) is taken: the server has
        opened it already.

        A failure of a request sent earlier without waiting (a test scope's end) is
        raised here, and the scope this begin opened is ended again: no test runs in
        a scope whose predecessor's end failed unseen. Nor does one begin inside a scope
        lost with its session (`_greet_again`): that raises `HandshakeRequired`.
        """
        if self._scopes and self._scopes[0] != self._sessions:
            raise HandshakeRequired(
                f"the fire server at {self.address} lost this connection's session with a "
                "scope still open around this one (a class's or module's): it was rolled "
                "back, so the tests in it fail until it ends",
                str(self.address),
            )
        kwargs = {"transactional": transactional, **options}
        features = self._begin_features()
        if "wait" in features:
            kwargs["wait"] = wait
            if "deadline" in features:  # a begin that comes after this gives up opens nothing
                kwargs["deadline"] = wall_time() + wait + self.timeout
            return self._begin(kwargs, kind, wait + self.timeout)
        deadline = time.monotonic() + wait  # a server that answers busy at once: retry
        delay = 0.01
        while True:
            try:
                return self._begin(kwargs, kind, None)
            except ServerBusy as exc:
                if getattr(exc, "fire_late", False) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def _begin(self, kwargs: dict[str, Any], kind: str, timeout: float | None) -> int:
        status, value = self._exchange("begin_scope", [[kind], kwargs], timeout)
        if self._late_failures:
            if status is Status.OK:  # opened, but the test will not run: ended again
                self._send_without_waiting("end_scope", [[], {}])
            self._raise_late_failure()
        depth: int = self._outcome(status, value)
        self._scopes.append(self._sessions)
        return depth

    def _begin_features(self) -> list[str]:
        scopes = self._info.get("extensions", {}).get("scopes", {})
        return scopes.get("begin", []) if isinstance(scopes, dict) else []

    def begin_next_scope(
        self, kind: str = "test", *, transactional: bool = False, wait: float = 60.0, **options: Any
    ) -> None:
        """Ask now for the scope the next `begin_scope` with these arguments opens.

        The request is sent without waiting, so the server opens the scope while the
        client does something else (the runners ask as a test ends, for the next test);
        that `begin_scope` then takes it, a round trip without the server's work. A
        djfire server opens it only if it is free for this client at once (the request
        never waits in line, and another client that begins closes it while it is all
        this client holds); when nothing was opened, `begin_scope` begins as usual. Until
        taken, the scope is not the test's: live HTTP requests (a browser's last fetch
        of the test before) run outside every test, and any other request of this
        client but ``ping`` and ``info`` closes it first, on the server, in order. A
        transactional scope is never asked for ahead (closing it unused would flush
        every table), nor is any on a server that cannot take one (this does nothing).
        """
        if transactional or "ahead" not in self._begin_features():
            return
        self._send_without_waiting(
            "begin_scope",
            [[kind], {"transactional": False, "ahead": True, "wait": wait, **options}],
            track=False,  # its answer concerns no one: the begin that takes it has its own
        )

    def end_scope(self, *, wait: bool = True, of: str | None = None) -> int | None:
        """Close the innermost scope: everything done in it is rolled back.

        Returns the depth left. With ``wait=False`` (the runners' test scopes) it does not
        wait for the server: the request is sent, the client goes on, and the server's
        answer is read with the next reply, where a failure to close the scope is raised
        naming ``end_scope`` and `of`, what the scope was for (the runners give the
        test's id, so a failure read in the next test names the test it belongs to).
        Returns None then. A scope whose end fails is closed all the same: rolled back
        on the server as soon as its connections are free. A scope of a session the
        server closed (the link was lost: `_greet_again`) was rolled back with it:
        nothing is sent, and the depth returned is 0.
        """
        if self._scopes and self._scopes.pop() != self._sessions:
            return 0 if wait else None
        if wait:
            return self.call_extension("end_scope")
        described = f"end_scope of {of}" if of else "end_scope"
        self._send_without_waiting("end_scope", [[], {}], described=described)
        return None

    def sync(self) -> None:
        """Read the replies of requests sent without waiting; raise the first that failed."""
        if self._unanswered:
            self._request("ping", [])

    @contextlib.contextmanager
    def scope(
        self, kind: str = "test", *, transactional: bool = False, **options: Any
    ) -> Iterator[Remote]:
        """``with remote.scope():`` — a test scope around the block."""
        self.begin_scope(kind, transactional=transactional, **options)
        try:
            yield self
        finally:
            self.end_scope()

    # changes to the server's process, undone with the scope they are made in
    def patch(self, target: str, new: Any = _DEFAULT, **options: Any) -> Patch:
        """`unittest.mock.patch` in the server's process: ``patch("shop.payments.charge",
        return_value={"ok": True})``; returns a `fire.client.patches.Patch` standing for
        the mock (``charge.assert_called_once_with(...)``, ``charge.call_args_list``).

        The patch is undone at the end of the innermost scope open now (a test's, a
        class's), or when this connection closes, whatever happens; a ``with`` block
        undoes it at its end. Options are `unittest.mock.patch`'s: ``new``,
        ``return_value``, ``side_effect`` (an exception class or instance, a list, or the
        dotted name of a function of the service), ``autospec``, ``spec``, ``spec_set``,
        ``create``, ``new_callable``. A target that does not exist raises
        AttributeError naming the module and its nearest names.
        """
        return self._patch("patch", target, None, target, new, options)

    def patch_object(
        self, target: Any, attribute: str, new: Any = _DEFAULT, **options: Any
    ) -> Patch:
        """`unittest.mock.patch.object` in the server's process: `target` a proxy of a
        remote object, or a dotted name of one (``"shop.payments.Gateway"``); as `patch`."""
        named = target if isinstance(target, str) else repr(target)
        return self._patch("object", target, attribute, f"{named}.{attribute}", new, options)

    def patch_dict(
        self, target: Any, values: dict[Any, Any] | None = None, *, clear: bool = False
    ) -> Patch:
        """`unittest.mock.patch.dict` in the server's process: `target` a proxy of a
        mapping or its dotted name (``"os.environ"``); the handle's ``mock`` is the dict."""
        named = target if isinstance(target, str) else repr(target)
        options = {"values": dict(values or {}), "clear": clear}
        active, patched = self._control("patch", ["dict", target, None, options])
        return Patch(self, named, active, patched)

    def _patch(
        self, kind: str, target: Any, attribute: str | None, named: str, new: Any, options: Any
    ) -> Patch:
        from .patches import side_effect_data

        if new is not _DEFAULT:
            options["new"] = new
        if "side_effect" in options:
            options["side_effect"] = side_effect_data(options["side_effect"])
        active, mock = self._control("patch", [kind, target, attribute, options])
        return Patch(self, named, active, mock)

    def _control(self, operation: str, arguments: list[Any]) -> Any:
        """A `patch` or `freeze_time` request; a server older than them says so."""
        try:
            return self._request(operation, arguments)
        except ProtocolError as exc:
            if str(exc).startswith(f"unknown operation {operation!r}"):
                raise FireError(
                    f"the fire server {self.name!r} cannot {operation.replace('_', ' ')}: its "
                    f"fire is older than this client's ({self._info.get('fire_version')}); "
                    "upgrade djfire in the service's environment and restart it"
                ) from None
            raise

    def freeze_time(
        self, destination: str | datetime.datetime, *, tick: bool = False
    ) -> RemoteClock:
        """Set the server's process clock to `destination` (ISO 8601 with a time zone, or
        an aware datetime), frozen, or running on from there with `tick`; with
        time-machine in the service (``djfire[time]``). Undone at the end of the
        innermost scope open now, or when this connection closes.
        `fire.client.clock.freeze_time` sets several servers (and this process) at once.
        """
        from .clock import parse_destination

        handle = self._control("freeze_time", [parse_destination(destination), tick])
        return RemoteClock(self, handle)

    def exception(self, dotted_name: str) -> type[RemoteError]:
        """The local class that remote exceptions of class `dotted_name` are raised as.

        ``except accounts.exception("django.core.exceptions.ObjectDoesNotExist"):``
        catches a remote ``User.DoesNotExist``, since the local classes mirror the remote bases.
        It is the class that reading the exception class through a proxy gives.
        """
        return remote_exception_class(self._request("exception_hierarchy", [dotted_name]))

    # plumbing
    def _handshake(self, versions: tuple[int, int], *, again: bool = False) -> dict[str, Any]:
        hello = {
            "versions": list(versions),
            "max_message_size": self._transport.max_message_size,
            # A server keeps its waits under it (djfire: for the database connections).
            "timeout": self.timeout,
            # How far the server's clock is from this one's (deadlines sent are this one's).
            "time": wall_time(),
            **client_description(),
        }
        if again:
            hello["again"] = True
        return self._raw("hello", [hello])[1]

    def _greet_again(self) -> None:
        """The server has no session for this connection: greet it again (the caller holds
        the lock), or raise why the request cannot just be sent again.

        Over TCP a link that drops (or goes silent for the server's liveness time) comes
        back as a new connection, and the server has closed the old one's session, rolling
        back its test scopes and forgetting its references. A fresh session makes that
        outcome certain, where one waiting for its client to come back would hold the
        server meanwhile and leave in doubt what the requests in flight did. So: greet
        again; the request is sent again when nothing it relied on was lost (no scope was
        open: between tests); in a scope, the test it belongs to has lost it, and fails
        with this error rather than go on outside it. Another server process (restarted)
        may reuse the ids of this connection's references: the connection is closed.
        """
        before = self._info
        self._info = self._handshake((self.protocol_version, self.protocol_version), again=True)
        self._sessions += 1
        self._modules.clear()  # proxies of the closed session
        self._releases.clear()
        self._unanswered.clear()  # their replies went to the old connection
        where = f"the fire server at {self.address}"
        if (self._info["pid"], self._info["host"]) != (before["pid"], before["host"]):
            self.close()
            raise HandshakeRequired(
                f"{where} restarted (pid {before['pid']}, now {self._info['pid']}): what this "
                "connection held there (test scopes, references) is gone; connect again",
                str(self.address),
            )
        for operation, args in self._session_settings:  # the new session as the old one
            self._send_and_read(operation, self._codec.pack(args), None)
        if self._scopes:
            raise HandshakeRequired(
                f"{where} lost this connection's session (the link was cut, or silent for "
                "longer than the server's liveness time), so its test scopes were rolled "
                "back and its references are gone; the connection has a new session: the "
                "next test runs",
                str(self.address),
            )

    def _raw(self, operation: str, args: list[Any]) -> tuple[Status, Any]:
        with self._lock:
            self._last_id = request_id = self._last_id + 1
            message = protocol.encode_request(request_id, operation, _plain.pack(args), [])
            self._transport.send(message)
            status, body, _ = self._wait(request_id, None)
        value = _plain.unpack(body)
        if status is Status.FIRE_ERROR:
            self._raise_fire_error(value)
        return status, value

    def _send_without_waiting(
        self, operation: str, args: list[Any], *, track: bool = True, described: str = ""
    ) -> int:
        """Send a request whose reply is read later; `described` names it in a late failure."""
        arguments = self._codec.pack(args)
        with self._lock:
            self._last_id = request_id = self._last_id + 1
            message = protocol.encode_request(request_id, operation, arguments, [])
            self._transport.send(message)
            if track:
                self._unanswered[request_id] = described or operation
        return request_id

    def _raise_late_failure(self) -> None:
        """Raise the first failure of a request that was sent without waiting for it."""
        operation, status, body = self._late_failures.pop(0)
        note = (
            f"(fire: raised by {operation!r}, sent earlier without waiting for its reply; "
            "the request just made may have run too)"
        )
        try:
            value = self._codec.unpack(body)
            if status is Status.RAISED:
                self._raise_remote(value)
            self._raise_fire_error(value)
        except Exception as exc:
            exc.add_note(note)
            # A mark on whatever was raised: a late failure is never retried as a busy begin.
            exc.fire_late = True  # type: ignore[attr-defined]
            raise

    def _release(self, ref_id: int) -> None:
        # Called from a finalizer (proxy._Reference.__del__), in any thread, at any
        # moment (even while a request is encoded): deque.append is atomic, and an id
        # appended after `_take_releases` goes with the next request.
        self._releases.append(ref_id)

    def _take_releases(self) -> list[int]:
        pending = self._releases
        return [pending.popleft() for _ in range(len(pending))]

    def _request(self, operation: str, args: list[Any]) -> Any:
        status, value = self._exchange(operation, args)
        if self._late_failures:
            self._raise_late_failure()
        return self._outcome(status, value)

    def _exchange(
        self, operation: str, args: list[Any], timeout: float | None = None
    ) -> tuple[Status, Any]:
        """Send one request and read its reply's status and value (nothing raised for it)."""
        arguments = self._codec.pack(args)
        with self._lock:
            try:
                status, value = self._send_and_read(operation, arguments, timeout)
            except LinkLost:
                self._sessions += 1  # the server closes the session of a lost link
                if self._scopes:  # the test it belongs to lost its scope with the link
                    raise
                # Between tests: whatever it did went with the old session; once more.
                status, value = self._send_and_read(operation, arguments, timeout)
            if status is Status.FIRE_ERROR and _no_session(value):
                self._greet_again()  # or raises why not
                status, value = self._send_and_read(operation, arguments, timeout)
        return status, value

    def _send_and_read(
        self, operation: str, arguments: bytes, timeout: float | None
    ) -> tuple[Status, Any]:
        """`_exchange`'s request, sent, and its reply read (the caller holds the lock)."""
        self._last_id = request_id = self._last_id + 1
        # nothing to send: no list made per request
        releases = self._take_releases() if self._releases else _NO_RELEASES
        message = protocol.encode_request(request_id, operation, arguments, releases)
        try:
            self._transport.send(message)
            status, body, shapes = self._wait(request_id, timeout)
        except BaseException:
            if releases:
                self._releases.extend(releases)
            raise
        if shapes is not None:
            self._add_shapes(msgpack.unpackb(shapes, raw=False, strict_map_key=False))
        return status, self._codec.unpack(body)

    def _wait(self, request_id: int, timeout: float | None) -> _Reply:
        """The reply to request `request_id`, sent just before (the caller holds the lock).

        A server answers in order, but for a request it answers later (a ``begin_scope``
        waiting its turn), so replies to requests sent without waiting may come first:
        a failed one is kept for the caller to raise, and a late reply to a request
        that timed out is dropped.
        """
        wait = self.timeout if timeout is None else timeout
        since = time.monotonic()
        deadline = since + wait
        receive = self._transport.receive
        while True:
            try:
                reply = receive(deadline)
            except KeyboardInterrupt:
                # Its reply would come to nobody, and the request may run for long: the
                # connection closes at once (the server closes the session, rolling back
                # its scopes), so nothing after Ctrl-C waits on it.
                self.close()
                raise
            if reply is None and paused_since(since):
                # A person in a debugger stopped the service meanwhile: wait on.
                since = time.monotonic()
                deadline = since + wait
                continue
            if reply is None:
                raise ServerUnavailable(
                    f"no reply from the fire server at {self.address} within {wait:g} s "
                    "(stopped, overloaded, or a request that takes longer: raise the timeout)",
                    str(self.address),
                )
            reply_id, status, body, shapes = protocol.decode_reply(reply)
            if reply_id == request_id:
                return status, body, shapes
            operation = None if reply_id is None else self._unanswered.pop(reply_id, None)
            if operation is not None and status is not Status.OK:
                if status is Status.FIRE_ERROR and _no_session(_plain.unpack(body)):
                    continue  # never ran: what it was for went with the session (above)
                self._late_failures.append((operation, status, body))

    def _outcome(self, status: Status, value: Any) -> Any:
        """A reply's value, or the remote exception or fire error it carries, raised."""
        if status is Status.OK:
            return value
        if status is Status.RAISED:
            self._raise_remote(value)
        self._raise_fire_error(value)

    def _add_shapes(self, shapes: dict[int, list[Any]]) -> None:
        """Keep shapes the server sent, and what references of each shape become."""
        known, classes = self._shapes, self._shape_classes
        for shape_id, content in shapes.items():
            known[shape_id] = content
            if content[3]:
                classes[shape_id] = remote_exception_class(content[3])
            else:
                classes[shape_id] = CallableProxy if content[2] & CALLABLE else Proxy

    def _raise_fire_error(self, value: Any) -> None:
        raise error_from_wire(value, self.name, str(self.address))

    def _raise_remote(self, described: dict[str, Any]) -> None:
        cls = remote_exception_class(described["hierarchy"])
        args = described["args"]
        try:
            exc = cls(*args) if args is not None else cls(described["message"])
        except Exception:
            exc = cls(described["message"])
        exc.remote_args = None if args is None else tuple(args)
        exc.remote_traceback = described["text"]
        exc.server = self.name
        exc.remote_failure = described.get("failure")  # kept for a post-mortem
        exc._fire_remote = weakref.ref(self)  # type: ignore[attr-defined]
        for note in described["notes"]:
            exc.add_note(note)
        exc.add_note(f"(raised by {described['type']} on fire server {self.name!r})")
        traceback = None
        if described["traceback"] is not None:
            traceback = Traceback.from_dict(described["traceback"]).as_traceback()
        raise exc.with_traceback(traceback) from None

    def _encode_argument(self, value: Any) -> msgpack.ExtType:
        if isinstance(value, Proxy):
            remote = value._fire_remote
            if remote is not self:
                raise CannotSend(
                    f"a proxy from fire server {remote.name!r} was passed to server "
                    f"{self.name!r}: an object can only go back to the server it lives on"
                )
            return msgpack.ExtType(EXT_ARGREF, msgpack.packb(value._fire_target))
        raise CannotSend(
            f"cannot send {type(value).__module__}.{type(value).__qualname__} to fire server "
            f"{self.name!r}: only plain data (None, bool, int, float, str, bytes, list, tuple, "
            "dict, set, frozenset, date/time types, Decimal, UUID, slice) and proxies of that "
            "server can be sent"
        )

    def _decode_reference(self, code: int, data: bytes) -> Any:
        if code != EXT_REF:
            raise ProtocolError(f"unknown msgpack extension type {code} from server")
        ref_id, shape, *shadow = msgpack.unpackb(data, raw=False)
        cls = self._shape_classes.get(shape, CallableProxy)
        if cls is not Proxy and cls is not CallableProxy:
            self._release(ref_id)  # a remote exception class: its local class stands for it
            return cls
        return Proxy._fire_new(
            self, ref_id, ref_id, None, shape, tuple(shadow[0]) if shadow else (), cls
        )


def _no_session(value: Any) -> bool:
    """Whether a `Status.FIRE_ERROR` reply's value says the server has no session for us."""
    return isinstance(value, list) and bool(value) and value[0] == HandshakeRequired.wire_kind


def connect(
    address: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    curve: ClientKeys | None = None,
    name: str | None = None,
    start_command: str | None = None,
    max_message_size: int = protocol.DEFAULT_MAX_MESSAGE_SIZE,
    spin_wait: float = DEFAULT_SPIN_WAIT,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
) -> Remote:
    """Connect to the fire server at `address`: a socket path, ``ipc:///…`` or ``tcp://…``.

    A ``tcp://`` address needs `curve` (`fire.net.curve.client_keys`). Raises
    `ServerUnavailable` naming the address at once when nothing listens there,
    `AuthenticationError` at once when the CURVE handshake fails, and
    `ServerUnavailable` within `timeout` when the server does not answer.
    `start_command` (``{address}`` replaced) is how the service starts its server, for
    the fix those errors name (e.g. ``"python manage.py runfireserver {address}"``).
    `max_message_size` bounds a reply, in bytes (at least 64 KiB); the server answers a
    call whose reply would be larger with a `ProtocolError` naming the limit.
    `spin_wait` is how long, in seconds, a call polls for its reply before it sleeps
    (a sleeping thread wakes late on virtual machines; `fire.net.transport` says more);
    0 sleeps at once, for a machine with fewer cores than busy processes.
    `heartbeat_timeout` (TCP only) is how long, in seconds, a ping to the server may go
    unanswered before the link counts as lost: a call waiting over a link gone silent
    then fails with `fire.net.transport.LinkLost` instead of waiting out `timeout`
    (the server's liveness time, which it sends with its pings, may drop it sooner).
    """
    return Remote(
        address,
        timeout=timeout,
        curve=curve,
        name=name,
        start_command=start_command,
        max_message_size=max_message_size,
        spin_wait=spin_wait,
        heartbeat_timeout=heartbeat_timeout,
    )
