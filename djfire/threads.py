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

- a thread other than the server's own uses it only while it holds the connections
  (a live request's thread) or belongs to the hold of the fire call or request that
  holds them now: the holder is then waiting for it (as ``asyncio.run()`` and
  ``thread.join()`` wait), so the use is still one at a time. Each hold has a number
  (`ConnectionLock.generation`, in the `HOLD` context variable while it lasts), and the
  work started during it carries that number: a ``threading.Thread`` started then, an
  item submitted then to a ``ThreadPoolExecutor`` (a pool made earlier included), a
  coroutine's ``sync_to_async`` (asgiref copies the context into its executor, whose
  one thread serves every call: the number travels with the work, not the thread). Any
  other thread is refused with a `DatabaseError` naming it, whether or not something
  holds the connections: a thread that outlived the call that started it would
  otherwise write into whichever test holds them next, beside their holder.
- ``close()`` inside a transaction (a test scope, or a call outside one) does nothing:
  closing would end the test's transaction (``close_old_connections()`` closes a
  connection whose autocommit differs from its settings', which is always the case in
  a transaction). Outside one it closes, and the next query reconnects.

What the hold costs: a context variable set and reset per fire call or request; what a
read of ``connections[alias]`` costs is unchanged for the server's thread and the
holder's (the numbers are compared only for other threads).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import DatabaseError, connections

from .connection_lock import HOLD, ConnectionLock

__all__ = ["share_with_every_thread"]


def share_with_every_thread(by_alias: dict[str, Any], lock: ConnectionLock) -> Callable[[], None]:
    """Hand `by_alias`'s wrappers to every thread, guarded; returns what undoes it."""
    owner = threading.get_ident()
    get_ident = threading.get_ident

    # This thread holds it (deferred work runs at depth 0). RLock's _is_owned is private
    # (both the C and the Python RLock have it), so typeshed leaves it out.
    owns = lock._lock._is_owned  # type: ignore[attr-defined]
    hold_of = HOLD.get

    def check(alias: str) -> None:
        if (
            get_ident() != owner
            and not owns()
            and (hold_of() != lock.generation or not lock.held)  # not the current hold's
        ):
            raise _refusal(alias)

    original = connections._connections
    wrappers = list({id(connection): connection for connection in by_alias.values()}.values())
    for connection in wrappers:  # once each: a mirror alias is its primary's wrapper
        _guard(connection, check)
    connections._connections = _every_thread(by_alias, check)
    unhook = _carry_the_hold()

    def undo() -> None:
        unhook()
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
    it). Cheaper to read than asgiref's per-thread storage, which it replaces.
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


def _carry_the_hold() -> Callable[[], None]:
    """Threads and pool work started during a hold belong to it (`HOLD`); returns the undo.

    Python before 3.14 starts a thread in an empty context, and a ``ThreadPoolExecutor``
    runs its items in its workers' own: neither would see the starter's `HOLD`.
    """
    start, submit = threading.Thread.start, ThreadPoolExecutor.submit

    def start_in_hold(thread: threading.Thread) -> None:
        hold = HOLD.get()
        if hold:
            # This one thread's run, in the hold: an instance attribute over the method.
            thread.run = functools.partial(_run_in_hold, hold, thread.run)  # type: ignore[method-assign]
        start(thread)

    def submit_in_hold(executor: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        hold = HOLD.get()
        if hold:
            fn = functools.partial(_run_in_hold, hold, fn)
        return submit(executor, fn, *args, **kwargs)

    undo_start = _replace(threading.Thread, "start", start_in_hold)
    undo_submit = _replace(ThreadPoolExecutor, "submit", submit_in_hold)

    def undo() -> None:
        undo_start()
        undo_submit()

    return undo


def _replace(cls: type, name: str, replacement: Callable[..., Any]) -> Callable[[], None]:
    """Put `replacement`, named and documented as the method, in place of `cls`'s method
    `name`; returns what puts the method back."""
    method = getattr(cls, name)
    setattr(cls, name, functools.wraps(method)(replacement))
    return functools.partial(setattr, cls, name, method)


def _run_in_hold(hold: int, run: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    token = HOLD.set(hold)
    try:
        return run(*args, **kwargs)
    finally:
        HOLD.reset(token)


def _refusal(alias: str) -> DatabaseError:
    thread = threading.current_thread()
    return DatabaseError(
        f"thread {thread.name!r} used database alias {alias!r} outside the fire call or "
        "live HTTP request that started it: it outlived it (whatever holds the "
        "connections now is another call, request or test). A runfireserver shares the "
        "test's connection with the threads a call or request starts, for as long as it "
        "waits for them; wait for the thread (join it) before the call or view returns"
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
