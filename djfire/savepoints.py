"""The savepoint around each fire call and each live HTTP request inside a test scope.

A failing call or request must undo only its own work and leave the test's transaction
usable, even on PostgreSQL after a database error: so each runs in a savepoint on each
alias it queries. The savepoint is opened just before the first query there (a call
that sends no SQL, a ping or a repr, costs no SQL), by an execute wrapper that sees
every statement Django sends, the ``SAVEPOINT`` of a view's own ``atomic()`` included:
ours then comes first and nests around it as an eager one would.

The statements go to the driver's connection directly, not through Django's
``atomic()``: this savepoint is fire's, not the application's, so it needs none of
Django's bookkeeping, and skipping it makes a call several times cheaper in SQL
overhead (a round trip less per call on PostgreSQL, where Django's atomic also asks
for the connection's state). What Django's atomic would do on the way out is done here:
when an exception passes, the block asks for a rollback (a 5xx answer), or the
application left the connection marked ``needs_rollback`` (a failed ``save()`` whose
error it caught), the savepoint is rolled back, the mark cleared, and the ``on_commit``
callbacks registered inside it dropped.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from fire import FireError

__all__ = ["CallSavepoints", "savepoints_opened"]

log = logging.getLogger("djfire.savepoints")

#: libpq's PQTRANS_INERROR, as psycopg 3 (``pq.TransactionStatus``) and psycopg2 report it.
_INERROR = 3

#: Numbers savepoint names: unique in the process, so nesting never reuses a live one
#: (`next` of a C counter, safe from any thread; a generator's is not).
_numbers = itertools.count(1)

#: The attribute of a connection (Django's wrapper) counting the savepoints opened on it
#: here. Every call and request that queries an alias through Django opens one first, so
#: a count that has not moved says none did: `djfire.changes` then knows, without a
#: query, that the alias captured no rows (a contract's state is read on each request).
_OPENED = "_djfire_savepoints_opened"


def savepoints_opened(connection: Any) -> int:
    """How many call and request savepoints were ever opened on `connection`."""
    opened: int = getattr(connection, _OPENED, 0)
    return opened


class _SavepointAtFirstQuery:
    """An execute wrapper that opens a savepoint on its connection before the first query."""

    __slots__ = ("alias", "callbacks_before", "connection", "depth", "name")

    def __init__(self, alias: str, connection: Any) -> None:
        self.alias = alias
        self.connection = connection
        self.name: str | None = None
        self.callbacks_before = 0
        self.depth = 0

    def __call__(self, execute: Callable[..., Any], sql: Any, *args: Any) -> Any:
        first = self.name is None
        if first:
            self.open()
        try:
            return execute(sql, *args)
        except Exception:
            # (costs nothing unless a statement fails)
            if len(self.connection.atomic_blocks) == self.depth and _aborted(self.connection):
                self._recover(first)
            raise

    def open(self) -> None:
        connection = self.connection
        name = f"fire_{next(_numbers)}"
        with connection.wrap_database_errors:
            _run(connection, connection.ops.savepoint_create_sql(name))
        self.name = name
        setattr(connection, _OPENED, getattr(connection, _OPENED, 0) + 1)
        self.callbacks_before = len(connection.run_on_commit)

    def _recover(self, first: bool) -> None:
        """A statement outside the application's atomic blocks aborted the transaction.

        Under autocommit (production) that statement was a transaction of its own, and
        the code that catches its error goes on querying. Here the test's transaction
        would refuse every later statement ("current transaction is aborted"): roll back
        to the savepoint now, so the rest of the call or request runs, as Django's
        ``Atomic`` rolls back to its savepoint. What the block did before the error on
        this alias is undone with it, which is said in the server's output.
        """
        connection, name = self.connection, self.name
        assert name is not None
        try:
            _run(connection, connection.ops.savepoint_rollback_sql(name))
        except Exception:
            return  # the error being raised tells more; `close` tries again
        del connection.run_on_commit[self.callbacks_before :]
        if not first:
            log.warning(
                "a database error outside any atomic block aborted the transaction on "
                "alias %r: fire rolled the call or request back to its savepoint, so its "
                "earlier work on that alias is undone (under autocommit it would have been "
                "committed). To keep it, run the statement that may fail in "
                "transaction.atomic(), as Django advises for PostgreSQL",
                self.alias,
            )

    def close(self, roll_back: bool) -> None:
        """Release the savepoint, or roll back to it (also when Django asks for it).

        When the release fails, the transaction is in error (on PostgreSQL, a failed
        statement whose error was caught where `_recover` could not see it, e.g. on the
        driver's own cursor): roll back to the savepoint and release it, as Django's
        ``Atomic`` does, so the test's transaction stays usable.
        """
        name, connection = self.name, self.connection
        if name is None:
            return
        self.name = None
        with connection.wrap_database_errors:
            if roll_back or connection.needs_rollback:
                self._roll_back_to(name)
            try:
                _run(connection, connection.ops.savepoint_commit_sql(name))
            except connection.Database.Error:
                self._roll_back_to(name)
                _run(connection, connection.ops.savepoint_commit_sql(name))

    def _roll_back_to(self, name: str) -> None:
        connection = self.connection
        _run(connection, connection.ops.savepoint_rollback_sql(name))
        connection.needs_rollback = False
        del connection.run_on_commit[self.callbacks_before :]


def _aborted(connection: Any) -> bool:
    """Whether the transaction refuses statements until a rollback (PostgreSQL's INERROR)."""
    if connection.vendor != "postgresql":
        return False  # SQLite, MySQL, Oracle go on after a failed statement
    raw = connection.connection
    info = getattr(raw, "info", None)  # psycopg 3
    if info is not None:
        return info.transaction_status == _INERROR
    status = getattr(raw, "get_transaction_status", None)  # psycopg2
    return status is not None and status() == _INERROR


def _run(connection: Any, sql: str) -> None:
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


class CallSavepoints:
    """A savepoint on each alias the block queries, opened just before its first query.

    ``with CallSavepoints(connections) as roll_back:`` -- the block calls `roll_back` to
    have its work undone (a 5xx answer); an exception passing through undoes it too.
    The block must close the atomic blocks it opens (`_close_atomics_left_open` says
    why). A class, not a generator: it is entered around every call and request.
    `eager` opens them on entering, for a block whose statements may bypass Django's
    execute wrappers (a driver's server-side cursor sends its ``CLOSE`` itself).
    """

    __slots__ = ("asked", "eager", "openers")

    def __init__(self, connections: dict[str, Any], *, eager: bool = False) -> None:
        self.openers = [
            _SavepointAtFirstQuery(alias, connection)
            for alias, connection in connections.items()
            if connection.features.uses_savepoints
        ]
        self.asked = False
        self.eager = eager

    def roll_back(self) -> None:
        self.asked = True

    def __enter__(self) -> Callable[[], None]:
        for opener in self.openers:
            opener.depth = len(opener.connection.atomic_blocks)
            # First, the outermost: it sees each statement before the application's
            # wrappers do, and Django's ``execute_wrapper()``, which removes the *last*
            # wrapper on exit, never removes it (a ``with`` around fire calls exits in
            # another call than the one it entered in).
            opener.connection.execute_wrappers.insert(0, opener)
        if self.eager:
            try:
                for opener in self.openers:
                    opener.open()
            except BaseException:
                self.__exit__(Exception)
                raise
        return self.roll_back

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if exc_type is None:
                for opener in self.openers:
                    _close_atomics_left_open(opener.alias, opener.depth, opener.connection)
        except BaseException:
            self._close_all(roll_back=True)
            raise
        finally:
            for opener in self.openers:
                opener.connection.execute_wrappers.remove(opener)
        self._close_all(roll_back=exc_type is not None or self.asked)

    def _close_all(self, *, roll_back: bool) -> None:
        """Close every alias's savepoint, even when one fails; raise the first failure."""
        failure: BaseException | None = None
        for opener in self.openers:
            try:
                opener.close(roll_back)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


def _close_atomics_left_open(alias: str, depth: int, connection: Any) -> None:
    """Refuse a call or request that returns with an atomic block still open.

    ``transaction.atomic().__enter__()`` run remotely (a ``with`` around fire calls)
    would leave its block open inside the call's savepoint, and releasing that savepoint
    would then end it behind Django's back. Such blocks are rolled back here, innermost
    first, and the call fails with the fix (the call's own work is rolled back with it).
    """
    blocks = connection.atomic_blocks
    if len(blocks) <= depth:
        return
    while len(blocks) > depth:
        transaction.set_rollback(True, using=alias)
        blocks[-1].__exit__(None, None, None)
    raise FireError(
        f"an atomic block (transaction.atomic()) on database alias {alias!r} was still "
        "open when the call returned: a block cannot span fire calls, since each call runs "
        "in a savepoint of its own. It was rolled back, with the call's work. Run the "
        "whole block on the server: in a function of the service that the test calls"
    )
