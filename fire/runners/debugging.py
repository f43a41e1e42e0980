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

A run outside pytest (``python -m unittest``, Django's ``manage.py test``) turns the
same on: ``FIRE_PDB=1`` (`debug_from_environment`), or Django's ``--pdb``
(`debug_unittest_result`: its result class opens pdb on each failure, and
`divert_post_mortem` sends a remote failure's to the service's frame instead).
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
from typing import TYPE_CHECKING, Any

from ..client.debugging import failure_of, paused, post_mortem
from ..errors import FireError
from ..server.breakpoints import ASKS_FOR_A_LINE

if TYPE_CHECKING:
    from .core import Runner

__all__ = [
    "POST_MORTEM_RESULTS",
    "DebuggerListener",
    "debug_from_environment",
    "debug_unittest_result",
    "divert_post_mortem",
    "fire_pdb",
    "opens_pdb_on_failures",
    "stdin_is_a_terminal",
]

#: unittest result classes that open pdb on each failure and error, by module and name
#: (found without importing their runner): Django's, for ``manage.py test --pdb``.
POST_MORTEM_RESULTS = frozenset({("django.test.runner", "PDBDebugResult")})
#: ``FIRE_PDB`` values, and whether each turns services' ``breakpoint()`` on.
_FIRE_PDB = {"1": True, "true": True, "yes": True, "on": True}
_FIRE_PDB.update({"": False, "0": False, "false": False, "no": False, "off": False})


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


def fire_pdb() -> bool:
    """Whether ``FIRE_PDB`` asks services' ``breakpoint()`` to stop in this terminal."""
    value = os.environ.get("FIRE_PDB", "")
    try:
        return _FIRE_PDB[value.strip().lower()]
    except KeyError:
        raise FireError(f"FIRE_PDB={value!r}: expected 1 (on) or 0 (off)") from None


def stdin_is_a_terminal() -> bool:
    """Whether this process's standard input is a terminal someone can type in."""
    try:
        return sys.__stdin__ is not None and sys.__stdin__.isatty()
    except (AttributeError, ValueError):  # closed
        return False


def opens_pdb_on_failures(result: object) -> bool:
    """Whether the unittest `result` opens pdb on failures (`POST_MORTEM_RESULTS`)."""
    return any(
        (klass.__module__, klass.__qualname__) in POST_MORTEM_RESULTS
        for klass in type(result).__mro__
    )


def debug_from_environment(runner: Runner) -> None:
    """With ``FIRE_PDB=1``, services' ``breakpoint()`` stops in this terminal: called as
    a run that pytest does not drive makes its runner. Without a terminal on standard
    input, one line says the breakpoints are skipped (as servers do with no debugger)."""
    if not fire_pdb():
        return
    if not stdin_is_a_terminal():
        sys.stderr.write(
            "fire: FIRE_PDB=1, but standard input is not a terminal: services' "
            "breakpoint() is skipped, and the call goes on\n"
        )
        return
    runner.debug(listener=_terminal_listener())


def debug_unittest_result(runner: Runner, result: object) -> None:
    """When `result` opens pdb on failures (Django's ``manage.py test --pdb``): a remote
    failure's pdb opens in the service (`divert_post_mortem`), and, at a terminal,
    services' ``breakpoint()`` stops in it too. Called as each test runs; a no-op for
    other results, and once on."""
    if not opens_pdb_on_failures(result):
        return
    divert_post_mortem(result)
    wanted = runner.config.debugger is None and stdin_is_a_terminal()
    runner.debug(post_mortem=True, listener=_terminal_listener() if wanted else None)


def _terminal_listener() -> DebuggerListener:
    """A listener on this process's own terminal (unittest's ``--buffer`` or Django's
    replace `sys.stdout` during a test; the person reads the terminal)."""

    def read_line() -> str | None:
        line = sys.__stdin__.readline() if sys.__stdin__ is not None else ""
        return line if line else None

    def write(text: str) -> None:
        if sys.__stdout__ is not None:
            sys.__stdout__.write(text)
            sys.__stdout__.flush()

    return DebuggerListener(before=lambda: write("\n"), read_line=read_line, write=write)


def divert_post_mortem(result: Any) -> None:
    """Make `result`'s pdb on a failure (its ``debug(err)``, as Django's
    ``PDBDebugResult`` has) open in the service that raised, on its frame, for a remote
    exception the server kept (`fire.client.debugging.post_mortem`); any other, and one
    the service no longer has, gets the result's own pdb. ``c`` and ``q`` return to the
    run, as they do from the local post-mortem (which quits nothing either)."""
    if getattr(result, "_fire_post_mortem", False):
        return
    local = result.debug

    def debug(error: tuple[type[BaseException], BaseException, Any]) -> None:
        found = failure_of(error[1])
        if found is None:
            return local(error)
        restore = getattr(result, "_restoreStdout", None)
        if restore is not None:  # pdb's output is the person's, not the test's (--buffer)
            restore()
            result.buffer = False
        remote, number = found
        _write_terminal(f"\nOpening PDB in fire server {remote.name!r}: {error[1]!r}\n")
        try:
            post_mortem(remote, number, _read_prompted, _write_terminal)
        except FireError as exc:
            _write_terminal(f"fire: no remote post-mortem ({exc}); the local pdb instead\n")
            return local(error)
        return None

    result.debug = debug
    result._fire_post_mortem = True


def _read_prompted(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None
