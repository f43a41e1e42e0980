"""A real TCP relay between a client and a server, that a test can cut, freeze and restore.

It stands for the network between them: `cut` closes every connection and refuses new
ones (a link that drops: both ends see it at once), `freeze` stops forwarding but keeps
the connections open (a half-open link, or a peer that stopped answering: neither end
hears anything), `restore` forwards and accepts again, on the same port.
"""

from __future__ import annotations

import selectors
import socket
import threading

__all__ = ["Relay"]

_TICK = 0.02  # seconds between the loop's looks at what the test asked


class Relay:
    """Forwards ``127.0.0.1:port`` to `target` (host, port) in a thread of its own."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._peer: dict[socket.socket, socket.socket] = {}
        self._frozen = False
        self._running = True
        self.port = self._listen(0)
        self._thread = threading.Thread(target=self._loop, name="relay", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _listen(self, port: int) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ)
        self._listener = listener
        return int(listener.getsockname()[1])

    def cut(self) -> None:
        """Close every connection and stop listening (connecting is refused)."""
        with self._lock:
            for sock in list(self._peer):
                self._drop(sock)
            if self._listener is not None:
                self._selector.unregister(self._listener)
                self._listener.close()
                self._listener = None

    def freeze(self) -> None:
        """Stop forwarding; the connections stay open and nothing is said to either end."""
        with self._lock:
            self._frozen = True

    def restore(self) -> None:
        """Forward again (what waited goes through) and accept on the same port."""
        with self._lock:
            self._frozen = False
            if self._listener is None:
                self._listen(self.port)

    def close(self) -> None:
        self.cut()
        self._running = False
        self._thread.join(timeout=10)
        self._selector.close()

    def _loop(self) -> None:
        while self._running:
            with self._lock:
                ready = [] if self._frozen else self._selector.select(0)
                for key, _ in ready:
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        self._accept(sock)
                    elif sock in self._peer:
                        self._forward(sock)
            threading.Event().wait(_TICK if not ready else 0)

    def _accept(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        server = socket.create_connection(self.target)
        for one, other in ((client, server), (server, client)):
            one.setblocking(False)
            self._peer[one] = other
            self._selector.register(one, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        other = self._peer[sock]
        other.setblocking(True)  # the other end takes it all (small test traffic)
        try:
            other.sendall(data)
        except OSError:
            self._drop(sock)
            return
        other.setblocking(False)

    def _drop(self, sock: socket.socket) -> None:
        """Close `sock` and its peer."""
        for one in (sock, self._peer.get(sock)):
            if one is not None and one in self._peer:
                del self._peer[one]
                self._selector.unregister(one)
                one.close()
