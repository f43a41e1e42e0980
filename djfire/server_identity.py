"""Which database a name means: asked of the database server, never read from the spelling.

``HOST: "localhost"``, ``"127.0.0.1"``, a socket directory, a pooler in front, ``PORT: ""``
or ``"5432"``: many settings reach one PostgreSQL server. Comparing them as text takes one
server for two, and a test database named like another alias's real database would be
dropped. So each alias's PostgreSQL server is asked what it is:

- ``extract(epoch FROM pg_postmaster_start_time())``: when that server started, to the
  microsecond;
- ``current_setting('port')``: the port it listens on (its own, also behind a pooler).

Both are open to any role (``pg_control_system()`` and ``data_directory`` may need
``pg_monitor`` or ``pg_read_all_settings``, and two aliases with two roles must still
agree). A server that cannot be asked (not running, no ``postgres`` database and no real
one) is "unknown": it is taken to be *any* server, so its names are compared by name
alone, which can only refuse more, never drop more.

SQLite: the file (its device and inode when it exists, else its resolved path).
Other backends: ENGINE, HOST and PORT as spelled.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from django.db import connections

__all__ = ["DatabaseServers", "Key"]

log = logging.getLogger("djfire")

#: (vendor, server…, database name): equal keys are one database.
Key = tuple[str, ...]

_UNKNOWN = "unknown server"
_ASK = "SELECT extract(epoch FROM pg_postmaster_start_time())::text, current_setting('port')"


class DatabaseServers:
    """Each alias's database server, asked once per start (the answers are kept)."""

    def __init__(self) -> None:
        self._servers: dict[str, tuple[str, ...]] = {}

    def key(self, alias: str, name: Any, *, ask: bool = True) -> Key:
        """What identifies the database `name` (a real or test name) of `alias`'s server.

        Without `ask`, a server is not connected to (a replica's host may be unreachable
        from tests): it is unknown, so any server.
        """
        connection = connections[alias]
        if connection.vendor == "sqlite":
            return ("sqlite", _sqlite_file(name))
        if not ask:
            return (connection.vendor, _UNKNOWN, str(name))
        return (*self.server(alias), str(name))

    def server(self, alias: str) -> tuple[str, ...]:
        if alias not in self._servers:
            connection = connections[alias]
            if connection.vendor == "postgresql":
                self._servers[alias] = ("postgresql", *_ask_postgresql(alias, connection))
            else:
                settings = connection.settings_dict
                self._servers[alias] = (
                    connection.vendor,
                    str(settings.get("ENGINE")),
                    str(settings.get("HOST") or ""),
                    str(settings.get("PORT") or ""),
                )
        return self._servers[alias]

    @staticmethod
    def same(one: Key, other: Key) -> bool:
        """Whether two keys may be one database (an unknown server may be any server)."""
        if one == other:
            return True
        if one[0] != other[0] or one[-1] != other[-1]:
            return False
        return _UNKNOWN in one or _UNKNOWN in other


def _ask_postgresql(alias: str, connection: Any) -> tuple[str, ...]:
    """(start time, port) as the server reports them, or (unknown,) if it cannot be asked."""
    try:
        params = connection.get_connection_params()
    except Exception as exc:  # an ImproperlyConfigured alias: Django will say it
        log.info("alias %r: cannot ask its PostgreSQL server (%s)", alias, exc)
        return (_UNKNOWN,)
    real = params.get("dbname")
    failure: Exception | None = None
    for dbname in dict.fromkeys(name for name in ("postgres", real) if name):
        try:
            conn = connection.Database.connect(**{**params, "dbname": dbname})
        except connection.Database.Error as exc:
            failure = exc
            continue
        try:
            with conn.cursor() as cursor:
                cursor.execute(_ASK)
                started, port = cursor.fetchone()
            return (str(started), str(port))
        except connection.Database.Error as exc:
            failure = exc
        finally:
            conn.close()
    log.info("alias %r: cannot ask its PostgreSQL server (%s)", alias, failure)
    return (_UNKNOWN,)


def _sqlite_file(name: Any) -> str:
    path = Path(name)
    try:
        status = os.stat(path)
    except OSError:
        return str(path.resolve())
    return f"{status.st_dev}:{status.st_ino}"
