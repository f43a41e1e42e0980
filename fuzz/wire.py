"""``python -m fuzz.wire -runs=N -seed=S``: atheris over the wire format and the dispatcher.

Each input is cut (atheris' `FuzzedDataProvider`) into a few messages, which go where a
server's socket loop sends what comes off the wire: `Dispatcher.handle` (one frame) or
`Dispatcher.handle_chunks` (a multipart message), from a connection with a session and
from one without (the handshake). Some messages are raw bytes; others are well-formed
envelopes around an operation of the server's table and arguments that are raw bytes
or msgpack built from the input, so that the fuzzer gets past the envelope. The same
bytes also go to the decoders alone (`decode_request`, `decode_reply`, `peek`, `greet`).

A crash is what a server must never do with bytes from a peer:

- any exception out of the dispatcher, or out of a decoder other than `ProtocolError`;
- a message answered other than exactly once, or with a reply a client cannot decode;
- after the input, a good request of the same session not answered ``pong``, or a
  fresh connection's hello refused; or a session left behind once its connections went.

One dispatcher serves the whole run, as one server process serves many clients. Its
``module`` operation gives only `fuzz.playground` objects (see `fuzz`); every other
operation is the real one. libFuzzer's options pass through (``-runs``, ``-seed``,
``-max_len``…); crash inputs are written under ``build/fuzz/`` unless
``-artifact_prefix`` says otherwise, and a crash input replays with
``python -m fuzz.wire build/fuzz/crash-…``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import atheris
import msgpack

with atheris.instrument_imports():
    from fire.errors import FireError, ProtocolError
    from fire.server.dispatch import Dispatcher
    from fire.wire import protocol
    from fire.wire.codec import EXT_ARGREF, EXT_REF, EXT_TUPLE, Codec, plain_codec
    from fire.wire.handshake import greet
    from fire.wire.protocol import Status

from . import playground

_plain = plain_codec()

#: The connection with a session (opened again for each input), one that never
#: handshakes unless the input does, and a fresh one that checks the server afterwards.
SESSION, STRANGER, FRESH = b"fuzz-session", b"fuzz-stranger", b"fuzz-fresh"
#: Messages per input at most, and bytes per message at most (libFuzzer's -max_len
#: bounds the whole input too).
MAX_MESSAGES = 8
MAX_MESSAGE = 2048
#: Attribute names the structured arguments use (the playground's, and some that fail).
NAMES = ["echo", "fail", "numbers", "child", "items", "mapping", "inner", "label", "nope"]
#: Where libFuzzer writes crash inputs unless told otherwise.
ARTIFACTS = "build/fuzz/"


class Crash(AssertionError):
    """The server did what it must never do with bytes from a peer (see the module)."""


class Harness:
    """One dispatcher, the replies it sent, and the checks run on each input."""

    def __init__(self) -> None:
        self.replies: list[tuple[bytes, bytes]] = []
        # The smallest bound on a request, so that chunks padded past it are refused.
        self.dispatcher = Dispatcher(
            lambda identity, reply: self.replies.append((identity, reply)),
            max_message_size=protocol.FRAME_SIZE,
        )
        self.dispatcher.operations["module"] = _playground_module
        self.operations = [*sorted(self.dispatcher.operations), "hello", "unknown"]
        # Replies may hold references: the client's reading of them, without a client.
        self.reader = Codec(_refuse, lambda code, data: (code, data))
        self.request_ids = iter(range(1, sys.maxsize))
        #: Reference ids the structured arguments name: this input's session's, the
        #: previous input's (released, as another session's are), and 0 (never one).
        self.ref_ids: list[int] = [0]

    # one input
    def run(self, data: bytes) -> None:
        self.replies.clear()
        check_decoders(data)
        provider = atheris.FuzzedDataProvider(data)
        self.open_session()
        for _ in range(provider.ConsumeIntInRange(0, MAX_MESSAGES)):
            if not provider.remaining_bytes():
                break
            identity = SESSION if provider.ConsumeBool() else STRANGER
            self.deliver(identity, provider)
        self.check_still_serving()
        for identity in (SESSION, STRANGER, FRESH):
            self.dispatcher.disconnected(identity)
        if self.dispatcher.sessions:
            raise Crash(f"sessions left after their connections went: {self.dispatcher.sessions}")

    def open_session(self) -> None:
        """The session's hello and a reference to a playground box (its parts are reached
        through targets: ``[box, "child"]``)."""
        self.expect_ok(SESSION, "hello", [{"versions": list(protocol.PROTOCOL_VERSIONS)}])
        box = _ref_id(self.expect_ok(SESSION, "module", ["box"]))
        self.ref_ids = [0, *self.ref_ids[-1:], box]

    def deliver(self, identity: bytes, provider: Any) -> None:
        """One message from the input, as raw bytes, a request or chunks."""
        kind = provider.ConsumeIntInRange(0, 3)
        if kind == 0:
            message = provider.ConsumeBytes(provider.ConsumeIntInRange(0, MAX_MESSAGE))
        else:
            operation = provider.PickValueInList(self.operations)
            if operation == "unknown":
                operation = provider.ConsumeUnicodeNoSurrogates(12)
            releases = [
                provider.PickValueInList(self.ref_ids)
                for _ in range(provider.ConsumeIntInRange(0, 3))
            ]
            if kind == 1:
                arguments = provider.ConsumeBytes(provider.ConsumeIntInRange(0, MAX_MESSAGE))
            else:
                arguments = msgpack.packb(
                    [
                        _value(provider, 0, self.ref_ids)
                        for _ in range(provider.ConsumeIntInRange(0, 4))
                    ]
                )
            message = protocol.encode_request(
                provider.ConsumeIntInRange(0, 2**31), operation, arguments, releases
            )
        before = len(self.replies)
        if kind == 3 and len(message) > 1:
            cuts = sorted({provider.ConsumeIntInRange(1, len(message) - 1) for _ in range(3)})
            chunks = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)]
            if provider.ConsumeBool():  # past max_message_size: refused, its releases kept
                chunks.append(bytes(protocol.FRAME_SIZE))
            self.dispatcher.handle_chunks(identity, chunks)
        else:
            self.dispatcher.handle(identity, message)
        answered = self.replies[before:]
        if [to for to, _ in answered] != [identity]:
            raise Crash(f"a message was answered {len(answered)} times: {answered!r:.500}")
        self.read(answered[0][1])

    # checks
    def check_still_serving(self) -> None:
        """The session's ``ping`` is answered ``pong``, and a fresh connection's hello."""
        if self.expect_ok(SESSION, "ping", []) != "pong":
            raise Crash("the session's ping was not answered pong")
        info = self.expect_ok(FRESH, "hello", [{"versions": list(protocol.PROTOCOL_VERSIONS)}])
        if not isinstance(info, dict) or info.get("protocol") != protocol.PROTOCOL_VERSIONS[1]:
            raise Crash(f"a fresh connection's hello was answered {info!r:.300}")

    def expect_ok(self, identity: bytes, operation: str, args: list[Any]) -> Any:
        request_id = next(self.request_ids)
        before = len(self.replies)
        message = protocol.encode_request(request_id, operation, _plain.pack(args), [])
        self.dispatcher.handle(identity, message)
        answered = self.replies[before:]
        if len(answered) != 1:
            raise Crash(f"{operation} was answered {len(answered)} times")
        reply_id, status, body = self.read(answered[0][1])
        if (reply_id, status) != (request_id, Status.OK):
            raise Crash(f"{operation} failed: {status!r} {body!r:.300}")
        return body

    def read(self, reply: bytes) -> tuple[int | None, Status, Any]:
        """A reply as a client reads it; a `Crash` if a client could not."""
        try:
            request_id, status, body, shapes = protocol.decode_reply(reply)
            value = self.reader.unpack(body)
            if shapes is not None:
                msgpack.unpackb(shapes, strict_map_key=False)
        except Exception as exc:
            raise Crash(f"a reply a client cannot read ({exc}): {reply!r:.300}") from exc
        if status is Status.FIRE_ERROR and not (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
        ):
            raise Crash(f"a FIRE_ERROR body that is not [kind, message]: {value!r:.300}")
        return request_id, status, value


def check_decoders(data: bytes) -> None:
    """The decoders alone: `ProtocolError` or a result, never anything else."""
    for decode in (protocol.decode_request, protocol.decode_reply):
        with contextlib.suppress(ProtocolError):
            decode(data)
    half = len(data) // 2
    protocol.peek([data[:half], data[half:]], 3)
    try:
        arguments = _plain.unpack(data)
    except Exception:  # any: the dispatcher answers "bad arguments" (no narrower contract)
        return
    greeting = greet("hello", arguments, protocol.PROTOCOL_VERSIONS)
    if (greeting.version is None) == (greeting.refusal is None):
        raise Crash(f"a greeting with both or neither a version and a refusal: {greeting}")


def _ref_id(value: Any) -> int:
    """The id of the reference a reply's value is (read by `Harness.reader`)."""
    if not (isinstance(value, tuple) and value[0] == EXT_REF):
        raise Crash(f"a reference was expected, not {value!r:.200}")
    ref_id: int = msgpack.unpackb(value[1])[0]
    return ref_id


