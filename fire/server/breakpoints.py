"""``breakpoint()`` in served code: pdb in the test's terminal, or skipped with one warning.

A server's stdin is nobody's terminal (a pipe, /dev/null, or a terminal nobody watches
while the tests wait), so Python's own ``breakpoint()`` there either fails the call
(pdb reads end-of-file and raises `bdb.BdbQuit`) or hangs the test run until someone
types. A server that owns its process installs `Breakpoints.hook` as
`sys.breakpointhook` instead (`fire.server.loop.Server.serve_forever`):

- when a client said where its debugger listens (``debug_attach``: a Unix socket of the
  test process, `fire.runners.debugging.DebuggerListener`, made by ``pytest
  --fire-pdb``, ``--trace`` or ``-s``), pdb runs right there, in the thread that hit the
  breakpoint (a fire call's, or a live HTTP request's holding the test's database
  connections), its stdin and stdout on a connection to that socket: the test's
  terminal shows its output and sends its lines. That thread is stopped meanwhile, and
  whatever waits for it (the server's other requests) waits, as in any debugger;
- otherwise the breakpoint is skipped, with one warning per place on the server's
  stderr (which the runner shows with the test), and the code goes on.

``PYTHONBREAKPOINT=0`` still turns breakpoints off, and another ``PYTHONBREAKPOINT``
(``remote_pdb.set_trace``, ``ipdb.set_trace``) is used as Python would.

On the socket, pdb's output is text; a NUL byte says "pdb waits for a line" (sent by the
stream's ``readline``), so the relay knows when to read the terminal without guessing
at prompts. A line that never comes (the test process gone) reads as end of file, which
continues the code instead of raising into it.
"""

from __future__ import annotations

import os
import pdb
import socket
import sys
import threading
from collections.abc import Iterable
from types import FrameType
from typing import IO, Any, cast

__all__ = ["ASKS_FOR_A_LINE", "Breakpoints", "SocketPdb"]

#: Sent by the remote pdb when it waits for a line from the terminal.
ASKS_FOR_A_LINE = b"\0"
#: What `Breakpoints.hook` answers ``PYTHONBREAKPOINT`` values with: off, or fire's own.
_OFF = "0"
_DEFAULT = ("", "pdb.set_trace", "pdb.Pdb.set_trace")


class _SocketStream:
    """pdb's stdin and stdout on one connected socket (text out, lines in)."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self._buffer = b""
        self.closed = False

    def write(self, text: str) -> int:
        if not self.closed:
            try:
                self.connection.sendall(text.replace("\0", "").encode(errors="replace"))
            except OSError:
                self.close()
        return len(text)

    def flush(self) -> None:
        pass

    def readline(self) -> str:
        if self.closed:
            return ""
        try:
            self.connection.sendall(ASKS_FOR_A_LINE)
            while b"\n" not in self._buffer:
                data = self.connection.recv(4096)
                if not data:
                    self.close()
                    return ""
                self._buffer += data
        except OSError:
            self.close()
            return ""
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace") + "\n"

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.connection.close()


class SocketPdb(pdb.Pdb):
    """pdb whose terminal is a socket; ``c``, ``q`` or a lost terminal let the code go on.

    ``q`` does not raise `bdb.BdbQuit` into the service (a view would answer 500 for a
    debugger's quit): it continues, as ``c`` does, and says so. The thread's earlier
    tracer (coverage.py's, under ``--cov``), `previous_tracer`, is put back when pdb
    stops tracing. `skip` is pdb's (modules never stopped in); `stops` counts the
    prompts shown.
    """

    def __init__(self, connection: socket.socket, *, skip: Iterable[str] | None = None) -> None:
        self._stream = _SocketStream(connection)
        stream = cast(IO[str], self._stream)  # the two methods pdb uses of each
        super().__init__(stdin=stream, stdout=stream, skip=skip, readrc=False, nosigint=True)
        self.previous_tracer = sys.gettrace()
        self.stops = 0

    def interaction(self, *args: Any) -> None:
        self.stops += 1
        super().interaction(*args)

    def set_continue(self) -> None:
        super().set_continue()
        if not self.breaks:
            sys.settrace(self.previous_tracer)
            self.close()

    def close(self) -> None:
        """End the session: the terminal's relay ends, and a later prompt reads ``c``."""
        self._stream.close()

    def do_quit(self, arg: str) -> Any:
        self.message("(fire: the service goes on; quitting pdb does not stop a service)")
        self.clear_all_breaks()
        return self.do_continue(arg)

    do_q = do_exit = do_quit

    def do_EOF(self, arg: str) -> Any:
        self.clear_all_breaks()
        return self.do_continue(arg)


class Breakpoints:
    """Where a server's ``breakpoint()`` goes: the debugger a client attached, if any.

    The debugger is the last one a still-connected session attached (a server serves
    one test at a time, and its runner attaches once per connection).
    """

    def __init__(self) -> None:
        #: session identity -> the Unix socket its test process's debugger listens at.
        self._debuggers: dict[bytes, str] = {}
        self._warned: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def attach(self, identity: bytes, address: str | None) -> None:
        with self._lock:
            self._debuggers.pop(identity, None)
            if address:
                self._debuggers[identity] = address

    def detach(self, identity: bytes) -> None:
        with self._lock:
            self._debuggers.pop(identity, None)

    def address(self) -> str | None:
        with self._lock:
            return next(reversed(self._debuggers.values()), None)

    def address_of(self, identity: bytes) -> str | None:
        """Where the session `identity`'s own debugger listens, if it attached one."""
        with self._lock:
            return self._debuggers.get(identity)

    def hook(self, *args: Any, **kwargs: Any) -> Any:
        """`sys.breakpointhook` of a fire server (see the module's docstring)."""
        setting = os.environ.get("PYTHONBREAKPOINT", "").strip()
        if setting == _OFF:
            return None
        if setting not in _DEFAULT:
            return sys.__breakpointhook__(*args, **kwargs)
        frame = sys._getframe(1)
        address = self.address()
        if address is None:
            self._skip(
                frame,
                "no test run attached a debugger (run pytest with --fire-pdb, or -s, to "
                "stop there in the test's terminal)",
            )
            return None
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(address)
        except OSError as exc:
            connection.close()
            self._skip(
                frame,
                f"the test run's debugger at {address} cannot be reached ({exc}); a "
                "service on another host cannot reach it",
            )
            return None
        debugger = SocketPdb(connection)
        debugger.message(
            f"fire: breakpoint() in the service (pid {os.getpid()}, thread "
            f"{threading.current_thread().name}); 'c' lets it go on"
        )
        debugger.set_trace(frame)
        return None

    def _skip(self, frame: FrameType, why: str) -> None:
        place = (frame.f_code.co_filename, frame.f_lineno)
        with self._lock:
            if place in self._warned:
                return
            self._warned.add(place)
        print(
            f"fire: breakpoint() at {place[0]}:{place[1]} skipped: {why}",
            file=sys.stderr,
            flush=True,
        )
