"""fire's exception hierarchy.

`FireError` is fire's own failure (transport, protocol, misuse); `RemoteError` is an
exception raised by code on the server. Local classes for remote exceptions are built
from the remote class's MRO, so `except KeyError` and `except <remote base class>` work.
"""

from __future__ import annotations

import builtins
import threading
from typing import Any

__all__ = [
    "AuthenticationError",
    "FireError",
    "ProtocolError",
    "RemoteError",
    "ServerBusy",
    "ServerUnavailable",
    "remote_exception_class",
]


class FireError(Exception):
    """Base class of fire's own errors (not of exceptions raised by remote code)."""


class ServerUnavailable(FireError):
    """No fire server answers at the address: not running, killed, stopped or gone."""

    def __init__(self, message: str, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


class ServerBusy(FireError):
    """Another client holds the server's test scopes (one test at a time per server)."""


class ProtocolError(FireError):
    """The peer sent something fire cannot accept (bad frame, version, operation)."""


class AuthenticationError(FireError):
    """The server refused the client's token."""


class RemoteError(Exception):
    """Raised locally for an exception raised by code on a fire server.

    The concrete class also subclasses the builtin exception the remote one derives
    from, so `except KeyError:` catches a remote `KeyError`.
    """

    remote_type: str = ""
    remote_mro: tuple[str, ...] = ()
    remote_args: tuple[Any, ...] | None = None
    remote_traceback: str = ""
    server: str = ""


_classes: dict[str, type[RemoteError]] = {}
_classes_lock = threading.Lock()


def _builtin_exception(dotted: str) -> type[BaseException] | None:
    module, _, name = dotted.rpartition(".")
    if module != "builtins":
        return None
    candidate = getattr(builtins, name, None)
    if isinstance(candidate, type) and issubclass(candidate, Exception):
        return candidate
    return None


def remote_exception_class(mro: list[str] | tuple[str, ...]) -> type[RemoteError]:
    """The local class standing for a remote exception class, given its MRO's dotted names.

    The chain of local classes mirrors the remote one down to the first builtin, which
    the chain's root subclasses beside `RemoteError`. Classes are cached by dotted name.
    """
    mro = tuple(name for name in mro if name not in ("builtins.object", "builtins.BaseException"))
    if not mro:
        mro = ("builtins.Exception",)
    with _classes_lock:
        return _class_for(mro)


def _class_for(mro: tuple[str, ...]) -> type[RemoteError]:
    dotted = mro[0]
    cached = _classes.get(dotted)
    if cached is not None:
        return cached
    builtin = _builtin_exception(dotted)
    if builtin is not None:
        bases: tuple[type, ...] = (RemoteError,) if builtin is Exception else (RemoteError, builtin)
    elif len(mro) > 1:
        bases = (_class_for(mro[1:]),)
    else:
        bases = (RemoteError,)
    module, _, qualname = dotted.rpartition(".")
    cls = type(qualname.rpartition(".")[2], bases, {"__module__": module, "__qualname__": qualname})
    cls.remote_type = dotted
    cls.remote_mro = mro
    _classes[dotted] = cls
    return cls
