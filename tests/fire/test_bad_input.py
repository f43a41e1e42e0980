"""A raw ZeroMQ DEALER sends what no fire client would; the server keeps serving others."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from servers import ServerProcess, custom_server_argv, wait_for
from zmq.utils.monitor import recv_monitor_message

import fire
from fire.errors import HandshakeRequired, ProtocolError
from fire.wire import protocol
from fire.wire.codec import plain_codec
from fire.wire.protocol import Status

codec = plain_codec()


class RawClient:
    """A DEALER socket speaking (or not) fire's protocol by hand."""

    def __init__(self, endpoint: str) -> None:
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, 10_000)  # a bound on the wait, not a measure
        self.socket.connect(endpoint)

    def send(self, *frames: bytes) -> None:
        self.socket.send_multipart(list(frames))

    def reply(self) -> tuple[Any, Status, Any]:
        request_id, status, body, _ = protocol.decode_reply(self.socket.recv())
        return request_id, status, codec.unpack(body)

    def request(self, request_id: int, operation: str, args: Any) -> tuple[Any, Status, Any]:
        self.send(protocol.encode_request(request_id, operation, codec.pack(args), []))
        return self.reply()

    def hello(self) -> dict[str, Any]:
        hello = {"versions": list(protocol.PROTOCOL_VERSIONS), "pid": os.getpid()}
        _, status, body = self.request(1, "hello", [hello])
        assert status is Status.OK
        return body

    def close(self) -> None:
        self.socket.close(linger=0)


@pytest.fixture
def raw(shared_server: ServerProcess) -> Iterator[RawClient]:
    client = RawClient(shared_server.endpoint)
    yield client
    client.close()


def assert_still_serving(remote: fire.Remote) -> None:
    assert remote.module("os").path.join("still", "serving") == "still/serving"


def test_non_msgpack_bytes_get_an_error_reply(raw: RawClient, remote: fire.Remote) -> None:
    raw.send(b"\xc1 this is not msgpack")
    request_id, status, body = raw.reply()
    assert request_id is None
    assert status is Status.FIRE_ERROR
    assert body[0] == ProtocolError.wire_kind
    assert "malformed request: not msgpack" in body[1]
    assert_still_serving(remote)


def test_frames_that_join_into_no_request_get_an_error_reply(
    raw: RawClient, remote: fire.Remote
) -> None:
    # Three requests as the frames of one message: their bytes joined are no request.
    frame = protocol.encode_request(1, "ping", codec.pack([]), [])
    raw.send(frame, frame, frame)
    _, status, body = raw.reply()
    assert status is Status.FIRE_ERROR
    assert body[0] == ProtocolError.wire_kind
    assert body[1].startswith("malformed request: not msgpack (")
    assert_still_serving(remote)


def test_a_request_in_frames_of_any_size_is_joined(raw: RawClient) -> None:
    raw.hello()
    message = protocol.encode_request(2, "ping", codec.pack([]), [])
    raw.send(*(message[i : i + 1] for i in range(len(message))))  # a frame per byte
    assert raw.reply() == (2, Status.OK, "pong")


def test_wrong_message_shape_gets_an_error_reply(raw: RawClient, remote: fire.Remote) -> None:
    raw.send(msgpack.packb({"operation": "ping"}))
    _, status, body = raw.reply()
    assert status is Status.FIRE_ERROR
    assert "a request is [request_id, operation, releases, arguments]" in body[1]
    assert_still_serving(remote)


def test_request_before_handshake_is_told_to_handshake(raw: RawClient) -> None:
    request_id, status, body = raw.request(5, "ping", [])
    assert request_id == 5
    assert status is Status.FIRE_ERROR
    assert body[0] == HandshakeRequired.wire_kind
    assert raw.hello()["protocol"] == protocol.PROTOCOL_VERSIONS[1]
    assert raw.request(6, "ping", []) == (6, Status.OK, "pong")


@pytest.mark.parametrize(
    "hello",
    [[], ["not a dict"], [{"versions": "1"}], [{"versions": [1]}], [{"versions": ["a", "b"]}]],
)
def test_malformed_hello_is_refused(raw: RawClient, hello: list[Any]) -> None:
    _, status, body = raw.request(1, "hello", hello)
    assert status is Status.FIRE_ERROR
    assert body[0] in (ProtocolError.wire_kind, HandshakeRequired.wire_kind)
    assert raw.hello()["protocol"] == protocol.PROTOCOL_VERSIONS[1]


