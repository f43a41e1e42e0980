"""The test process's end of ``breakpoint()`` in a service: a socket and a terminal relay.

A service's ``breakpoint()`` (`fire.server.breakpoints`) connects to the Unix socket a
`DebuggerListener` listens at (in a private directory, mode 0700), and its pdb talks
over that connection. The listener's thread relays it to this process's terminal:
pdb's output is written out, and at each request for a line (a NUL byte) one line is
read from the terminal and sent. The test's own thread is meanwhile waiting (for a
fire call's reply, which `fire.client.debugging.paused` keeps from timing out, or for
an HTTP response), so the terminal is the debugger's.

One debugger session at a time: a second breakpoint (another thread of the service)
waits for the first to end, as it would in one process under pdb.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..client.debugging import paused
from ..server.breakpoints import ASKS_FOR_A_LINE

__all__ = ["DebuggerListener"]


def _read_terminal() -> str | None:
    line = sys.stdin.readline()
    return line if line else None


def _write_terminal(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class DebuggerListener:
    """Listens for services' ``breakpoint()`` and relays each to the terminal.

    `before` and `after` run around each session (pytest suspends and resumes its
    output capture there); `read_line` and `write` are the terminal (stdin and stdout by
    default). `address` is what clients tell their servers (``debug_attach``).
    """

    def __init__(
        self,
        *,
        before: Callable[[], Any] = lambda: None,
        after: Callable[[], Any] = lambda: None,
        read_line: Callable[[], str | None] = _read_terminal,
        write: Callable[[str], Any] = _write_terminal,
    ) -> None:
        self._before, self._after = before, after
        self._read_line, self._write = read_line, write
        self._directory = Path(tempfile.mkdtemp(prefix="fire-pdb-"))  # mode 0700
        self.address = str(self._directory / "debugger.sock")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(self.address)
        os.chmod(self.address, 0o600)
        self._socket.listen(8)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="fire-debugger", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening and remove the socket (a session in progress ends with it)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(5)
        for path in (Path(self.address), self._directory):
            with contextlib.suppress(OSError):
                path.unlink() if path.is_socket() else path.rmdir()

    def _serve(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection, paused():
                self._before()
                try:
                    self._relay(connection)
                except OSError:
                    pass
                finally:
                    self._after()

    def _relay(self, connection: socket.socket) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            data = connection.recv(65536)
            if not data:
                self._write(decoder.decode(b"", final=True))
                return
            *texts, last = data.split(ASKS_FOR_A_LINE)
            for text in texts:  # each followed by a request for a line
                self._write(decoder.decode(text))
                line = self._read_line()
                if line is None:  # no terminal (end of input): let the service go on
                    connection.shutdown(socket.SHUT_WR)
                    continue
                connection.sendall(line.rstrip("\n").encode() + b"\n")
            self._write(decoder.decode(last))
