"""The wire protocol without I/O: bytes in, messages out (as h11 tests HTTP)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fire import ProtocolError
from fire.errors import HandshakeRequired
from fire.wire.codec import plain_codec
from fire.wire.handshake import Greeting, greet
from fire.wire.protocol import (
    DEFAULT_MAX_MESSAGE_SIZE,
    FRAME_LIMIT,
    FRAME_SIZE,
    PROTOCOL_VERSIONS,
    MessageTooLarge,
    Request,
    Status,
    choose_version,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    join,
    peek,
    split,
)

codec = plain_codec()


def raw_request(*parts: object) -> bytes:
    return msgpack.packb(list(parts))


# -- requests ---------------------------------------------------------------------------


def test_request_round_trip() -> None:
    arguments = codec.pack([1, "name", (2, 3)])
    frame = encode_request(7, "getattr", arguments, [4, 5])
    request = decode_request(frame)
    assert request == Request(7, "getattr", arguments, [4, 5])
    assert codec.unpack(request.arguments) == [1, "name", (2, 3)]


def test_a_request_s_small_fields_come_before_its_arguments() -> None:
    # So a request refused for its size still has an id and releases (see peek).
    arguments = codec.pack(["x"])
    assert msgpack.unpackb(encode_request(7, "getattr", arguments, [4, 5])) == [
        7,
        "getattr",
        [4, 5],
        msgpack.ExtType(0, arguments),
    ]


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
        with pytest.raises(ProtocolError, match="malformed request: not msgpack"):
            decode_request(frame[:cut])
    with pytest.raises(ProtocolError, match="malformed request: not msgpack"):
        decode_request(frame + b"\x00")


@pytest.mark.parametrize(
    ("frame", "names"),
    [
        (b"\xc1", "not msgpack"),
        (b"garbage that is not msgpack \xc1", "not msgpack"),
        (msgpack.packb({"request_id": 1}), r"\[request_id, operation, releases, arguments\]"),
        (raw_request(1, "ping", []), r"\[request_id, operation"),
        (raw_request(1, "ping", [], msgpack.ExtType(0, b"\x90"), 5), r"\[request_id, operation"),
        (raw_request("1", "ping", [], msgpack.ExtType(0, b"\x90")), "request_id must be an int"),
        (raw_request(1, 2, [], msgpack.ExtType(0, b"\x90")), "operation a str"),
        (raw_request(1, "ping", [], []), "arguments must be packed in extension 0"),
        (raw_request(1, "ping", [], msgpack.ExtType(5, b"\x90")), "arguments must be packed"),
        (raw_request(1, "ping", None, msgpack.ExtType(0, b"\x90")), "releases must be a list"),
        (
            raw_request(1, "ping", ["x"], msgpack.ExtType(0, b"\x90")),
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
        assert str(exc).startswith("malformed request")
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
    body = codec.pack([ProtocolError.wire_kind, "malformed request: not msgpack"])
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


# -- messages in frames: split, join, peek -----------------------------------------------


def test_frames_are_small_and_leave_room_for_curve() -> None:
    assert FRAME_SIZE == 64 * 1024
    assert FRAME_LIMIT - FRAME_SIZE >= 33  # CURVE's MESSAGE command around each frame
    assert DEFAULT_MAX_MESSAGE_SIZE == 256 * 1024 * 1024


@pytest.mark.parametrize(
    ("size", "sizes"),
    [
        (1, [1]),
        (FRAME_SIZE, [FRAME_SIZE]),
        (FRAME_SIZE + 1, [FRAME_SIZE, 1]),
        (3 * FRAME_SIZE, [FRAME_SIZE] * 3),
        (3 * FRAME_SIZE + 7, [FRAME_SIZE] * 3 + [7]),
    ],
)
def test_split_makes_full_chunks_then_the_rest(size: int, sizes: list[int]) -> None:
    message = bytes(range(256)) * (size // 256 + 1)
    message = message[:size]
    frames = split(message)
    assert [len(frame) for frame in frames] == sizes
    assert join(frames, size) == message


@given(st.integers(min_value=0, max_value=4 * FRAME_SIZE + 3), st.integers(0, 255))
def test_any_message_splits_and_joins_back(size: int, fill: int) -> None:
    message = bytes([fill]) * size + b"end"
    frames = split(message)
    assert all(len(frame) == FRAME_SIZE for frame in frames[:-1])
    assert 0 < len(frames[-1]) <= FRAME_SIZE
    assert join(frames, len(message)) == message


def test_join_refuses_frames_over_the_limit_naming_both_sizes() -> None:
    frames = split(b"x" * (2 * FRAME_SIZE + 10))
    with pytest.raises(MessageTooLarge) as raised:
        join(frames, 2 * FRAME_SIZE)
    assert (raised.value.size, raised.value.limit) == (2 * FRAME_SIZE + 10, 2 * FRAME_SIZE)
    assert str(raised.value) == "a message of 131,082 bytes is over the limit of 131,072 bytes"
    assert isinstance(raised.value, ProtocolError)


def test_peek_reads_a_request_s_head_from_its_first_frames() -> None:
    releases = list(range(2**20, 2**20 + 20_000))  # 100 kB of ids: more than one frame
    message = encode_request(9, "call", b"\xc0" * (3 * FRAME_SIZE), releases)
    assert peek(split(message), 3) == [9, "call", releases]
    assert peek(split(message), 1) == [9]


def test_peek_reads_a_head_cut_anywhere_between_two_frames() -> None:
    message = encode_request(2**40, "getattr", codec.pack(["name"]), [3, 4, 5])
    for cut in range(len(message) + 1):
        assert peek([message[:cut], message[cut:]], 3) == [2**40, "getattr", [3, 4, 5]]


def test_peek_reads_a_reply_s_request_id() -> None:
    message = encode_reply(12, Status.OK, b"\xc4\x00" + b"x" * FRAME_SIZE, None)
    assert peek(split(message), 1) == [12]


@pytest.mark.parametrize(
    "frames",
    [
        [b"\xc1 not msgpack"],
        [msgpack.packb([1, "ping", []])],  # an array of three
        [msgpack.packb({"request_id": 1})],
        [msgpack.packb([1, "ping"])[:-2]],  # cut short: the head never arrives
        # releases of 32 ids, one per frame: beyond the frames peek reads
        [b"\x94\x01\xa4ping\xdc\x00\x20"] + [b"\x01"] * 32,
    ],
)
def test_peek_gives_none_when_the_head_is_not_there(frames: list[bytes]) -> None:
    assert peek(frames, 3) is None


# -- version negotiation ----------------------------------------------------------------


def test_this_fire_speaks_version_three_only() -> None:
    assert PROTOCOL_VERSIONS == (3, 3)
    assert choose_version((1, 3)) == 3
    with pytest.raises(ProtocolError, match=r"client speaks 2\.\.2, the server speaks 3\.\.3"):
        choose_version((2, 2))


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


# -- handshake (fire.wire.handshake): a session-less connection's message, read -------------------


def test_a_hello_with_a_common_version_opens_the_connection() -> None:
    greeting = greet("hello", [{"versions": [1, 5], "pid": 42, "label": "a test"}], (2, 3))
    assert greeting == Greeting(version=3, client={"pid": 42, "label": "a test"})
    assert greeting.refusal is None


@pytest.mark.parametrize(
    ("operation", "arguments", "refusal"),
    [
        ("getattr", [1, "x"], HandshakeRequired),
        ("hello", [], HandshakeRequired),
        ("hello", None, HandshakeRequired),
        ("hello", ["not a dict"], ProtocolError),
        ("hello", [{"versions": "1"}], ProtocolError),
        ("hello", [{"versions": [1]}], ProtocolError),
        ("hello", [{"versions": ["a", "b"]}], ProtocolError),
        ("hello", [{"versions": [True, 2]}], ProtocolError),
        ("hello", [{"versions": [7, 9]}], ProtocolError),
    ],
)
def test_anything_but_a_hello_it_can_answer_is_refused(
    operation: str, arguments: object, refusal: type[Exception]
) -> None:
    greeting = greet(operation, arguments, PROTOCOL_VERSIONS)
    assert greeting.version is None
    assert type(greeting.refusal) is refusal


def test_a_hello_says_the_largest_reply_the_client_takes() -> None:
    greeting = greet("hello", [{"versions": [3, 3], "max_message_size": 10**6, "pid": 1}], (3, 3))
    assert greeting.max_reply_size == 10**6
    assert greeting.client == {"pid": 1}
    assert greet("hello", [{"versions": [3, 3]}], (3, 3)).max_reply_size == 256 * 1024 * 1024


@pytest.mark.parametrize("size", [0, -1, "big", True, 1.5, None])
def test_a_hello_with_a_bad_max_message_size_is_refused(size: object) -> None:
    greeting = greet("hello", [{"versions": [3, 3], "max_message_size": size}], (3, 3))
    assert isinstance(greeting.refusal, ProtocolError)
    assert str(greeting.refusal) == "hello's max_message_size must be a positive int (bytes)"


def test_a_hello_without_a_common_version_is_refused_with_both_ranges() -> None:
    greeting = greet("hello", [{"versions": [7, 9]}], (2, 2))
    assert isinstance(greeting.refusal, ProtocolError)
    assert str(greeting.refusal) == (
        "no common protocol version: the client speaks 7..9, the server speaks 2..2; "
        "upgrade the older side"
    )