def test_arguments_that_are_not_a_list_are_refused(raw: RawClient, remote: fire.Remote) -> None:
    raw.hello()
    request_id, status, body = raw.request(2, "ping", "not a list")
    assert (request_id, status) == (2, Status.FIRE_ERROR)
    assert body[0] == ProtocolError.wire_kind
    assert "arguments must be a list" in body[1]
    assert raw.request(3, "ping", []) == (3, Status.OK, "pong")
    assert_still_serving(remote)


def test_unknown_extension_in_arguments_is_refused(raw: RawClient) -> None:
    raw.hello()
    arguments = msgpack.packb([msgpack.ExtType(99, b"")])
    raw.send(protocol.encode_request(2, "ping", arguments, []))
    _, status, body = raw.reply()
    assert status is Status.FIRE_ERROR
    assert "unknown msgpack extension type 99" in body[1]


def test_unknown_operation_gets_an_error_reply(raw: RawClient) -> None:
    raw.hello()
    assert raw.request(2, "exec", ["print(1)"]) == (
        2,
        Status.FIRE_ERROR,
        [ProtocolError.wire_kind, "unknown operation 'exec'"],
    )


def test_a_frame_over_the_frame_limit_disconnects_its_sender_only(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
) -> None:
    server = server_factory(custom_server_argv(tmp_dir / "frames.sock"))
    with fire.connect(server.path, timeout=5) as bystander:
        raw = RawClient(server.endpoint)
        monitor = raw.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            assert raw.hello()["sessions"] == 2
            raw.send(b"x" * (protocol.FRAME_LIMIT + 1))  # one frame: what fire never sends
            assert monitor.poll(10_000), "the server kept the connection of an oversized frame"
            assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
        finally:
            raw.socket.disable_monitor()
            monitor.close(linger=0)
            raw.close()
        assert bystander.module("remote_helpers").echo("z" * 500) == "z" * 500
        assert wait_for(lambda: bystander.info()["sessions"] == 1)  # the dropped one's is gone


def test_a_request_over_max_message_size_is_answered_and_its_releases_kept(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
) -> None:
    limit = 2 * protocol.FRAME_SIZE
    server = server_factory(custom_server_argv(tmp_dir / "small.sock", max_message_size=limit))
    raw = RawClient(server.endpoint)
    try:
        raw.hello()
        for request_id, name in enumerate(("os", "sys"), start=2):  # two references
            raw.send(protocol.encode_request(request_id, "module", codec.pack([name]), []))
            assert protocol.decode_reply(raw.socket.recv())[:2] == (request_id, Status.OK)
        refs = raw.request(3, "info", [])[2]["refs"]
        assert refs == 2
        # A request just over the bound, in chunks as fire sends it, releasing every id.
        arguments = codec.pack(["x" * limit])
        message = protocol.encode_request(4, "ping", arguments, list(range(1, refs + 1)))
        raw.send(*protocol.split(message))
        request_id, status, body = raw.reply()
        assert (request_id, status, body[0]) == (4, Status.FIRE_ERROR, ProtocolError.wire_kind)
        assert body[1] == (
            f"a request of {len(message):,} bytes is over this server's max_message_size of "
            f"{limit:,} bytes: send less, or raise the limit (the server command's "
            "--max-message-size BYTES (`python -m fire serve` has it, and so do the "
            "frameworks' commands), or fire.Server(max_message_size=BYTES))"
        )
        assert raw.request(5, "info", [])[2]["refs"] == 0  # the releases were honoured
        assert raw.request(6, "ping", []) == (6, Status.OK, "pong")
    finally:
        raw.close()


def test_arguments_nested_too_deep_are_refused_and_the_server_lives(
    own_server: ServerProcess,
) -> None:
    # Found writing `make fuzz`: 300 tuples one inside the other, 1 KB, overflowed the
    # server's C stack while it unpacked them (a segfault), in a hello or any request.
    deep = msgpack.packb([])
    for _ in range(300):
        deep = msgpack.packb([msgpack.ExtType(1, deep)])  # [(…,)]: extension 1 is a tuple
    raw = RawClient(own_server.endpoint)
    try:
        raw.send(protocol.encode_request(1, "hello", deep, []))
        assert raw.reply()[:2] == (1, Status.FIRE_ERROR)
        raw.hello()
        raw.send(protocol.encode_request(2, "ping", deep, []))
        assert raw.reply() == (
            2,
            Status.FIRE_ERROR,
            [
                ProtocolError.wire_kind,
                "bad arguments: tuples, sets or slices nested more than 64 deep cannot travel",
            ],
        )
        assert raw.request(3, "ping", []) == (3, Status.OK, "pong")
    finally:
        raw.close()
    assert own_server.proc.poll() is None
