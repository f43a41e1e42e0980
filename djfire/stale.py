"""With ``--keepdb``, a missing table or column is most likely a stale test database: say so.

A kept test database is migrated forward at each start, but Django cannot see a
migration edited in place, nor a branch checked out whose migrations differ from the
ones the database went through: the database keeps the old tables, and a test fails
with "table shop_product has no column named price", far from the cause. `KeptDatabases`
adds a note to such an error, raised by a fire call or by a view of the live server (in
the traceback the server prints), naming the kept test databases and how to rebuild them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError, connections

__all__ = ["KeptDatabases", "missing_schema"]

#: SQLite's words for a table or column that is not there.
_SQLITE_MISSING = ("no such table", "no such column", "has no column named")
#: PostgreSQL's SQLSTATEs: undefined_table, undefined_column.
_POSTGRESQL_MISSING = ("42P01", "42703")
#: MySQL's error numbers: unknown column, table does not exist.
_MYSQL_MISSING = (1054, 1146)


def missing_schema(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) is a database's "no such table
    or column"."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseError) and _says_missing(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _says_missing(error: DatabaseError) -> bool:
    driver = error.__cause__
    state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    if state in _POSTGRESQL_MISSING:
        return True
    if error.args and error.args[0] in _MYSQL_MISSING:
        return True
    text = str(error)
    return any(words in text for words in _SQLITE_MISSING)


class KeptDatabases:
    """Notes a missing table or column on the errors of a server started with ``--keepdb``."""

    def __init__(self, names: dict[str, str]) -> None:
        kept = ", ".join(f"{name!r} (alias {alias!r})" for alias, name in names.items())
        self.note = (
            f"fire: this server reused its test databases (runfireserver --keepdb): {kept}; "
            "one may be older than the migrations (a migration edited in place, another "
            "branch checked out), which migrate cannot see. Start runfireserver once "
            "without --keepdb to rebuild them"
        )

    @classmethod
    def of(cls, aliases: Iterable[str]) -> KeptDatabases | None:
        """The test databases of `aliases` a restart keeps (None: only in-memory ones)."""
        names = {}
        for alias in aliases:
            connection = connections[alias]
            name = str(connection.settings_dict["NAME"])
            if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
                names[alias] = name
        return cls(names) if names else None

    def on_request_exception(self, sender: Any, **kwargs: Any) -> None:
        """Django's ``got_request_exception``: sent while the view's error is handled,
        before Django logs it."""
        error = sys.exception()
        if error is not None:
            self.annotate(error)

    def annotate(self, error: BaseException) -> None:
        """Add the note to `error` if it is about a missing table or column."""
        if self.note not in getattr(error, "__notes__", ()) and missing_schema(error):
            error.add_note(self.note)
