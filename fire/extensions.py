"""fire's extension API: what a framework (djfire, or a Flask or plain-Python service) adds.

Two things, both given to one `fire.Server`, never set process-wide:

- extensions (``Server(extensions=[...])``): named operations and hooks around requests
  and sessions (`Extension`), and where released references are dropped
  (`release_hook`). djfire's turns `begin_scope`/`end_scope` into database
  transactions; with no framework, `Scopes` accepts them and only keeps count, so
  clients work the same;
- value rules (``Server(values=ValueRules(...))``): which of the framework's descriptors
  always yield references, so clients may pipeline through them, and which iterables are
  read whole anyway, so one reply carries every item (`ValueRules`).

`Session` (one client's state, handed to every operation) is public here for the
signatures of extension operations. An operation that cannot answer yet (a client
waiting its turn for the server's scopes) returns a `Later` and answers through it,
from the server's thread: in another operation, a session hook, or ``tick()``, which
the server calls every few tens of milliseconds. A framework's own server command may check its
addresses the way fire does, before a slow set-up (djfire's ``runfireserver`` does,
before it creates test databases): `is_loopback` (whether a host is on this machine
only, for fire's loopback-unless-told rule on a listener of its own, such as an HTTP
server) and `prepare_socket_path` (refuse a live server's socket, clear a stale one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from .errors import FireError
from .net.addresses import is_loopback, prepare_socket_path
from .server.session import Session
from .wire.values import ValueRules

__all__ = [
    "Extension",
    "Later",
    "Scopes",
    "Session",
    "ValueRules",
    "is_loopback",
    "prepare_socket_path",
]


class Extension(Protocol):
    """What a server extension provides; every method but `operations` is optional."""

    name: str

    def operations(self) -> dict[str, Callable[..., Any]]:
        """Operation name -> function called as ``function(session, *args, **kwargs)``."""
        ...


class Later:
    """The answer to a request, to come: an operation returns one to reply after it returned.

    The server keeps the request's place; the extension answers once, with `answer` or
    `fail`, from the server's thread (an operation, a session hook, or ``tick``). A later
    answer, or one to a client that left, is dropped.
    """

    __slots__ = ("_reply", "done")

    def __init__(self) -> None:
        self._reply: Callable[[Any, BaseException | None], None] | None = None
        self.done = False

    def answer(self, value: Any) -> None:
        """Reply `value`, as the operation's return value would have been."""
        self._settle(value, None)

    def fail(self, error: BaseException) -> None:
        """Reply with `error`, as if the operation had raised it."""
        self._settle(None, error)

    def _settle(self, value: Any, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        assert self._reply is not None, "answered before the server took the Later"
        self._reply(value, error)


class Scopes:
    """The framework-free scope operations: begin and end nest, and undo what the client
    changed in the process during the scope (patches, the clock: `Session.undo`).

    A framework's own scope extension calls ``session.undo.scope_began()`` when a scope
    becomes the client's and ``session.undo.scope_ended()`` when it ends, as this does.
    """

    name = "scopes"

    def operations(self) -> dict[str, Callable[..., Any]]:
        return {"begin_scope": self.begin_scope, "end_scope": self.end_scope}

    def begin_scope(self, session: Session, kind: str = "test", **options: Any) -> int:
        stack = session.extension_state.setdefault("scopes", [])
        stack.append(kind)
        session.undo.scope_began()
        return len(stack)

    def end_scope(self, session: Session) -> int:
        stack = session.extension_state.get("scopes")
        if not stack:
            raise FireError("end_scope without begin_scope")
        stack.pop()
        failure = session.undo.scope_ended()  # the scope's patches and clocks
        if failure is not None:
            raise failure
        return len(stack)

    def info(self) -> dict[str, Any]:
        return {"isolation": "none"}


def release_hook(extensions: list[Any]) -> Callable[[Session, list[Any]], None] | None:
    """The extension hook that drops the objects of released references (None: fire does).

    A client's releases, and a closing session's references, leave the session at once;
    their objects go to the first extension's ``release_references(session, objects)``,
    which empties the list (dropping the server's last references, so running the
    objects' finalizers) where that is safe, now or later, from any thread: a finalizer
    may use what the extension guards (djfire drops them holding its database lock,
    since a half-read query's generator closes its database cursor). Without one, they
    are dropped at once, on the server's thread.
    """
    for extension in extensions:
        if hasattr(extension, "release_references"):
            return extension.release_references
    return None


def request_context(
    extensions: list[Any], session: Session, operation: str
) -> contextlib.AbstractContextManager[Any]:
    """The extensions' contexts around one request (a database lock, on_commit handling).

    An extension's ``request_context(session, operation)`` is entered around every
    request of every client.
    """
    factories = [e.request_context for e in extensions if hasattr(e, "request_context")]
    if not factories:
        return contextlib.nullcontext()
    if len(factories) == 1:
        return factories[0](session, operation)
    return _nested(factories, session, operation)


@contextlib.contextmanager
def _nested(
    factories: list[Callable[[Session, str], Any]], session: Session, operation: str
) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for factory in factories:
            stack.enter_context(factory(session, operation))
        yield
