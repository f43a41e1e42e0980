"""The rivals' server sides, each in a process of its own, as the floor's and fire's are.

``python -m bench.rivals rpyc PATH`` serves RPyC's classic ``SlaveService`` on a Unix
socket; ``python -m bench.rivals pyro5 PATH`` serves `Service` from a Pyro5 daemon on a
Unix socket and prints its URI. execnet has no server to start: its popen gateway is a
child process on pipes, and `execnet_loop` is what runs there (``remote_exec``).

The rows that use them are in `bench.cases_rivals`. Each library is used as its
documentation shows, with its defaults (Pyro5's serializer: serpent, unless a row's
proxy asks for msgpack), so a row prices what a user of that library pays.
"""

from __future__ import annotations

import operator
import sys
from typing import TYPE_CHECKING

from .targets import outer

if TYPE_CHECKING:
    import execnet

__all__ = ["Service", "execnet_loop", "items", "serve_pyro5", "serve_rpyc"]


class Service:
    """What the Pyro5 daemon exposes: Pyro5 calls methods of registered objects only.

    It cannot expose a module or follow an attribute chain over the wire, so each of the
    bench's operations is a method doing the same on the server.
    """

    def add(self, a: int, b: int) -> int:
        """``operator.add(a, b)``: the simple call."""
        return operator.add(a, b)

    def outer_inner_add(self, a: int, b: int) -> int:
        """``outer.inner.add(a, b)``: the chain's three attributes read here, on the server."""
        return outer.inner.add(a, b)

    def items(self, count: int) -> list[int]:
        """`items`: the list returned whole (serpent cannot encode a range)."""
        return items(count)


def items(count: int) -> list[int]:
    """``list(range(count))``: the 10,000 items, for rivals that copy a list but not a range."""
    return list(range(count))


def serve_rpyc(path: str) -> None:
    """RPyC's classic server (any module, any attribute) on a Unix socket, until killed."""
    from rpyc.core.service import SlaveService
    from rpyc.utils.server import ThreadedServer

    server = ThreadedServer(SlaveService, socket_path=path)
    # Bound, but start() is what listens: a client told "ready" before would be refused.
    server.listener.listen(server.backlog)
    print("rpyc server ready", flush=True)
    server.start()


def serve_pyro5(path: str) -> None:
    """A Pyro5 daemon on a Unix socket with `Service` registered, until killed."""
    import Pyro5.api

    daemon = Pyro5.api.Daemon(unixsocket=path)
    uri = daemon.register(Pyro5.api.expose(Service), "bench")
    print(f"pyro5 server ready {uri}", flush=True)
    daemon.requestLoop()


def execnet_loop(channel: "execnet.Channel") -> None:  # noqa: UP037 (quoted: see below)
    """Answer ``(module, attributes, args)`` messages with the call's result, until closed.

    Runs in the gateway's process (``gateway.remote_exec(execnet_loop)``), so it imports
    what it needs itself. The attributes are read on every message, as fire reads a
    chain on every call; execnet's serializer copies only plain data, so a result must be
    one (the bench asks for ``list(range(n))``, not the range). execnet sends this
    function's source alone: the annotation is quoted, as names of this module are not
    there.
    """
    import importlib

    for module, attributes, args in channel:
        target = importlib.import_module(module)
        for name in attributes:
            target = getattr(target, name)
        channel.send(target(*args))


SERVERS = {"rpyc": serve_rpyc, "pyro5": serve_pyro5}

if __name__ == "__main__":
    SERVERS[sys.argv[1]](sys.argv[2])
