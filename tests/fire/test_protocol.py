"""The wire protocol without I/O: bytes in, messages out (as h11 tests HTTP)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fire import ProtocolError
from fire.codec import plain_codec
from fire.handshake import TRANSITIONS, Event, Greeting, Handshake, State, greet
from fire.protocol import (
    PROTOCOL_VERSIONS,
    Request,
    Status,
    choose_version,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
)

codec = plain_codec()


def request_frame(*parts: object) -> bytes:
    return msgpack.packb(list(parts))


# -- requests ---------------------------------------------------------------------------


def test_request_round_trip() -> None:
    arguments = codec.pack([1, "name", (2, 3)])
    frame = encode_request(7, "getattr", arguments, [4, 5])
    request = decode_request(frame)
    assert request == Request(7, "getattr", arguments, [4, 5])
    assert codec.unpack(request.arguments) == [1, "name", (2, 3)]


@given(
    request_id=st.integers(min_value=0, max_value=2**63 - 1),
    operation=st.text(max_size=30),
    arguments=st.binary(max_size=200),
    releases=st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=20),
)
def test_any_request_round_trips(
    request_id: int, operation: str, arguments: bytes, releases: list[int]
) -> None:
    request = decode_request(encode_request(request_id, operation, arguments, releases))
    assert request == Request(request_id, operation, arguments, releases)


def test_request_read_whole_byte_by_byte_and_with_trailing_data() -> None:
    frame = encode_request(1, "ping", codec.pack([]), [])
    assert decode_request(frame).operation == "ping"
    for cut in range(len(frame)):
        with pytest.raises(ProtocolError, match="malformed frame: not msgpack"):
            decode_request(frame[:cut])
    with pytest.raises(ProtocolError, match="malformed frame: not msgpack"):
        decode_request(frame + b"\x00")


@pytest.mark.parametrize(
    ("frame", "names"),
    [
        (b"\xc1", "not msgpack"),
        (b"garbage that is not msgpack \xc1", "not msgpack"),
        (msgpack.packb({"request_id": 1}), r"\[request_id, operation, arguments, releases\]"),
        (request_frame(1, "ping", msgpack.ExtType(0, b"\x90")), r"\[request_id, operation"),
        (request_frame(1, "ping", msgpack.ExtType(0, b"\x90"), [], 5), r"\[request_id, operation"),
        (request_frame("1", "ping", msgpack.ExtType(0, b"\x90"), []), "request_id must be an int"),
        (request_frame(1, 2, msgpack.ExtType(0, b"\x90"), []), "operation a str"),
        (request_frame(1, "ping", [], []), "arguments must be packed in extension 0"),
        (request_frame(1, "ping", msgpack.ExtType(5, b"\x90"), []), "arguments must be packed"),
        (request_frame(1, "ping", msgpack.ExtType(0, b"\x90"), None), "releases must be a list"),
        (
            request_frame(1, "ping", msgpack.ExtType(0, b"\x90"), ["x"]),
            "releases must be a list of ints",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_requests_name_the_problem(frame: bytes, names: str) -> None:
    with pytest.raises(ProtocolError, match=names):
        decode_request(frame)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise_anything_but_protocol_error(frame: bytes) -> None:
    try:
        request = decode_request(frame)
    except ProtocolError as exc:
        assert str(exc).startswith("malformed frame")
    else:
        assert isinstance(request, Request)


# -- replies ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("shapes", [None, msgpack.packb({1: ["mod.Cls", {"m": None}]})])
def test_reply_round_trip(status: Status, shapes: bytes | None) -> None:
    body = codec.pack({"value": (1, b"2")})
    request_id, decoded_status, decoded_body, decoded_shapes = decode_reply(
        encode_reply(9, status, body, shapes)
    )
    assert (request_id, decoded_status, decoded_body, decoded_shapes) == (9, status, body, shapes)
    assert type(decoded_status) is Status
    assert codec.unpack(decoded_body) == {"value": (1, b"2")}


def test_reply_without_request_id() -> None:
    # The server answers frames it could not parse with request id None.
    body = codec.pack(["ProtocolError", "malformed frame: not msgpack"])
    assert decode_reply(encode_reply(None, Status.FIRE_ERROR, body, None))[:2] == (
        None,
        Status.FIRE_ERROR,
    )


@pytest.mark.parametrize(
    "frame",
    [
        b"\xc1",
        msgpack.packb([1, 0, msgpack.ExtType(0, b"\xc0")]),
        msgpack.packb([1, 99, msgpack.ExtType(0, b"\xc0"), None]),
        msgpack.packb([1, 0, b"not an ext", None]),
        encode_reply(1, Status.OK, b"\xc0", None)[:-1],
    ],
)
def test_malformed_replies_raise_protocol_error(frame: bytes) -> None:
    with pytest.raises(ProtocolError, match="malformed reply from server"):
        decode_reply(frame)


def test_status_numbers_are_part_of_the_wire_format() -> None:
    assert {s.name: s.value for s in Status} == {
        "OK": 0,
        "RAISED": 1,
        "FIRE_ERROR": 2,
    }  # 3 was the token challenge: never reused


def test_the_retired_challenge_status_is_refused() -> None:
    with pytest.raises(ProtocolError, match="unknown status 3"):
        decode_reply(msgpack.packb([1, 3, msgpack.ExtType(0, b"\xc0"), None]))


# -- version negotiation ----------------------------------------------------------------


def test_this_fire_speaks_version_two_only() -> None:
    assert PROTOCOL_VERSIONS == (2, 2)
    assert choose_version((1, 2)) == 2
    with pytest.raises(ProtocolError, match=r"client speaks 1\.\.1, the server speaks 2\.\.2"):
        choose_version((1, 1))


@pytest.mark.parametrize(
    ("client", "server", "chosen"),
    [
        ((1, 1), (1, 1), 1),
        ((1, 3), (2, 5), 3),
        ((2, 5), (1, 3), 3),
        ((1, 9), (4, 4), 4),
        ((3, 3), (1, 7), 3),
    ],
)
def test_choose_version_picks_the_highest_common(
    client: tuple[int, int], server: tuple[int, int], chosen: int
) -> None:
    assert choose_version(client, server) == chosen


@given(
    st.tuples(st.integers(1, 20), st.integers(0, 5)),
    st.tuples(st.integers(1, 20), st.integers(0, 5)),
)
def test_choose_version_property(
    client_range: tuple[int, int], server_range: tuple[int, int]
) -> None:
    client = (client_range[0], client_range[0] + client_range[1])
    server = (server_range[0], server_range[0] + server_range[1])
    common = set(range(client[0], client[1] + 1)) & set(range(server[0], server[1] + 1))
    if common:
        assert choose_version(client, server) == max(common)
    else:
        with pytest.raises(ProtocolError) as raised:
            choose_version(client, server)
        message = str(raised.value)
        assert f"client speaks {client[0]}..{client[1]}" in message
        assert f"server speaks {server[0]}..{server[1]}" in message


def test_no_common_version_names_both_ranges() -> None:
    with pytest.raises(ProtocolError, match=r"client speaks 2\.\.2, the server speaks 1\.\.1"):
        choose_version((2, 2), (1, 1))


# -- handshake (fire.handshake): states and transitions as data ----------------------------


def test_a_hello_with_a_common_version_opens_the_connection() -> None:
    greeting = greet("hello", [{"versions": [1, 5], "pid": 42, "label": "a test"}], (2, 3))
    assert greeting == Greeting(Event.HELLO, version=3, client={"pid": 42, "label": "a test"})
    handshake = Handshake()
    assert handshake.receive(greeting.event) is State.OPEN
    assert handshake.receive(Event.REQUEST) is State.OPEN
    assert handshake.receive(Event.CLOSE) is State.CLOSED


@pytest.mark.parametrize(
    ("operation", "arguments", "event", "refusal"),
    [
        ("getattr", [1, "x"], Event.REQUEST, "HandshakeRequired"),
        ("hello", [], Event.REQUEST, "HandshakeRequired"),
        ("hello", None, Event.REQUEST, "HandshakeRequired"),
        ("hello", ["not a dict"], Event.BAD_HELLO, "ProtocolError"),
        ("hello", [{"versions": "1"}], Event.BAD_HELLO, "ProtocolError"),
        ("hello", [{"versions": [1]}], Event.BAD_HELLO, "ProtocolError"),
        ("hello", [{"versions": ["a", "b"]}], Event.BAD_HELLO, "ProtocolError"),
        ("hello", [{"versions": [True, 2]}], Event.BAD_HELLO, "ProtocolError"),
        ("hello", [{"versions": [7, 9]}], Event.BAD_HELLO, "ProtocolError"),
    ],
)
def test_a_connection_stays_new_until_a_hello_it_can_answer(
    operation: str, arguments: object, event: Event, refusal: str
) -> None:
    greeting = greet(operation, arguments, PROTOCOL_VERSIONS)
    assert greeting.event is event and greeting.version is None
    assert greeting.refusal is not None and greeting.refusal[0] == refusal
    handshake = Handshake()
    assert handshake.receive(greeting.event) is State.NEW
    assert handshake.receive(greet("hello", [{"versions": [2, 2]}], (2, 2)).event) is State.OPEN


def test_a_hello_without_a_common_version_is_refused_with_both_ranges() -> None:
    greeting = greet("hello", [{"versions": [7, 9]}], (2, 2))
    assert greeting.refusal == (
        "ProtocolError",
        "no common protocol version: the client speaks 7..9, the server speaks 2..2; "
        "upgrade the older side",
    )


def test_every_transition_is_in_the_table_and_others_raise() -> None:
    for state in State:
        for event in Event:
            handshake = Handshake()
            handshake.state = state
            if (state, event) in TRANSITIONS:
                assert handshake.receive(event) is TRANSITIONS[state, event]
            else:
                with pytest.raises(ProtocolError, match="cannot happen on a"):
                    handshake.receive(event)
    assert not any(state is State.CLOSED for state, _ in TRANSITIONS)  # closed is final
    assert (State.OPEN, Event.HELLO) not in TRANSITIONS  # a hello on a session is a request
