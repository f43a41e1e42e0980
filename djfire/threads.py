"""Every thread of the server process on the shared connections, for the life of the server.

Django keeps a connection per thread (``connections._connections`` is thread-critical
storage). The live server's request threads are handed the shared ones
(`ThreadedWSGIServer`'s ``connections_override``), but service code starts threads of
its own: ``asyncio.run()`` around ``acreate()``/``acount()`` runs the queries in asgiref's
executor thread, a task runs a ``threading.Thread``. Each of those used to open a
connection of its own, outside the test's transaction: its rows were committed and
survived the test, SQLite answered "database table is locked", and the open connection
kept PostgreSQL from dropping the test database at the end of the run.

So while the server runs, `share_with_every_thread` makes ``django.db.connections``
hand the shared wrappers to every thread, and guards each wrapper:

- a thread other than the server's own uses it only while a fire call or a live request
  holds the connections (`ConnectionLock`): the holder is then waiting for it (as
  ``asyncio.run()`` and ``thread.join()`` wait), so the use is still one at a time. A
  thread that asks for one when nothing holds them (it outlived the call that started it)
  is refused with a `DatabaseError` naming the thread: its work would run outside
  every test, or between two tests.
- ``close()`` inside a transaction (a test scope, or a call outside one) does nothing:
  closing would end the test's transaction (``close_old_connections()`` closes a
  connection whose autocommit differs from its settings', which is always the case in
  a transaction). Outside one it closes, and the next query reconnects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connections

from .connection_lock import ConnectionLock

__all__ = ["share_with_every_thread"]


def share_with_every_thread(by_alias: dict[str, Any], lock: ConnectionLock) -> Callable[[], None]:
    """Hand `by_alias`'s wrappers to every thread, guarded; returns what undoes it."""
    owner = threading.get_ident()
    get_ident = threading.get_ident

    owns = lock._lock._is_owned  # this thread holds it (deferred work runs at depth 0)

    def check(alias: str) -> None:
        if get_ident() != owner and not lock.held and not owns():
            raise _refusal(alias)

    original = connections._connections
    wrappers = list({id(connection): connection for connection in by_alias.values()}.values())
    for connection in wrappers:  # once each: a mirror alias is its primary's wrapper
        _guard(connection, check)
    connections._connections = _every_thread(by_alias, check)

    def undo() -> None:
        connections._connections = original
        for connection in wrappers:
            for name in ("validate_thread_sharing", "close"):
                connection.__dict__.pop(name, None)

    return undo


def _every_thread(by_alias: dict[str, Any], check: Callable[[str], None]) -> Any:
    """Stands for ``connections._connections``: each alias's one wrapper, for every thread.

    Each alias is a property that checks the thread (`check`) before it hands the
    wrapper out: a refused thread never gets it, so its failure cannot mark the test's
    transaction for rollback (Django's ``save()`` does that for any error raised inside
    it). About 0.1 µs a read, where asgiref's per-thread storage took over 1 µs.
    """
    wrappers = dict(by_alias)

    def alias_property(alias: str) -> property:
        def get(self: Any) -> Any:
            check(alias)
            return wrappers[alias]

        def set(self: Any, connection: Any) -> None:  # one for every thread, as reads are
            wrappers[alias] = connection

        return property(get, set)

    namespace: dict[str, Any] = {alias: alias_property(alias) for alias in wrappers}
    namespace["__repr__"] = lambda self: f"<djfire: {', '.join(wrappers)} for every thread>"
    return type("EveryThread", (), namespace)()


def _refusal(alias: str) -> DatabaseError:
    thread = threading.current_thread()
    return DatabaseError(
        f"thread {thread.name!r} used database alias {alias!r} while no fire call or live "
        "HTTP request held the connections: it outlived the call or request that started "
        "it. A runfireserver shares the test's connection with the threads a call or "
        "request starts, for as long as it waits for them; wait for the thread (join it) "
        "before the call or view returns"
    )


def _guard(connection: Any, check: Callable[[str], None]) -> None:
    """Replace `connection`'s thread check and ``close`` with the server's (see the module).

    The thread check also catches a thread that kept the wrapper from a time it was
    allowed to use it.
    """
    alias, close = connection.alias, connection.close

    def validate_thread_sharing() -> None:
        check(alias)

    def close_outside_transactions() -> None:
        check(alias)
        if not connection.in_atomic_block:
            close()

    connection.validate_thread_sharing = validate_thread_sharing
    connection.close = close_outside_transactions
