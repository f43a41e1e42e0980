"""A call stepped into from the test's pdb: it stops at its function's first line.

When a person steps (``s``) onto a fire call in the test's pdb, the client asks for it
as ``debug_call`` instead of ``call`` (`fire.client.stepping`). The server then runs
it under a `fire.server.breakpoints.SocketPdb` on the debugger the session attached
(the test's terminal, through `fire.runners.debugging.DebuggerListener`, as
``breakpoint()`` does): pdb stops at the first line the call runs in Python, with the
service's locals, and ``s``, ``n``, ``p``, ``c`` work there as in one process. pdb
stops tracing once the call returns (``c`` before, or stepping out of it), so the
server's own frames are never shown; the test's pdb then takes over at its next line.
A call that runs no Python code (a builtin) has nothing to stop at: pdb says so.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from .breakpoints import SocketPdb

__all__ = ["stepped_call"]

#: Modules pdb never stops in while stepping a call: `bdb.Bdb.runcall`, which starts and
#: ends it (its last lines run traced when ``s`` steps out of the call's function).
_NOT_THE_CALLS = ("bdb",)


def stepped_call(address: str, function: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, stopping at its first line in the debugger that
    listens at `address`; a plain call when nobody listens there any more."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(address)
    except OSError:
        connection.close()
        return function(*args, **kwargs)
    debugger = SocketPdb(connection, skip=_NOT_THE_CALLS)
    debugger.message(
        f"fire: stepped into {_name(function)} in the service (pid {os.getpid()}); "
        "'c' returns to the test"
    )
    stops = debugger.stops
    try:
        return debugger.runcall(function, *args, **kwargs)
    finally:
        sys.settrace(debugger.previous_tracer)  # runcall leaves none
        if debugger.stops == stops:
            debugger.message(f"fire: {_name(function)} runs no Python code: nothing to stop at")
        debugger.close()


def _name(function: object) -> str:
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    module = getattr(function, "__module__", None)
    return f"{module}.{name}()" if isinstance(module, str) else f"{name}()"
