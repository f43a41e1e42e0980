"""``python -m fuzz.live --examples N --seed S``: a state machine against a live server.

hypothesis drives raw connections (`fuzz.raw.RawClient`) to one ``python -m fire serve``
process (`fuzz.server.LiveServer`) over its Unix socket: good calls between wrong
sequences — operations out of order, unknown operations, a hello twice or never, a
wrong hello, references of another connection's session or already released, values
past the server's ``max_message_size`` and nested past what travels, messages cut short
(one frame or the last of a multipart message), bytes that are no message, and
connections that go away. Every message must get its answer, with the error's text
where it is one; after every step the server process lives and a fresh connection's
hello and ``ping`` are answered.

The server's RSS is read after a warm-up run of the machine (its own seed), and again
after the measured run, once every session is closed: it must stay within `RSS_GROWTH`.
The run is reproducible from its seed (printed); hypothesis' example database is off.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import msgpack
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from fire.errors import HandshakeRequired, ProtocolError
from fire.server.operations import OPERATIONS
from fire.wire import protocol
from fire.wire.codec import EXT_TUPLE, MAX_NESTING
from fire.wire.protocol import Status

from .raw import RawClient, Ref
from .server import MAX_MESSAGE_SIZE, LiveServer

#: The most the server's RSS may grow from after the warm-up to after the run.
RSS_GROWTH = 0.05
#: Examples run before the RSS is first read. The server's RSS climbs for the first hundred
#: or so (its heap reaching the size the machine's mix of messages needs), then levels.
WARMUP = 100
#: A bound on waiting for the server to close the sessions of closed connections.
SETTLE_SECONDS = 30.0
NOT_ALIVE = "is not alive on this server (released, or from another connection)"
TOO_DEEP = f"tuples, sets or slices nested more than {MAX_NESTING} deep cannot travel"

plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.binary(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=20,
)


class Connection:
    """A raw client with a session and a reference to its playground box."""

    def __init__(self, client: RawClient, box: int) -> None:
        self.client = client
        self.box = box


class WireMachine(RuleBasedStateMachine):
    """Good and wrong sequences on raw connections to `server` (set before a run)."""

    server: LiveServer
    examples = 0
    steps = 0

    connections = Bundle("connections")
    refs = Bundle("refs")

    def __init__(self) -> None:
        super().__init__()
        type(self).examples += 1
        self.clients: list[RawClient] = []

    def client(self) -> RawClient:
        client = RawClient(self.server.endpoint)
        self.clients.append(client)
        return client

    def teardown(self) -> None:
        for client in self.clients:
            client.close()

    # good sequences
    @rule(target=connections)
    def connect(self) -> Connection:
        client = self.client()
        client.hello()
        status, module = client.request("module", ["fuzz.playground"])
        assert status is Status.OK and isinstance(module, Ref), module
        status, box = client.request("call", [[module.ref_id, "box"], [], {}])
        assert status is Status.OK and isinstance(box, Ref), box
        client.refs.update((module.ref_id, box.ref_id))
        return Connection(client, box.ref_id)

    @rule(connection=connections, value=plain_values)
    def echo(self, connection: Connection, value: Any) -> None:
        status, body = connection.client.request("call", [[connection.box, "echo"], [value], {}])
        assert (status, body) == (Status.OK, [[value], {}]), (status, body)

    @rule(target=refs, connection=connections)
    def child(self, connection: Connection) -> tuple[RawClient, int]:
        status, child = connection.client.request("call", [[connection.box, "child"], [], {}])
        assert status is Status.OK and isinstance(child, Ref), child
        connection.client.refs.add(child.ref_id)
        return connection.client, child.ref_id

    @rule(ref=refs)
    def use_own_reference(self, ref: tuple[RawClient, int]) -> None:
        client, ref_id = ref
        if ref_id in client.refs and not client.socket.closed:
            assert client.request("getattr", [ref_id, "label"]) == (Status.OK, "box")

    # wrong sequences
    @rule(connection=connections, ref=refs)
    def use_another_sessions_reference(
        self, connection: Connection, ref: tuple[RawClient, int]
    ) -> None:
        _, ref_id = ref
        if ref_id in connection.client.refs:
            return  # its own (ids may repeat across sessions)
        status, body = connection.client.request("getattr", [ref_id, "label"])
        assert status is Status.FIRE_ERROR and f"reference {ref_id} {NOT_ALIVE}" in body[1], body

    @rule(ref=consumes(refs))
    def use_a_released_reference(self, ref: tuple[RawClient, int]) -> None:
        client, ref_id = ref
        if client.socket.closed:
            return
        client.refs.discard(ref_id)
        assert client.request("ping", [], releases=[ref_id]) == (Status.OK, "pong")
        status, body = client.request("getattr", [ref_id, "label"])
        assert status is Status.FIRE_ERROR and f"reference {ref_id} {NOT_ALIVE}" in body[1], body

    @rule(connection=connections, name=st.text(min_size=1, max_size=20))
    def unknown_operation(self, connection: Connection, name: str) -> None:
        if name in {"hello", *OPERATION_NAMES}:
            return
        status, body = connection.client.request(name, [])
        assert (status, body) == (
            Status.FIRE_ERROR,
            [ProtocolError.wire_kind, f"unknown operation {name!r}"],
        ), body

    @rule(connection=connections)
    def hello_again(self, connection: Connection) -> None:
        status, body = connection.client.request("hello", [{"versions": [3, 3]}])
        assert (status, body[1]) == (Status.FIRE_ERROR, "unknown operation 'hello'"), body

    @rule(
        connection=connections,
        operation=st.sampled_from(["end_scope", "next", "exit", "len", "iter", "call"]),
    )
    def out_of_order(self, connection: Connection, operation: str) -> None:
        """Operations where nothing they need came first: an error reply, never a crash."""
        args: dict[str, list[Any]] = {
            "end_scope": [[], {}],
            "next": [connection.box, 10],  # a box is no iterator: no iter() came first
            "exit": [connection.box, None],  # no __enter__ came first: harmless here
            "len": [[connection.box, "label"]],
            "iter": [[connection.box, "label", "upper"]],
            "call": [[connection.box, "items"], [], {}],
        }
        status, body = connection.client.request(operation, args[operation])
        if operation == "end_scope":
            expected = Status.FIRE_ERROR, ["FireError", "end_scope without begin_scope"]
            assert (status, body) == expected, body
        elif operation == "exit":
            assert (status, body) == (Status.OK, False), body
        elif operation == "len":
            assert (status, body) == (Status.OK, 3), body
        else:
            assert status is Status.RAISED, (status, body)

    @rule(operation=st.sampled_from(["ping", "module", "call", "getattr"]))
    def before_handshake(self, operation: str) -> None:
        status, body = self.client().request(operation, [])
        assert status is Status.FIRE_ERROR and body[0] == HandshakeRequired.wire_kind, body

    @rule(
        hello=st.one_of(
            st.just([]),
            st.lists(plain_values, max_size=2),
            st.fixed_dictionaries({"versions": plain_values}).map(lambda d: [d]),
            st.just([{"versions": [1, 2]}]),
            st.integers(max_value=0).map(lambda n: [{"versions": [3, 3], "max_message_size": n}]),
        )
    )
    def wrong_hello(self, hello: list[Any]) -> None:
        client = self.client()
        status, body = client.request("hello", hello)
        if status is Status.OK:  # what hypothesis made happened to be a good hello
            return
        assert status is Status.FIRE_ERROR and body[0] in WRONG_HELLO_KINDS, body
        if hello == [{"versions": [1, 2]}]:
            assert "no common protocol version" in body[1], body
        client.hello()  # a refused hello leaves the connection free to try again

    @rule(connection=connections, extra=st.integers(1, 3 * protocol.FRAME_SIZE))
    def over_max_message_size(self, connection: Connection, extra: int) -> None:
        client = connection.client
        client.request_id += 1
        padding = "x" * (MAX_MESSAGE_SIZE + extra)
        message = protocol.encode_request(
            client.request_id, "call", msgpack.packb([[connection.box, "echo"], [padding], {}]), []
        )
        client.send(*protocol.split(message))
        request_id, status, body = client.reply()
        assert (request_id, status) == (client.request_id, Status.FIRE_ERROR), body
        assert f"is over this server's max_message_size of {MAX_MESSAGE_SIZE:,} bytes" in body[1]

    @rule(connection=connections, size=st.integers(0, MAX_MESSAGE_SIZE - 1024))
    def large_but_allowed(self, connection: Connection, size: int) -> None:
        value = b"y" * size
        status, body = connection.client.request("call", [[connection.box, "echo"], [value], {}])
        assert (status, body) == (Status.OK, [[value], {}]), (status, str(body)[:200])

    @rule(connection=connections, depth=st.integers(1, 3 * MAX_NESTING))
    def nested_tuples(self, connection: Connection, depth: int) -> None:
        client = connection.client
        client.request_id += 1
        inner = msgpack.packb([])
        for _ in range(depth - 1):
            inner = msgpack.packb([msgpack.ExtType(EXT_TUPLE, inner)])
        arguments = msgpack.packb(
            [[connection.box, "echo"], [msgpack.ExtType(EXT_TUPLE, inner)], {}]
        )
        client.send(protocol.encode_request(client.request_id, "call", arguments, []))
        _, status, body = client.reply()
        if depth <= MAX_NESTING:
            assert status is Status.OK, body
        else:
            assert (status, body) == (
                Status.FIRE_ERROR,
                [ProtocolError.wire_kind, f"bad arguments: {TOO_DEEP}"],
            ), body

    @rule(connection=connections, depth=st.integers(1, 3000))
    def nested_lists(self, connection: Connection, depth: int) -> None:
        client = connection.client
        client.request_id += 1
        # [target, [value], {}] by hand: msgpack would not pack lists this deep.
        value = b"\x91" * depth + b"\x90"
        arguments = b"\x93" + msgpack.packb([connection.box, "echo"]) + b"\x91" + value + b"\x80"
        client.send(protocol.encode_request(client.request_id, "call", arguments, []))
        request_id, status, body = client.reply()
        assert request_id == client.request_id
        assert status in (Status.OK, Status.FIRE_ERROR), body

    @rule(
        connection=connections,
        value=plain_values,
        cut=st.integers(0, 10_000),
        chunked=st.booleans(),
    )
    def cut_short(self, connection: Connection, value: Any, cut: int, chunked: bool) -> None:
        """A request cut anywhere: in its one frame, or in the last frame of a multipart."""
        client = connection.client
        client.request_id += 1
        padding = b"z" * (protocol.FRAME_SIZE if chunked else 0)
        arguments = msgpack.packb([[connection.box, "echo"], [padding], {}])
        message = protocol.encode_request(client.request_id, "call", arguments, [])
        message = message[: len(message) - 1 - cut % (len(message) - 1)]
        frames = protocol.split(message) if chunked else [memoryview(message)]
        client.send(*(bytes(frame) for frame in frames))
        _, status, body = client.reply()
        assert status is Status.FIRE_ERROR and body[0] == ProtocolError.wire_kind, body
        assert body[1].startswith("malformed request"), body

    @rule(data=st.binary(max_size=300), fresh=st.booleans(), connection=connections)
    def garbage(self, data: bytes, fresh: bool, connection: Connection) -> None:
        client = self.client() if fresh else connection.client
        client.send(data)
        _, status, _ = client.reply()  # any answer, but one a client reads
        assert status in (Status.FIRE_ERROR, Status.OK, Status.RAISED)

    @rule(connection=consumes(connections))
    def disconnect(self, connection: Connection) -> None:
        connection.client.refs.clear()
        connection.client.close()

    # after every step
    @invariant()
    def server_still_serves(self) -> None:
        type(self).steps += 1
        assert self.server.alive(), f"the server died (exit code {self.server.process.poll()})"
        client = RawClient(self.server.endpoint)
        try:
            client.hello()
            assert client.request("ping", []) == (Status.OK, "pong")
        finally:
            client.close()


#: The operations a plain server has (the unknown-operation rule skips them).
OPERATION_NAMES = {
    *OPERATIONS,
    "ping",
    "info",
    "begin_scope",
    "end_scope",
}
#: What a refused hello is answered with.
WRONG_HELLO_KINDS = {ProtocolError.wire_kind, HandshakeRequired.wire_kind}


def run(server: LiveServer, examples: int, run_seed: int) -> None:
    """Run the machine for `examples` examples from `run_seed` against `server`."""
    WireMachine.server = server
    machine = seed(run_seed)(WireMachine)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def settle(server: LiveServer) -> int:
    """Wait until the server holds only the asking session; its count of sessions."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        client = RawClient(server.endpoint)
        try:
            sessions: int = client.hello()["sessions"]
        finally:
            client.close()
        if sessions == 1 or time.monotonic() > deadline:
            return sessions
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.live", description=__doc__)
    parser.add_argument("--examples", type=int, default=100, help="examples (default 100)")
    parser.add_argument(
        "--warmup", type=int, default=WARMUP, help=f"warm-up examples (default {WARMUP})"
    )
    parser.add_argument("--seed", type=int, default=1, help="hypothesis' seed (default 1)")
    options = parser.parse_args(argv)
    print(f"fuzz.live: seed {options.seed}, {options.examples} examples", flush=True)
    started = time.monotonic()
    server = LiveServer()
    try:
        if options.warmup > 0:  # 0: the RSS is first read on the fresh server
            run(server, options.warmup, options.seed + 1)
        settle(server)
        before = server.rss_kib()
        WireMachine.examples = WireMachine.steps = 0
        run(server, options.examples, options.seed)
        examples, steps = WireMachine.examples, WireMachine.steps
        sessions = settle(server)
        after = server.rss_kib()
    finally:
        code = server.stop()
    growth = after / before - 1
    print(
        f"fuzz.live: {examples} examples, {steps} checked steps, 0 crashes; "
        f"server RSS {before:,} KiB after warm-up, {after:,} KiB after ({growth:+.1%}, "
        f"limit {RSS_GROWTH:+.0%}); sessions left: {sessions - 1}; stopped with exit code "
        f"{code}; {time.monotonic() - started:.0f} s",
        flush=True,
    )
    if growth > RSS_GROWTH or sessions != 1:
        print("fuzz.live: FAILED (RSS grew past the limit, or sessions were left)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
