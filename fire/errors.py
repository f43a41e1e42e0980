"""fire's exception hierarchy.

`FireError` is fire's own failure (transport, protocol, misuse); `RemoteError` is an
exception raised by code on the server. Local classes for remote exceptions are built
from the remote class's MRO, so `except KeyError` and `except <remote base class>` work.

A fire error the server answers with crosses the wire as ``[kind, message]`` (a
``FIRE_ERROR`` reply's body): each class names its kind (`FireError.wire_kind`), the
server writes the body with `error_to_wire` and the client raises the error again with
`error_from_wire`. `WIRE_ERRORS` is the one table of kinds; no other module spells one.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "WIRE_ERRORS",
    "AuthenticationError",
    "FireError",
    "HandshakeRequired",
    "ProtocolError",
    "RemoteError",
    "ServerBusy",
    "ServerUnavailable",
    "UnknownServer",
    "error_from_wire",
    "error_to_wire",
    "remote_exception_class",
]


class FireError(Exception):
    """Base class of fire's own errors (not of exceptions raised by remote code)."""

    #: The error's name on the wire (see `WIRE_ERRORS`). A subclass without a kind of its
    #: own (an extension's) travels as its nearest base's: the client knows that class.
    wire_kind: ClassVar[str] = "FireError"


class ServerUnavailable(FireError):
    """No fire server answers at the address: not running, killed, stopped or gone."""

    wire_kind = "ServerUnavailable"

    def __init__(self, message: str, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


class HandshakeRequired(ServerUnavailable):
    """The server has no session for this connection (a new or restarted server): reconnect."""

    wire_kind = "HandshakeRequired"


class ServerBusy(FireError):
    """Another client holds the server's test scopes (one test at a time per server)."""

    wire_kind = "ServerBusy"


class ProtocolError(FireError):
    """The peer sent something fire cannot accept (bad frame, version, operation)."""

    wire_kind = "ProtocolError"


class AuthenticationError(FireError):
    """The CURVE handshake failed: the server refused the client's key, or the client
    has another public key for the server than the server's own."""

    wire_kind = "AuthenticationError"


class UnknownServer(FireError, KeyError):
    """A server name a test's remotes lack (``fire_remotes["billing"]``): a `KeyError`
    whose message says which servers there are and how to add one. Never sent on the wire.
    """

    def __str__(self) -> str:  # KeyError's would show the message's repr
        return str(self.args[0])


#: Wire kind -> the class a client raises for it. A kind a client does not know (a newer
#: server's) is raised as `FireError`. Kinds are part of the protocol: never renamed.
WIRE_ERRORS: dict[str, type[FireError]] = {
    cls.wire_kind: cls
    for cls in (
        FireError,
        ServerUnavailable,
        HandshakeRequired,
        ServerBusy,
        ProtocolError,
        AuthenticationError,
    )
}


def error_to_wire(error: FireError) -> list[str]:
    """The body of the reply that answers a request with `error`: ``[kind, message]``."""
    return [error.wire_kind, str(error)]


def error_from_wire(body: Any, server: str, address: str) -> FireError:
    """The error a reply's body (`error_to_wire`'s, unpacked) names, to raise on the client.

    Its message names the `server`; a `ServerUnavailable` also the `address`, which it keeps.
    """
    if isinstance(body, list) and len(body) == 2:
        kind, message = body
    else:
        kind, message = "", str(body)
    cls = WIRE_ERRORS.get(kind, FireError)
    if issubclass(cls, ServerUnavailable):
        return cls(f"{message} (server {server!r} at {address})", address)
    return cls(f"{message} (server {server!r})")


class RemoteError(Exception):
    """Raised locally for an exception raised by code on a fire server.

    The concrete class also subclasses the builtin exception the remote one derives
    from, so `except KeyError:` catches a remote `KeyError`.
    """

    remote_type: str = ""
    remote_args: tuple[Any, ...] | None = None
    remote_traceback: str = ""
    server: str = ""
    #: The server's number for this failure when it keeps it for a post-mortem
    #: (`fire.client.debugging`), else None.
    remote_failure: int | None = None


_classes: dict[str, type[RemoteError]] = {}
_classes_lock = threading.Lock()


def _builtin_exception(dotted: str) -> type[BaseException] | None:
    module, _, name = dotted.rpartition(".")
    if module != "builtins":
        return None
    candidate = getattr(builtins, name, None)
    if isinstance(candidate, type) and issubclass(candidate, BaseException):
        return candidate
    return None


def remote_exception_class(hierarchy: Sequence[Sequence[Any]]) -> type[RemoteError]:
    """The local class standing for a remote exception class.

    `hierarchy` lists ``[dotted name, [dotted names of its bases]]`` for the raised class
    and every class in its MRO, raised class first. Local classes mirror the remote
    bases, so multiple inheritance stays honest (a base never gains its subclass's
    other bases). A remote builtin exception becomes a subclass of `RemoteError` and of
    that builtin, except those outside `Exception` (`SystemExit`, `KeyboardInterrupt`...),
    which must never end the client. Classes are cached by dotted name.
    """
    if not hierarchy:
        hierarchy = [["builtins.Exception", []]]
    bases_of = {str(dotted): tuple(str(b) for b in bases) for dotted, bases in hierarchy}
    with _classes_lock:
        return _class_for(str(hierarchy[0][0]), bases_of)


def _class_for(dotted: str, bases_of: dict[str, tuple[str, ...]]) -> type[RemoteError]:
    cached = _classes.get(dotted)
    if cached is not None:
        return cached
    builtin = _builtin_exception(dotted)
    bases: tuple[type, ...]
    if builtin is not None:
        ordinary = issubclass(builtin, Exception) and builtin is not Exception
        bases = (RemoteError, builtin) if ordinary else (RemoteError,)
    else:
        remote_bases = [b for b in bases_of.get(dotted, ()) if b != "builtins.object"]
        bases = tuple(_class_for(b, bases_of) for b in remote_bases)
        bases = bases or (RemoteError,)
    module, _, qualname = dotted.rpartition(".")
    namespace = {"__module__": module, "__qualname__": qualname, "remote_type": dotted}
    name = qualname.rpartition(".")[2]
    try:
        cls = type(name, bases, namespace)
    except TypeError:  # a remote MRO Python cannot linearise locally: keep the name only
        cls = type(name, (RemoteError,), namespace)
    _classes[dotted] = cls
    return cls
