"""References a client released: their objects are dropped under the connections' lock.

Dropping the server's last reference to an object runs its finalizer there and then,
and a finalizer may query: a half-read ``QuerySet.iterator()`` is a generator whose
``finally`` closes its cursor, on PostgreSQL a server-side one (``CLOSE``). Dropped
beside a live request, it would use the shared connection at the same time as the
request; dropped in the next test after its own test's rollback took the cursor away,
its ``CLOSE`` fails and leaves that test's transaction aborted ("current transaction is
aborted" for every later call).

So the objects are dropped holding the lock (fire hands them over through the
extension's ``release_references``, for a request's releases and for all of a closing
session's references), never waiting for it: when something holds it, they are dropped
as soon as it lets go, before anything else runs on the connections
(`ConnectionLock.defer`). Inside a test scope they are dropped in the test's transaction
in a savepoint of their own, so a finalizer that fails undoes only itself; opened at
once when a generator or coroutine is among them (what it runs on closing may bypass
Django, as the driver's ``CLOSE`` does), otherwise at the first query, as a call's.
Outside every scope, in a transaction on each alias that is rolled back.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from typing import Any

from django.db import transaction

from fire import ServerBusy
from fire.extensions import Session

from .databases import SharedConnections
from .savepoints import CallSavepoints

__all__ = ["release_references"]

#: Objects whose dropping runs code of their own (a ``finally``, a ``with``'s exit).
_CLOSE_ON_DROP = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)


def release_references(shared: SharedConnections, session: Session, objects: list[Any]) -> None:
    """Drop `objects` (emptying the list) holding `shared`'s lock, now or once it is free."""

    def what() -> str:
        return f"releasing references of {session.describe()}"

    def drop() -> None:
        with _dropping(shared, objects):
            objects.clear()

    holding = False
    try:
        with shared.lock.hold(what, timeout=0):
            holding = True
            drop()
    except ServerBusy:
        if holding:
            raise
        shared.lock.defer(what(), drop)


@contextlib.contextmanager
def _dropping(shared: SharedConnections, objects: list[Any]) -> Iterator[None]:
    if shared.in_transaction():
        eager = any(isinstance(obj, _CLOSE_ON_DROP) for obj in objects)
        with CallSavepoints(shared.by_alias, eager=eager):
            yield
        return
    with contextlib.ExitStack() as stack:
        for alias in shared.aliases:
            stack.enter_context(transaction.atomic(using=alias))
        try:
            yield
        finally:
            for alias in shared.aliases:
                transaction.set_rollback(True, using=alias)
