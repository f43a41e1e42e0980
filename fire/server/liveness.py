"""How long a TCP client may stay silent before the server drops it: ZeroMQ's heartbeats.

A TCP link can die without a word: a cable pulled, a NAT that forgot the connection, a
client frozen (SIGSTOP, a suspended laptop). The server would then hold that client's
session, and its test scope, for ever. So a TCP server asks ZeroMQ to check each link
(``ZMQ_HEARTBEAT_IVL/TIMEOUT/TTL``, answered by ZeroMQ's own I/O thread, never by
Python code, so a busy request never misses one): a link silent for the *liveness* time
is closed, and its session closes as for any disconnection (its scopes rolled back).

The options are picked from that one figure so that a silent client is dropped within
it: the server pings every third of it, and drops a link that has not answered a ping
within the other two thirds. Its pings carry the liveness time as their TTL too, after
which ZeroMQ on the client drops a link that has been silent since a ping (the client's
own pings, `fire.net.transport`, are what let a silent server go in every case).

Unix sockets need none of this: a client that dies closes its end, and the kernel says so.
"""

from __future__ import annotations

import zmq

from ..errors import FireError

__all__ = ["DEFAULT_LIVENESS", "heartbeat_options"]

#: Seconds a TCP client may be silent before its session closes (``--liveness``).
DEFAULT_LIVENESS = 20.0
#: ZeroMQ sends the TTL in deciseconds, in 16 bits.
_MAX_LIVENESS = 6553.0


def heartbeat_options(liveness: float) -> dict[int, int]:
    """The ZeroMQ socket options that drop a link silent for `liveness` seconds."""
    if not 0.3 <= liveness <= _MAX_LIVENESS:
        raise FireError(
            f"liveness must be between 0.3 and {_MAX_LIVENESS:g} seconds, not {liveness:g}"
        )
    milliseconds = int(liveness * 1000)
    return {
        zmq.HEARTBEAT_IVL: milliseconds // 3,
        zmq.HEARTBEAT_TIMEOUT: milliseconds - milliseconds // 3,
        zmq.HEARTBEAT_TTL: milliseconds,
    }
