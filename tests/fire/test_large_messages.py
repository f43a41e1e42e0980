"""Messages longer than a frame travel in chunks; each side bounds a whole message.

Every server here is a real process; the misbehaving server is a real ROUTER socket in
this process, answering what no fire server would.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from servers import Keys, ServerProcess, curve_argv, serve_argv

import fire
from fire.wire import protocol
from fire.wire.codec import plain_codec
from fire.wire.protocol import FRAME_SIZE, Status

MiB = 1024 * 1024
_plain = plain_codec()


@pytest.fixture(params=["ipc", "curve-tcp"])
def large_remote(
    request: pytest.FixtureRequest,
    shared_server: ServerProcess,
    server_factory: Callable[..., ServerProcess],
    keys: Keys,
) -> Iterator[fire.Remote]:
    """A connection to a server over a Unix socket, or over CURVE TCP on loopback."""
    if request.param == "ipc":
        connection = fire.connect(shared_server.path, timeout=30)
    else:
        server = server_factory(curve_argv(keys, "tcp://127.0.0.1:0"))
        connection = fire.connect(server.endpoint, curve=keys.client(), timeout=30)
    with connection:
        yield connection


def test_a_large_argument_and_return_value_round_trip(large_remote: fire.Remote) -> None:
    helpers = large_remote.module("remote_helpers")
    value = {"blob": os.urandom(3 * MiB), "text": "é✓" * MiB, "rows": list(range(200_000))}
    assert helpers.echo(value) == value  # about 7 MiB each way: more than 100 frames
    assert helpers.type_names(value["rows"]) == {"list": ["int"] * 200_000}


def test_a_large_reply_of_references_gives_working_proxies(large_remote: fire.Remote) -> None:
    things = large_remote.module("remote_helpers").make_things(20_000)
    assert len(things) == 20_000
    assert (things[0].name, things[-1].name) == ("thing-0", "thing-19999")


def test_a_request_over_the_server_s_bound_is_refused_and_the_session_goes_on(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
) -> None:
    server = server_factory(serve_argv(tmp_dir / "bound.sock", "--max-message-size", str(MiB)))
    with fire.connect(server.path, timeout=30) as remote:
        helpers = remote.module("remote_helpers")
        kept = helpers.Thing("kept")
        dropped = helpers.Thing("dropped")
        refs = remote.info()["refs"]
        del dropped
        gc.collect()  # its release rides on the next request: the refused one
        with pytest.raises(fire.ProtocolError) as raised:
            helpers.echo("x" * (2 * MiB))
        message = str(raised.value)
        assert "is over this server's max_message_size of 1,048,576 bytes" in message
        assert "raise the limit (the server command's --max-message-size BYTES" in message
        assert remote.info()["refs"] == refs - 1  # the release was honoured
        assert kept.name == "kept"
        assert helpers.echo("y" * (MiB // 2)) == "y" * (MiB // 2)  # chunks, within the bound


def test_a_reply_over_the_client_s_bound_is_not_sent_and_leaves_nothing_behind(
    shared_server: ServerProcess,
) -> None:
    with fire.connect(shared_server.path, timeout=30, max_message_size=FRAME_SIZE) as remote:
        helpers = remote.module("remote_helpers")
        refs = remote.info()["refs"]
        with pytest.raises(fire.ProtocolError) as raised:
            helpers.make_things(20_000)  # 20,000 references: more than 64 KiB
        message = str(raised.value)
        assert "is over this client's max_message_size of 65,536 bytes" in message
        assert "raise the client's limit (fire.connect(max_message_size=BYTES))" in message
        assert remote.info()["refs"] == refs  # the reply's references were dropped
        # Its type descriptions were not sent either: they come with the next reply.
        things = helpers.make_things(2)
        assert not callable(things[0])
        assert [thing.name for thing in things] == ["thing-0", "thing-1"]


def test_a_bound_below_one_frame_is_refused(tmp_dir: Path) -> None:
    with pytest.raises(fire.FireError, match="max_message_size must be at least 65536 bytes"):
        fire.Server(tmp_dir / "tiny.sock", max_message_size=1000)


class MisbehavingServer:
    """A ROUTER that answers hello as a fire server, then every request with `reply`."""

    def __init__(self, path: Path, reply: Callable[[int], list[bytes]]) -> None:
        self.socket = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, 10_000)  # a bound on the wait, not a measure
        self.socket.bind(f"ipc://{path}")
        self.reply = reply
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        try:
            identity, message = self.socket.recv_multipart()
            hello = protocol.decode_request(message)
            info = _plain.pack({"protocol": protocol.PROTOCOL_VERSIONS[1]})
            reply = protocol.encode_reply(hello.request_id, Status.OK, info, None)
            self.socket.send_multipart([identity, reply])
            identity, message = self.socket.recv_multipart()
            request_id = protocol.decode_request(message).request_id
            self.socket.send_multipart([identity, *self.reply(request_id)])
        except zmq.ZMQError:
            pass  # closed by the test

    def close(self) -> None:
        self.socket.close(linger=0)
        self.thread.join(timeout=10)


def chunked_reply(request_id: int) -> list[Any]:
    """A reply of 4 frames, as fire sends them, ignoring the client's bound."""
    body = _plain.pack("x" * (3 * FRAME_SIZE))
    return protocol.split(protocol.encode_reply(request_id, Status.OK, body, None))


def one_huge_frame(request_id: int) -> list[Any]:
    """A reply in one frame over the frame limit: what fire never sends."""
    body = _plain.pack("x" * (2 * FRAME_SIZE))
    return [protocol.encode_reply(request_id, Status.OK, body, None)]


@pytest.mark.parametrize(
    ("reply", "error", "says"),
    [
        (chunked_reply, fire.ProtocolError, "over this client's max_message_size of 65,536"),
        (one_huge_frame, fire.ServerUnavailable, "went away"),
    ],
    ids=["over the client's bound", "a frame over the limit"],
)
def test_the_client_refuses_a_reply_its_server_should_not_send(
    tmp_dir: Path, reply: Callable[[int], list[bytes]], error: type[Exception], says: str
) -> None:
    server = MisbehavingServer(tmp_dir / "bad.sock", reply)
    try:
        remote = fire.connect(tmp_dir / "bad.sock", timeout=10, max_message_size=FRAME_SIZE)
        with remote, pytest.raises(error, match=says):
            remote.ping()
    finally:
        server.close()
