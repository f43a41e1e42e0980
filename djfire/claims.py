"""Claims on test databases: two servers never share (or drop) one test database.

Two servers of one project on one PostgreSQL (or one directory of SQLite files) would
use the same test database names. Without a claim, the second one's set-up drops the
first one's database mid-run, or fails with Django's "database is being accessed by
other users". A server claims each test database before it creates it and holds the
claim until it exits; the operating system or PostgreSQL releases it when the process
dies, however it dies.

- PostgreSQL: a session-level advisory lock, taken on a connection of its own to the
  maintenance database, whose ``application_name`` says which server holds it.
- SQLite files: an exclusive ``flock`` on a file beside the test database, which says
  which server holds it.
- In-memory SQLite needs no claim (private to the process), nor does a read replica
  (``TEST: {"MIRROR": ...}``: it creates nothing). Other backends are not claimed.

Two aliases on one server claim its test database once: the server is asked what it
is (`djfire.server_identity`), whatever HOST and PORT spell it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import zlib
from pathlib import Path
from typing import Any, Protocol

from django.core.management.base import CommandError
from django.db import connections

from .server_identity import DatabaseServers, Key

__all__ = ["ClaimHeld", "Claims", "claim_test_database", "claim_test_databases"]

#: The first key of djfire's advisory locks ("df"): keeps them apart from the project's.
_LOCK_NAMESPACE = 0x6466


class _Claim(Protocol):
    def release(self) -> None: ...


def _who() -> str:
    """This server, as the holder of a claim is named to the next one."""
    return f"runfireserver pid {os.getpid()} on {socket.gethostname()}"


class ClaimHeld(CommandError):
    """Another live fire server holds the claim on a test database; `holder` names it."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


def _refusal(alias: str, name: str, where: str, holder: str) -> ClaimHeld:
    return ClaimHeld(
        f"database alias {alias!r}: the test database {name!r}{where} is in use by another "
        f"fire server ({holder}). Two servers of one project need test databases of their "
        "own: give this one a suffix with `runfireserver --db-suffix NAME` (in a spawn "
        "spec: `:suffix=NAME`), or stop the other server",
        holder,
    )


class _PostgresClaim:
    def __init__(self, alias: str, connection: Any, name: str) -> None:
        params = connection.get_connection_params()
        params.update(dbname="postgres", application_name=f"djfire {_who()}"[:63])
        self._conn = connection.Database.connect(**params)
        self._conn.autocommit = True
        key = zlib.crc32(name.encode()) & 0x7FFFFFFF
        with self._conn.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_NAMESPACE, key))
            if cursor.fetchone()[0]:
                return
            cursor.execute(
                "SELECT a.application_name, a.pid FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 2",
                (_LOCK_NAMESPACE, key),
            )
            row = cursor.fetchone()
        self._conn.close()
        holder = f"{row[0]}, backend pid {row[1]}" if row else "it has just left"
        host = connection.settings_dict.get("HOST") or "localhost"
        port = connection.settings_dict.get("PORT") or 5432
        raise _refusal(alias, name, f" on {host}:{port}", holder)

    def release(self) -> None:
        self._conn.close()  # ends the session, and with it the advisory lock


class _SqliteFileClaim:
    def __init__(self, alias: str, name: str) -> None:
        self._path = Path(f"{name}.djfire-claim")
        self._file = open(self._path, "a+")  # noqa: SIM115 (held open for the server's life)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise _refusal(alias, name, "", holder) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{_who()} ({' '.join(sys.argv)})\n")
        self._file.flush()

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._file.close()  # closing releases the lock


class Claims:
    """The claims this server holds; `release()` them when its databases are gone."""

    def __init__(self) -> None:
        self._held: list[_Claim] = []

    def add(self, claim: _Claim) -> None:
        self._held.append(claim)

    def release(self) -> None:
        while self._held:
            self._held.pop().release()


def claim_test_databases(
    servers: DatabaseServers | None = None, *, skip: set[str] | frozenset[str] = frozenset()
) -> Claims:
    """Claim every alias's test database (by its final name), or raise `CommandError`.

    Aliases whose test databases are one database on one server (as `servers` finds by
    asking each server, whatever the spelling) take one claim; `skip` names aliases that
    create nothing (read replicas, ``TEST: {"MIRROR": ...}``).
    """
    servers = servers or DatabaseServers()
    claims = Claims()
    claimed: set[Key] = set()
    try:
        for alias in connections:
            if alias in skip:
                continue
            connection = connections[alias]
            name = connection.creation._get_test_db_name()
            if connection.vendor == "sqlite" and connection.creation.is_in_memory_db(name):
                continue
            if connection.vendor not in ("postgresql", "sqlite"):
                continue
            key = servers.key(alias, name)
            if key in claimed:
                continue
            claims.add(claim_test_database(alias))
            claimed.add(key)
    except BaseException:
        claims.release()
        raise
    return claims


def claim_test_database(alias: str) -> _Claim:
    """Claim `alias`'s test database (PostgreSQL or an SQLite file, by its final name), or
    raise `ClaimHeld` naming the live server that holds it."""
    connection = connections[alias]
    name = connection.creation._get_test_db_name()
    if connection.vendor == "postgresql":
        return _PostgresClaim(alias, connection, name)
    return _SqliteFileClaim(alias, str(Path(name).resolve()))