def _value(provider: Any, depth: int, ref_ids: list[int]) -> Any:
    """A msgpack-able value from the input: plain data, a tuple, or a reference back."""
    kind = provider.ConsumeIntInRange(0, 9 if depth < 4 else 5)
    if kind == 0:
        return provider.ConsumeInt(8)
    if kind == 1:
        return provider.ConsumeUnicodeNoSurrogates(provider.ConsumeIntInRange(0, 40))
    if kind == 2:
        return provider.ConsumeBytes(provider.ConsumeIntInRange(0, 40))
    if kind == 3:
        return provider.PickValueInList([None, True, False, 0.5, float("nan")])
    if kind == 4:
        return provider.PickValueInList(NAMES)
    if kind == 5:  # a reference of the session, maybe with attribute names
        target = [provider.PickValueInList(ref_ids)]
        target += [provider.PickValueInList(NAMES) for _ in range(provider.ConsumeIntInRange(0, 2))]
        return msgpack.ExtType(EXT_ARGREF, msgpack.packb(target))
    if kind == 6:  # a target as operations take it: [reference, names...]
        return [provider.PickValueInList(ref_ids), provider.PickValueInList(NAMES)]
    if kind == 7:
        return {
            _value(provider, 5, ref_ids): _value(provider, depth + 1, ref_ids)
            for _ in range(provider.ConsumeIntInRange(0, 3))
        }
    if kind == 8:  # a tuple (an extension holding msgpack)
        items = [
            _value(provider, depth + 1, ref_ids) for _ in range(provider.ConsumeIntInRange(0, 3))
        ]
        return msgpack.ExtType(EXT_TUPLE, msgpack.packb(items))
    return [_value(provider, depth + 1, ref_ids) for _ in range(provider.ConsumeIntInRange(0, 4))]


def _playground_module(session: Any, name: object) -> Any:
    """``module`` for the fuzzer: playground objects only (see `fuzz`)."""
    if name == "box":
        return playground.box()
    raise FireError(f"the fuzzer's server has no module {name!r:.50}")


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not plain data")


def main(argv: list[str] | None = None) -> None:
    """Run atheris with libFuzzer's options (`argv`), crash inputs under `ARTIFACTS`."""
    argv = list(sys.argv if argv is None else argv)
    if not any(arg.startswith("-artifact_prefix=") for arg in argv):
        os.makedirs(ARTIFACTS, exist_ok=True)
        argv.append(f"-artifact_prefix={ARTIFACTS}")
    if not any(arg.startswith("-max_len=") for arg in argv):
        argv.append("-max_len=4096")
    if not any(arg.startswith("-print_final_stats=") for arg in argv):
        argv.append("-print_final_stats=1")
    logging.disable(logging.CRITICAL)  # an extension's logged failure is not a crash
    harness = Harness()
    one_input: Callable[[bytes], None] = harness.run
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
