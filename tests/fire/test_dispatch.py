"""The server's core without a socket: request bytes in, reply bytes out (as h11's tests).

Each test drives a `Dispatcher` with messages encoded as a client encodes them and reads
the replies it sends, decoded as a client decodes them.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from fire.errors import FireError, HandshakeRequired, ProtocolError, ServerBusy
from fire.extensions import Later, Session
from fire.server.dispatch import Dispatcher
from fire.wire.codec import EXT_ARGREF, EXT_REF, Codec
from fire.wire.protocol import (
    FRAME_SIZE,
    PROTOCOL_VERSIONS,
    Status,
    decode_reply,
    encode_request,
    split,
)


class Ref:
    """A reference the dispatcher sent (`EXT_REF`), or one to send back (`EXT_ARGREF`)."""

    def __init__(self, target: Any, shape: int | None = None) -> None:
        self.target, self.shape = target, shape

    def __getattr__(self, name: str) -> Ref:
        path = self.target if isinstance(self.target, list) else [self.target]
        return Ref([*path, name])


def _encode(value: Any) -> msgpack.ExtType:
    if isinstance(value, Ref):
        return msgpack.ExtType(EXT_ARGREF, msgpack.packb(value.target))
    raise TypeError(value)


def _decode(code: int, data: bytes) -> Any:
    assert code == EXT_REF
    ref_id, shape, *_ = msgpack.unpackb(data)
    return Ref(ref_id, shape)


class Driver:
    """A dispatcher and what it sent: each call returns the replies it caused, in order."""

    def __init__(self, **options: Any) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.dispatcher = Dispatcher(self._send, **options)
        self.sessions = self.dispatcher.sessions

    def _send(self, identity: bytes, reply: bytes) -> None:
        self.sent.append((identity, reply))

    def _take(self) -> list[tuple[bytes, bytes]]:
        sent, self.sent = self.sent, []
        return sent

    def handle(self, identity: bytes, message: bytes) -> list[tuple[bytes, bytes]]:
        self.dispatcher.handle(identity, message)
        return self._take()

    def handle_chunks(self, identity: bytes, chunks: list[Any]) -> list[tuple[bytes, bytes]]:
        self.dispatcher.handle_chunks(identity, chunks)
        return self._take()

    def tick(self) -> list[tuple[bytes, bytes]]:
        self.dispatcher.tick()
        return self._take()

    def disconnected(self, identity: bytes) -> list[tuple[bytes, bytes]]:
        self.dispatcher.disconnected(identity)
        return self._take()

    def close_sessions(self) -> list[tuple[bytes, bytes]]:
        self.dispatcher.close_sessions()
        return self._take()


class Client:
    """One connection to a dispatcher, in memory: what a client sends and reads."""

    def __init__(self, dispatcher: Driver, identity: bytes = b"client-1") -> None:
        self.dispatcher, self.identity = dispatcher, identity
        self.codec = Codec(_encode, _decode)
        self._ids = itertools.count(1)
        self.last_id = 0

    def request(self, operation: str, args: list[Any], releases: list[int] | None = None) -> bytes:
        self.last_id = next(self._ids)
        return encode_request(self.last_id, operation, self.codec.pack(args), releases or [])

    def send(self, operation: str, *args: Any, releases: list[int] | None = None) -> list[Any]:
        """Every reply the request caused, as ``(identity, request id, status, value)``."""
        message = self.request(operation, list(args), releases)
        return [self.decode(out) for out in self.dispatcher.handle(self.identity, message)]

    def decode(self, out: tuple[bytes, bytes]) -> tuple[bytes, int | None, Status, Any]:
        identity, reply = out
        request_id, status, body, _shapes = decode_reply(reply)
        return identity, request_id, status, self.codec.unpack(body)

    def call(self, operation: str, *args: Any, releases: list[int] | None = None) -> Any:
        """The one reply to this request, to this client: its status and value."""
        ((identity, request_id, status, value),) = self.send(operation, *args, releases=releases)
        assert (identity, request_id) == (self.identity, self.last_id)
        return status, value

    def hello(self, versions: list[int] | None = None, **more: Any) -> tuple[Status, Any]:
        return self.call("hello", {"versions": versions or list(PROTOCOL_VERSIONS), **more})


def opened(dispatcher: Driver, identity: bytes = b"client-1") -> Client:
    client = Client(dispatcher, identity)
    assert client.hello()[0] is Status.OK
    return client


# -- the handshake ---------------------------------------------------------------------------------


def test_a_hello_opens_a_session_with_the_highest_common_version() -> None:
    dispatcher = Driver(versions=(2, 3))
    client = Client(dispatcher)
    status, info = client.hello([1, 5], pid=42, label="a test")
    assert status is Status.OK
    assert (info["protocol"], info["protocol_versions"], info["sessions"]) == (3, [2, 3], 1)
    session = dispatcher.sessions[b"client-1"]
    assert (session.version, session.client) == (3, {"pid": 42, "label": "a test"})
    assert client.call("ping") == (Status.OK, "pong")


def test_a_hello_without_a_common_version_is_refused_and_may_be_sent_again() -> None:
    dispatcher = Driver(versions=(3, 3))
    client = Client(dispatcher)
    status, body = client.hello([7, 9])
    assert status is Status.FIRE_ERROR
    assert body == [
        ProtocolError.wire_kind,
        "no common protocol version: the client speaks 7..9, the server speaks 3..3; "
        "upgrade the older side",
    ]
    assert dispatcher.sessions == {}
    assert client.hello([3, 3])[0] is Status.OK  # the connection stayed new


def test_a_request_before_the_hello_is_answered_reconnect() -> None:
    dispatcher = Driver()
    status, body = Client(dispatcher).call("getattr", 1, "x")
    assert (status, body[0]) == (Status.FIRE_ERROR, HandshakeRequired.wire_kind)
    assert "reconnect" in body[1]
    assert dispatcher.sessions == {}


def test_a_hello_on_a_session_is_an_unknown_operation() -> None:
    client = opened(Driver())
    assert client.hello() == (
        Status.FIRE_ERROR,
        [ProtocolError.wire_kind, "unknown operation 'hello'"],
    )


def test_the_driver_hears_of_each_message_of_a_connection_without_a_session() -> None:
    greeted: list[bytes] = []
    dispatcher = Driver(on_greeting=greeted.append)
    client = Client(dispatcher)
    client.call("ping")  # refused: still no session
    client.hello()
    client.call("ping")
    assert greeted == [b"client-1", b"client-1"]


def test_each_connection_has_its_own_session() -> None:
    dispatcher = Driver()
    first, second = opened(dispatcher, b"one"), opened(dispatcher, b"two")
    status, module = first.call("module", "operator")
    assert status is Status.OK
    status, body = second.call("getattr", module.target, "add")
    assert (status, body[0]) == (Status.FIRE_ERROR, FireError.wire_kind)
    assert "is not alive on this server" in body[1]


# -- requests --------------------------------------------------------------------------------------


def test_a_call_through_a_reference() -> None:
    client = opened(Driver())
    status, module = client.call("module", "operator")
    assert status is Status.OK and isinstance(module, Ref)
    assert client.call("call", module.add.target, [1, 2], {}) == (Status.OK, 3)


def test_a_reference_comes_with_its_shape_once() -> None:
    dispatcher = Driver()
    client = opened(dispatcher)
    replies = [
        decode_reply(dispatcher.handle(client.identity, client.request("module", [name]))[0][1])
        for name in ("operator", "operator")
    ]
    assert [shapes is not None for _, _, _, shapes in replies] == [True, False]


def test_a_raise_is_answered_with_the_exception_as_data() -> None:
    client = opened(Driver())
    _, module = client.call("module", "operator")
    status, described = client.call("call", module.truediv.target, [1, 0], {})
    assert status is Status.RAISED
    assert described["type"] == "builtins.ZeroDivisionError"
    assert described["message"] == "division by zero"
    assert described["hierarchy"][0] == ["builtins.ZeroDivisionError", ["builtins.ArithmeticError"]]


def test_a_fire_error_is_answered_with_its_kind() -> None:
    class Busy:
        name = "busy"

        def operations(self) -> dict[str, Callable[..., Any]]:
            return {"take": self.take}

        def take(self, session: Session) -> None:
            raise ServerBusy("held by another client")

    client = opened(Driver(extensions=[Busy()]))
    assert client.call("take", [], {}) == (
        Status.FIRE_ERROR,
        [ServerBusy.wire_kind, "held by another client"],
    )


def test_releases_drop_the_references_before_the_request_runs() -> None:
    released: list[list[Any]] = []

    class Keeper:
        name = "keeper"

        def operations(self) -> dict[str, Callable[..., Any]]:
            return {}

        def release_references(self, session: Session, objects: list[Any]) -> None:
            released.append(list(objects))
            objects.clear()

    dispatcher = Driver(extensions=[Keeper()])
    client = opened(dispatcher)
    _, module = client.call("module", "operator")
    session = dispatcher.sessions[client.identity]
    assert list(session.refs) == [module.target]
    assert client.call("ping", releases=[module.target, 999]) == (Status.OK, "pong")
    assert session.refs == {}
    assert released == [[operator]]  # an unknown id is ignored


def test_an_unknown_operation_is_refused_by_name() -> None:
    client = opened(Driver())
    assert client.call("exec", "print(1)") == (
        Status.FIRE_ERROR,
        [ProtocolError.wire_kind, "unknown operation 'exec'"],
    )


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (b"\xc1", "malformed request: not msgpack"),
        (msgpack.packb({"a": 1}), "a request is [request_id, operation, releases, arguments]"),
        (msgpack.packb([1, 2, [], msgpack.ExtType(0, b"\x90")]), "operation a str"),
        (msgpack.packb([1, "ping", ["x"], msgpack.ExtType(0, b"\x90")]), "releases must be"),
        (msgpack.packb([1, "ping", [], [1]]), "arguments must be packed in extension 0"),
    ],
)
def test_a_malformed_request_is_answered_without_a_request_id(message: bytes, error: str) -> None:
    dispatcher = Driver()
    opened(dispatcher)
    ((identity, reply),) = dispatcher.handle(b"client-1", message)
    request_id, status, body, _ = decode_reply(reply)
    kind, text = msgpack.unpackb(body)
    assert (identity, request_id, status, kind) == (
        b"client-1",
        None,
        Status.FIRE_ERROR,
        ProtocolError.wire_kind,
    )
    assert error in text


def test_arguments_that_are_not_a_list_are_refused() -> None:
    dispatcher = Driver()
    client = opened(dispatcher)
    message = encode_request(7, "ping", msgpack.packb({"not": "a list"}), [])
    ((_, reply),) = dispatcher.handle(client.identity, message)
    request_id, status, body, _ = decode_reply(reply)
    assert (request_id, status) == (7, Status.FIRE_ERROR)
    assert msgpack.unpackb(body) == [
        ProtocolError.wire_kind,
        "bad arguments: arguments must be a list",
    ]


def test_a_reply_over_the_clients_bound_is_refused_and_leaves_no_reference() -> None:
    dispatcher = Driver()
    client = Client(dispatcher)
    client.hello(max_message_size=100_000)
    _, module = client.call("module", "operator")
    status, body = client.call("call", [module.target, "mul"], ["x", 200_000], {})
    assert status is Status.FIRE_ERROR and body[0] == ProtocolError.wire_kind
    assert "over this client's max_message_size of 100,000 bytes" in body[1]
    assert list(dispatcher.sessions[client.identity].refs) == [module.target]


def test_a_request_in_chunks_is_joined() -> None:
    dispatcher = Driver()
    client = opened(dispatcher)
    _, module = client.call("module", "operator")
    message = client.request("call", [[module.target, "length_hint"], ["x" * 2 * FRAME_SIZE], {}])
    chunks = split(message)
    assert len(chunks) == 3
    ((_, reply),) = dispatcher.handle_chunks(client.identity, chunks)
    assert client.decode((b"", reply))[1:] == (client.last_id, Status.OK, 2 * FRAME_SIZE)


def test_a_request_over_the_bound_is_refused_and_its_releases_honoured() -> None:
    dispatcher = Driver(max_message_size=FRAME_SIZE)
    client = opened(dispatcher)
    _, module = client.call("module", "operator")
    message = client.request("ping", ["x" * (2 * FRAME_SIZE)], releases=[module.target])
    ((_, reply),) = dispatcher.handle_chunks(client.identity, split(message))
    request_id, status, body, _ = decode_reply(reply)
    kind, text = msgpack.unpackb(body)
    assert (request_id, status, kind) == (
        client.last_id,
        Status.FIRE_ERROR,
        ProtocolError.wire_kind,
    )
    assert "over this server's max_message_size of 65,536 bytes" in text
    assert dispatcher.sessions[client.identity].refs == {}


# -- answers to come (Later), ticks and disconnections ---------------------------------------------


class Turns:
    """One client at a time: `take` waits (a `Later`) while another holds the turn."""

    name = "turns"

    def __init__(self) -> None:
        self.holder: Session | None = None
        self.waiting: list[tuple[Session, Later]] = []
        self.expired = False

    def operations(self) -> dict[str, Callable[..., Any]]:
        return {"take": self.take, "give": self.give}

    def take(self, session: Session) -> Any:
        if self.holder is None:
            self.holder = session
            return "yours"
        later = Later()
        self.waiting.append((session, later))
        return later

    def give(self, session: Session) -> str:
        self._next()
        return "given"

    def _next(self) -> None:
        self.holder = None
        if self.waiting:
            self.holder, later = self.waiting.pop(0)
            later.answer("yours at last")

    def tick(self) -> None:
        if self.expired:
            for _, later in self.waiting:
                later.fail(ServerBusy("waited too long"))
            self.waiting.clear()

    def session_closed(self, session: Session) -> None:
        if self.holder is session:
            self._next()


def test_a_deferred_answer_goes_out_with_the_request_that_gives_it() -> None:
    dispatcher = Driver(extensions=[Turns()])
    first, second = opened(dispatcher, b"one"), opened(dispatcher, b"two")
    assert first.call("take", [], {}) == (Status.OK, "yours")
    assert second.send("take", [], {}) == []  # nothing yet: the answer is to come
    waiting_id = second.last_id
    assert first.send("give", [], {}) == [
        (b"two", waiting_id, Status.OK, "yours at last"),  # first, as it was given first
        (b"one", first.last_id, Status.OK, "given"),
    ]


def test_a_tick_answers_what_waited_too_long() -> None:
    turns = Turns()
    dispatcher = Driver(extensions=[turns])
    first, second = opened(dispatcher, b"one"), opened(dispatcher, b"two")
    first.call("take", [], {})
    second.send("take", [], {})
    assert dispatcher.tick() == []
    turns.expired = True
    ((identity, request_id, status, body),) = map(second.decode, dispatcher.tick())
    assert (identity, request_id, status) == (b"two", second.last_id, Status.FIRE_ERROR)
    assert body == [ServerBusy.wire_kind, "waited too long"]


def test_a_disconnection_closes_the_session_and_may_answer_others() -> None:
    dispatcher = Driver(extensions=[Turns()])
    first, second = opened(dispatcher, b"one"), opened(dispatcher, b"two")
    first.call("take", [], {})
    second.send("take", [], {})
    replies = [second.decode(out) for out in dispatcher.disconnected(b"one")]
    assert replies == [(b"two", second.last_id, Status.OK, "yours at last")]
    assert list(dispatcher.sessions) == [b"two"]
    assert dispatcher.disconnected(b"one") == []  # once closed, nothing to do
    assert dispatcher.disconnected(b"never-spoke") == []


def test_an_answer_to_a_client_that_left_is_dropped() -> None:
    turns = Turns()
    dispatcher = Driver(extensions=[turns])
    first, second = opened(dispatcher, b"one"), opened(dispatcher, b"two")
    first.call("take", [], {})
    second.send("take", [], {})
    assert dispatcher.disconnected(b"two") == []
    assert first.send("give", [], {}) == [(b"one", first.last_id, Status.OK, "given")]


def test_closing_every_session_at_the_stop() -> None:
    closed: list[bytes] = []

    class Watch:
        name = "watch"

        def operations(self) -> dict[str, Callable[..., Any]]:
            return {}

        def session_closed(self, session: Session) -> None:
            closed.append(session.identity)

    dispatcher = Driver(extensions=[Watch()])
    opened(dispatcher, b"one"), opened(dispatcher, b"two")
    assert dispatcher.close_sessions() == []
    assert (sorted(closed), dispatcher.sessions) == ([b"one", b"two"], {})


def test_an_extension_may_not_redefine_an_operation() -> None:
    class Greedy:
        name = "greedy"

        def operations(self) -> dict[str, Callable[..., Any]]:
            return {"call": lambda session: None}

    with pytest.raises(FireError, match="extension 'greedy' redefines operation 'call'"):
        Dispatcher(lambda identity, reply: None, extensions=[Greedy()])
