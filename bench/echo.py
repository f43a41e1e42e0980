"""The floor: a raw pyzmq DEALER/ROUTER msgpack echo, the least any ZeroMQ + msgpack RPC pays.

The server (``python -m bench.echo ENDPOINT``, a process of its own) unpacks each
message and packs it again, as any dispatcher must, and sends it back; the client
packs a small request shaped like fire's and unpacks the reply. Nothing else: no
request ids checked, no timeouts, no error handling. fire's rows are compared to this.
The client waits for the reply as fire's does (`fire.net.transport.spin_until_readable`
first, then ``recv``), or with ``spin_wait=0`` sleeps in ``recv`` at once.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import msgpack
import zmq

from fire.net.transport import DEFAULT_SPIN_WAIT, spin_until_readable

if TYPE_CHECKING:
    from .registry import Env

__all__ = ["EchoClient", "echo_endpoint", "serve"]

#: A small request, shaped like fire's call of ``operator.add(1, 2)``.
MESSAGE = [1, "call", [[1, "add"], [1, 2], {}], []]


def serve(endpoint: str) -> None:
    """Echo every message, unpacked and re-packed, until killed."""
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)
    print("echo server ready", flush=True)
    # As fire's server does: frames not copied in, two sends out (cheaper than the
    # multipart calls' generic loops), so the floor is the least such a loop pays.
    recv, send, more = router.recv, router.send, zmq.SNDMORE
    packb, unpackb = msgpack.packb, msgpack.unpackb
    while True:
        identity = recv(copy=False)
        frame = recv(copy=False)
        send(identity, more)
        send(packb(unpackb(frame.buffer)))


def echo_endpoint(env: Env) -> str:
    """The endpoint of the run's echo server, started on first use (one per `env`)."""

    def start() -> str:
        endpoint = env.endpoint("echo.sock")
        env.spawn([sys.executable, "-m", "bench.echo", endpoint], "echo server ready")
        return endpoint

    return env.shared("echo", start)


class EchoClient:
    """A DEALER connected to the echo server; `call` is one round trip."""

    def __init__(self, endpoint: str, spin_wait: float = DEFAULT_SPIN_WAIT) -> None:
        self._socket = zmq.Context.instance().socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
        self._spin_wait = spin_wait

    def call(self) -> object:
        self._socket.send(msgpack.packb(MESSAGE))
        if self._spin_wait:
            spin_until_readable(self._socket, time.perf_counter() + self._spin_wait)
        return msgpack.unpackb(self._socket.recv())

    def close(self) -> None:
        self._socket.close(linger=0)


if __name__ == "__main__":
    serve(sys.argv[1])
