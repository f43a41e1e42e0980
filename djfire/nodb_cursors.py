"""One maintenance-database connection per PostgreSQL alias while test databases are set up.

Setting up a PostgreSQL test database asks its server several things outside any
database, each through Django's ``_nodb_cursor``, which connects afresh every time:
whether the test database exists and who made it (`djfire.ownership`), the server's
version and extensions (`djfire.template_key`), ``CREATE DATABASE`` or a spare's rename
(Django's set-up, `djfire.templates`), the mark on the database made (`djfire.ownership`).
That was four connects of a cloned start, 5-25 ms each on this machine's PostgreSQL.

Within `shared_nodb_cursors` the first ``_nodb_cursor`` of an alias opens its connection
as Django does (to ``postgres``, or Django's fallback database with its warning) and the
others reuse it; it is closed at the end. Later ones (the teardown's drop) connect afresh.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connections

__all__ = ["shared_nodb_cursors"]


@contextlib.contextmanager
def shared_nodb_cursors(aliases: list[str]) -> Iterator[None]:
    """While in it, each PostgreSQL alias of `aliases` has one ``_nodb_cursor``."""
    with contextlib.ExitStack() as stack:
        for alias in aliases:
            connection = connections[alias]
            if connection.vendor != "postgresql":
                continue
            connection._nodb_cursor = _shared(connection._nodb_cursor, stack)
            stack.callback(delattr, connection, "_nodb_cursor")
        yield


NodbCursor = Callable[[], contextlib.AbstractContextManager[Any]]


def _shared(open_cursor: NodbCursor, stack: contextlib.ExitStack[bool | None]) -> NodbCursor:
    """A ``_nodb_cursor`` that opens one cursor with `open_cursor`, on first use, kept
    open by `stack` (closed before the patch is undone: it is entered later)."""
    opened: list[Any] = []

    @contextlib.contextmanager
    def nodb_cursor() -> Iterator[Any]:
        if not opened:
            opened.append(stack.enter_context(open_cursor()))
        yield opened[0]

    return nodb_cursor
