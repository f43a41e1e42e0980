"""Which test databases a fire server made: marked when made, checked before Django drops one.

Without ``--keepdb``, Django's set-up drops any database that has the test database's
name and makes it again: a developer's own database that happens to be called
``test_shop``, or one that ``manage.py test --keepdb`` keeps. A fire server drops only
what a fire server made, so it marks each test database it makes and, before the
set-up, looks for an existing one without the mark:

- PostgreSQL: ``COMMENT ON DATABASE`` (``djfire test database …``), read back with
  ``shobj_description`` from the maintenance database (any role may read it);
- SQLite files: ``PRAGMA application_id`` (a number in the file's header, read from the
  header without opening the file as a database);
- in-memory SQLite is private to the process; a read replica (``TEST: {"MIRROR": …}``)
  makes nothing; other backends are not checked (Django's own runner drops theirs too).

An existing database without the mark stops the start, unless ``--keepdb``: reusing a
database without dropping it never destroys it, and it is left unmarked (a later run
without ``--keepdb`` still refuses it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandError
from django.db import connections

__all__ = ["Existing", "Ownership", "checked_aliases", "existing_test_database"]

#: The start of a PostgreSQL test database's comment, once a fire server made it.
MARK = "djfire test database"
#: ``PRAGMA application_id`` of an SQLite test database a fire server made ("dfir").
SQLITE_APPLICATION_ID = int.from_bytes(b"dfir", "big")
_SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Existing:
    """A test database that exists before the set-up."""

    alias: str
    name: str
    vendor: str
    marked: bool


def checked_aliases(skip: set[str] | frozenset[str]) -> list[str]:
    """The aliases whose test database Django would make (and so could drop)."""
    checked = []
    for alias in connections:
        connection = connections[alias]
        if alias in skip or connection.vendor not in ("postgresql", "sqlite"):
            continue
        name = connection.creation._get_test_db_name()
        if connection.vendor == "sqlite" and connection.creation.is_in_memory_db(name):
            continue
        checked.append(alias)
    return checked


class Ownership:
    """The test databases that exist before the set-up, and those the set-up made."""

    def __init__(self, skip: set[str] | frozenset[str] = frozenset()) -> None:
        #: The aliases whose test database Django would make (`skip`: mirrors).
        self.checked = checked_aliases(skip)
        self.existing = {
            alias: found for alias in self.checked if (found := existing_test_database(alias))
        }
        #: The aliases whose test database this server made (`marking`).
        self.made: set[str] = set()

    def refuse_unmarked(self, *, keepdb: bool) -> None:
        """Raise `CommandError` naming a test database a fire server did not make, unless
        `keepdb` (then it is reused as it is, and never dropped)."""
        if keepdb:
            return
        for found in self.existing.values():
            if not found.marked:
                raise _refusal(found)

    @contextlib.contextmanager
    def marking(self, *, keepdb: bool) -> Iterator[None]:
        """While Django's set-up runs, mark each test database as soon as it is made.

        Marked at once (before its migrations), so that one a failed set-up leaves behind
        is a fire server's: the next start makes it again instead of refusing it.
        """
        originals = {}
        for alias in self.checked:
            creation = connections[alias].creation
            originals[alias] = creation.__dict__.get("_create_test_db")
            creation._create_test_db = self._marker(alias, creation._create_test_db, keepdb)
        try:
            yield
        finally:
            for alias, original in originals.items():
                creation = connections[alias].creation
                if original is None:
                    del creation._create_test_db
                else:
                    creation._create_test_db = original

    def _marker(self, alias: str, create: Callable[..., Any], keepdb: bool) -> Callable[..., Any]:
        def create_and_mark(verbosity: int, autoclobber: bool, keepdb_: bool = False) -> Any:
            name = create(verbosity, autoclobber, keepdb_)
            found = self.existing.get(alias)
            if keepdb and found is not None and not found.marked:
                return name  # reused as it is: not this server's to mark, or to drop
            _mark(connections[alias], str(name))
            self.made.add(alias)
            return name

        return create_and_mark

    def teardown_config(self, old_config: list[tuple[Any, str, bool]]) -> list[Any]:
        """Django's teardown list, with only the databases this server made to drop (of
        the backends checked: the others are dropped as Django's runner drops them)."""
        return [
            (connection, old_name, destroy and self._made(connection.alias))
            for connection, old_name, destroy in old_config
        ]

    def _made(self, alias: str) -> bool:
        return alias in self.made or alias not in self.checked


def _mark(connection: Any, name: str) -> None:
    """Mark the test database `name` of `connection` (just made) as a fire server's."""
    if connection.vendor == "postgresql":
        text = f"{MARK}, made by {_who()}".replace("'", "''")
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"COMMENT ON DATABASE {connection.ops.quote_name(name)} IS '{text}'")
    else:  # the file does not exist yet (Django removed any old one): made here, marked
        with contextlib.closing(sqlite3.connect(name)) as database:
            database.execute(f"PRAGMA application_id = {SQLITE_APPLICATION_ID}")
            database.commit()


def existing_test_database(alias: str) -> Existing | None:
    """The alias's test database if it exists now, and whether a fire server made it."""
    connection = connections[alias]
    name = str(connection.creation._get_test_db_name())
    if connection.vendor == "postgresql":
        with connection._nodb_cursor() as cursor:
            cursor.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
                "WHERE datname = %s",
                [name],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return Existing(alias, name, "postgresql", (row[0] or "").startswith(MARK))
    if not os.path.lexists(name):
        return None
    return Existing(alias, name, "sqlite", _sqlite_marked(name))


def _sqlite_marked(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except OSError:
        return False  # not a file we can read (a directory, a dangling link): not ours
    return header.startswith(_SQLITE_HEADER) and (
        int.from_bytes(header[68:72], "big") == SQLITE_APPLICATION_ID
    )


def _refusal(found: Existing) -> CommandError:
    if found.vendor == "postgresql":
        what = f"the PostgreSQL database {found.name!r}"
        drop = f'drop it yourself (`DROP DATABASE "{found.name}"`)'
        why = "no 'djfire test database' comment"
    else:
        what = f"the SQLite file {found.name}"
        drop = "delete the file yourself"
        why = "no djfire application_id"
    return CommandError(
        f"database alias {found.alias!r}: its test database exists already, and was not "
        f"made by a fire server: {what} ({why}; made by hand, or kept by Django's "
        "`manage.py test --keepdb`). runfireserver would drop it to make its own, and "
        f"never drops a database it did not make. If it is a leftover, {drop}; to use "
        "it as it is, without dropping it, start with `runfireserver --keepdb`."
    )


def _who() -> str:
    return f"runfireserver pid {os.getpid()} on {socket.gethostname()}"
