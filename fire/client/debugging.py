"""The client's half of remote debugging: attach, post-mortem, and calls that wait for it.

A server keeps the traceback of a failed call for a client that asked (`attach`,
``post_mortem=True``) and runs pdb on it one command line per request
(`fire.server.post_mortem`); `post_mortem` here is the terminal's side of that loop.
``breakpoint()`` in served code reaches the test process over a socket instead
(`fire.server.breakpoints`, `fire.runners.debugging`); while it stops the service, a
call waiting for its reply must not give up after its timeout: `paused` says a person
is in a debugger, and `Remote` waits on while one is or was during its wait.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import FireError, ProtocolError, RemoteError

if TYPE_CHECKING:
    from .remote import Remote

__all__ = ["attach", "failure_of", "paused", "paused_since", "post_mortem"]

_lock = threading.Lock()
_open = 0
_last_closed = 0.0


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """While a person debugs a service from this process (its calls wait on: `paused_since`)."""
    global _open, _last_closed
    with _lock:
        _open += 1
    try:
        yield
    finally:
        with _lock:
            _open -= 1
            _last_closed = time.monotonic()


def paused_since(moment: float) -> bool:
    """Whether a debugger session was open at some time after `moment` (`time.monotonic`)."""
    return _open > 0 or _last_closed > moment


def attach(remote: Remote, *, post_mortem: bool, breakpoints: str | None) -> bool:
    """Ask the server to keep failed calls for `post_mortem`, and to send ``breakpoint()``
    to the debugger listening at the Unix socket `breakpoints`. False for a server too
    old to debug remotely (it does not know the operation)."""
    request = ("debug_attach", [{"post_mortem": post_mortem, "breakpoints": breakpoints}])
    try:
        remote._request(*request)
    except ProtocolError as exc:
        if "unknown operation" in str(exc):
            return False
        raise
    remote._session_settings.append(request)  # a session opened again asks the same
    return True


def failure_of(error: BaseException) -> tuple[Remote, int] | None:
    """The connection and the server's failure number of a remote exception that the
    server kept for a post-mortem, or None."""
    if not isinstance(error, RemoteError):
        return None
    number = getattr(error, "remote_failure", None)
    reference = getattr(error, "_fire_remote", None)
    remote = reference() if isinstance(reference, weakref.ref) else None
    if number is None or remote is None or remote.closed:
        return None
    return remote, number


def post_mortem(
    remote: Remote,
    number: int,
    read_line: Callable[[str], str | None],
    write: Callable[[str], Any],
) -> bool:
    """Debug the server's failure `number` from a terminal: pdb's output goes to `write`,
    each command comes from `read_line(prompt)` (None: end of input, read as ``c``).
    Returns whether the person quit (``q``), which ends a pytest run as pdb's does."""
    answer = remote._request("debug_start", [number])
    write(
        f"fire: post-mortem in the service {remote.name!r} (its frame, its locals; "
        "'c' returns to the tests)\n"
    )
    while True:
        write(answer["output"])
        if answer["ended"]:
            return bool(answer["quit"])
        line = read_line(answer["prompt"])
        try:
            answer = remote._request("debug_input", [line if line is not None else "c"])
        except FireError as exc:
            write(f"fire: the remote debugger stopped: {exc}\n")
            return False
