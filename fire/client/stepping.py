"""``s`` on a fire call in the test's pdb steps into the service's function.

pdb traces the test's thread; stepping (``s``) onto a line with a fire call would stop
in fire's client (proxies, the wire, the socket) and never reach the service, whose
code runs in another process. So:

- `skip_fire_client` makes a debugger never stop in fire's client, nor in anything it
  calls (pyzmq's, msgpack's, the standard library's frames on the way to the socket):
  what pdb's ``skip`` patterns would do if they could name them all. The pytest plugin
  does it to pytest's pdb as it opens (``pytest_enter_pdb``), and `traced_call` to any
  other pdb that steps onto a call;
- a call made while the thread's debugger steps (`stepping_debugger`) is sent as
  ``debug_call`` when this connection attached a debugger for ``breakpoint()``
  (`fire.client.debugging.attach`): the server stops at the function's first line in
  that debugger, the test's terminal (`fire.server.stepping`); its ``c`` returns. The
  test's pdb is meanwhile told to stop at its frame's next line, as ``n`` does (the
  rest of the line's calls run on), so it takes over once the call returns. A
  connection without a debugger makes a plain call, which pdb steps over, and says once
  how to get one.

Only calls step in: the service's code that other requests may run (a property read,
a ``__getitem__``) is stepped over.
"""

from __future__ import annotations

import bdb
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError

if TYPE_CHECKING:
    from .remote import Remote

__all__ = ["skip_fire_client", "stepping_debugger", "traced_call"]

#: The modules of fire's client: a call's way from a proxy to the socket and back.
_CLIENT_PACKAGES = ("fire.client.", "fire.net.", "fire.wire.", "fire.runners.")
_CLIENT_MODULES = frozenset({"fire.errors"})
#: Said once per debugger that steps onto a call no service can step into.
_NO_DEBUGGER = (
    "fire: the call runs on in the service, stepped over: its server has no debugger "
    "attached (pytest --trace, --fire-pdb or -s attach one)"
)


def traced_call(remote: Remote, target: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """A fire ``call`` made while this thread is traced: into the service's debugger
    when a local pdb steps onto it (see the module's docstring)."""
    debugger = stepping_debugger()
    if debugger is None:
        return remote._request("call", [target, args, kwargs])
    skip_fire_client(debugger)
    caller = _outside_fire_client(sys._getframe(1))
    if caller is not None:
        debugger.set_next(caller)  # back from the service: the test's next line
    if not _attached_debugger(remote):
        if not getattr(debugger, "_fire_told", False):
            debugger._fire_told = True  # type: ignore[attr-defined]
            getattr(debugger, "message", print)(_NO_DEBUGGER)
        return remote._request("call", [target, args, kwargs])
    try:
        return remote._request("debug_call", [target, args, kwargs])
    except ProtocolError as exc:
        if "unknown operation" not in str(exc):
            raise
        return remote._request("call", [target, args, kwargs])  # a server before it


def stepping_debugger() -> bdb.Bdb | None:
    """The debugger tracing this thread if it steps (``s``: stop at the next event
    anywhere), and the call comes from the code it debugs, not from one of its own
    commands (``p proxy.f()`` at its prompt runs the call as it is)."""
    debugger = getattr(sys.gettrace(), "__self__", None)
    if not isinstance(debugger, bdb.Bdb) or debugger.quitting:
        return None
    if debugger.stopframe is not None or debugger.botframe is None:
        return None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame is not debugger.botframe:
        if frame.f_globals.get("__name__") == "bdb":  # under its trace function
            return None
        frame = frame.f_back
    return debugger


def skip_fire_client(debugger: bdb.Bdb) -> None:
    """Make `debugger` never stop in fire's client nor in what it calls (see above)."""
    if getattr(debugger, "_fire_skips_client", False):
        return
    stop_here = debugger.stop_here

    def stop_here_outside_fire(frame: FrameType) -> bool:
        return stop_here(frame) and not _within_fire_client(frame, debugger.botframe)

    debugger.stop_here = stop_here_outside_fire  # type: ignore[method-assign]
    debugger._fire_skips_client = True  # type: ignore[attr-defined]


def _within_fire_client(frame: FrameType | None, bottom: FrameType | None) -> bool:
    """Whether `frame` is fire's client's, or called by it (up to the debugger's
    `bottom` frame, below which the test's runner calls the test)."""
    while frame is not None and frame is not bottom:
        if _is_fire_client(frame):
            return True
        frame = frame.f_back
    return False


def _outside_fire_client(frame: FrameType | None) -> FrameType | None:
    """The first frame from `frame` outwards that is not fire's client's: its caller's."""
    while frame is not None and _is_fire_client(frame):
        frame = frame.f_back
    return frame


def _is_fire_client(frame: FrameType) -> bool:
    name = frame.f_globals.get("__name__", "")
    return name.startswith(_CLIENT_PACKAGES) or name in _CLIENT_MODULES


def _attached_debugger(remote: Remote) -> bool:
    """Whether `remote` told its server where a debugger listens (``debug_attach``)."""
    told = [
        arguments[0]
        for operation, arguments in remote._session_settings
        if operation == "debug_attach"
    ]
    return bool(told and told[-1].get("breakpoints"))
