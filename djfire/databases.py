"""Test databases: create them, prove every alias is one, share each connection across threads.

The fire calls (server main thread) and the live HTTP server's threads use one
connection per alias, serialized by `SharedConnections.lock`, so an HTTP request made
during a test sees the test's uncommitted rows.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from django.test.utils import setup_databases

from .claims import Claims, claim_test_databases
from .connection_lock import DEFAULT_LOCK_TIMEOUT, ConnectionLock
from .nodb_cursors import shared_nodb_cursors
from .ownership import Ownership
from .server_identity import DatabaseServers, Key
from .templates import Templates
from .threads import share_with_every_thread

__all__ = [
    "ServedDatabases",
    "SharedConnections",
    "create_test_databases",
    "destroy_test_databases",
    "drop_test_database",
    "name_test_databases",
]

log = logging.getLogger("djfire.databases")


def _mirrors() -> dict[str, str]:
    """Each read replica (``TEST: {"MIRROR": PRIMARY}``) and the primary it reads, at the root."""
    mirrors: dict[str, str] = {}
    for alias in connections:
        primary = connections[alias].settings_dict.get("TEST", {}).get("MIRROR")
        seen = {alias}
        while primary and primary not in seen and primary in connections:
            seen.add(primary)
            mirrors[alias] = primary
            primary = connections[primary].settings_dict.get("TEST", {}).get("MIRROR")
    return mirrors


def _apply_suffix(suffix: str) -> None:
    """Give each alias its own test database name, e.g. ``test_shop_gw0`` (one per worker)."""
    mirrors = _mirrors()
    for alias in connections:
        if alias in mirrors:
            continue  # a mirror has no test database of its own
        connection = connections[alias]
        test_name = connection.creation._get_test_db_name()
        if connection.vendor == "sqlite" and connection.creation.is_in_memory_db(test_name):
            continue  # in-memory databases are private to the process already
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{test_name}_{suffix}"


def _spelled(alias: str) -> str:
    settings = connections[alias].settings_dict
    return f"HOST {settings.get('HOST') or ''!r} PORT {settings.get('PORT') or ''!r}"


def _refuse_non_test_names(servers: DatabaseServers) -> None:
    """Refuse to start when a test database would be a real database, asking the servers.

    Two aliases spelled differently may reach one server (``localhost`` and
    ``127.0.0.1``, a socket directory, an omitted default port): `servers` tells.
    Also refused: two aliases that would both create one test database on one server
    under two spellings (Django would create it twice, dropping it under the first).
    """
    mirrors = _mirrors()
    real: list[tuple[Key, str]] = []
    for alias in connections:
        connection = connections[alias]
        name = connection.settings_dict["NAME"]
        if name and not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
            # A mirror's server is never connected to: its name counts on every server.
            real.append((servers.key(alias, name, ask=alias not in mirrors), alias))
    made: list[tuple[Key, str]] = []
    for alias in connections:
        if alias in mirrors:
            continue  # creates nothing: it reads its primary's test database
        connection = connections[alias]
        test = connection.creation._get_test_db_name()
        if connection.vendor == "sqlite" and connection.creation.is_in_memory_db(test):
            continue
        key = servers.key(alias, test)
        for real_key, owner in real:
            if not servers.same(key, real_key):
                continue
            whose = "its NAME" if owner == alias else f"the NAME of alias {owner!r}"
            where = (
                f" on the same database server ({_spelled(alias)} and {_spelled(owner)} "
                "reach one server)"
                if owner != alias and connection.vendor != "sqlite"
                else ""
            )
            raise CommandError(
                f"database alias {alias!r}: its test database name {test!r} is the same as "
                f"{whose}{where}; runfireserver never serves a non-test database. Set "
                f"DATABASES[{alias!r}]['TEST']['NAME'] to a name no alias uses."
            )
        for other_key, other in made:
            if servers.same(key, other_key) and (
                connection.creation.test_db_signature()
                != connections[other].creation.test_db_signature()
            ):
                raise CommandError(
                    f"database aliases {other!r} and {alias!r} would both create the test "
                    f"database {test!r} on one database server ({_spelled(other)} and "
                    f"{_spelled(alias)}): the second would drop the first's. If {alias!r} "
                    f"is a replica of {other!r}, set DATABASES[{alias!r}]['TEST'] = "
                    f"{{'MIRROR': {other!r}}}; else give it a TEST NAME of its own."
                )
        made.append((key, alias))


@dataclass
class ServedDatabases:
    """What `create_test_databases` made: Django's teardown data, the claims held, and
    which test databases this server made (only those are ever dropped)."""

    old_config: list[tuple[Any, str, bool]]
    claims: Claims
    ownership: Ownership
    #: How each test database was made from its template (None: templates off).
    templates: Templates | None = None


def ensure_test_databases(expected_names: dict[str, str]) -> None:
    """Raise `CommandError` unless every alias now points at its test database.

    A mirror (``TEST: {"MIRROR": PRIMARY}``) must point at its primary's.
    """
    for alias in connections:
        connection = connections[alias]
        name = connection.settings_dict["NAME"]
        expected = expected_names.get(alias)
        in_memory = connection.vendor == "sqlite" and connection.creation.is_in_memory_db(name)
        if name != expected and not in_memory:
            raise CommandError(
                f"database alias {alias!r} points at {name!r}, not at its test database "
                f"{expected!r}: refusing to serve"
            )


def name_test_databases(suffix: str | None) -> tuple[DatabaseServers, dict[str, str]]:
    """Give every alias its final test database name (with `suffix`), refusing with
    `CommandError` a name that is a real database's; the servers asked, and the read
    replicas (mirror -> primary: they make nothing).

    One function for a start and for ``--drop-left-databases``, so both name the same
    databases and neither ever touches a non-test one.
    """
    if suffix:
        _apply_suffix(suffix)
    servers = DatabaseServers()
    _refuse_non_test_names(servers)
    return servers, _mirrors()


def create_test_databases(
    *,
    keepdb: bool,
    verbosity: int,
    suffix: str | None = None,
    rebuild: bool = False,
    say: Callable[[str], object] = print,
) -> ServedDatabases:
    """Claim, then create (or with `keepdb` reuse) every alias's test database, migrated.

    A PostgreSQL or SQLite test database is cloned from a migrated template, built first
    by the first server that needs it (`djfire.templates`; `rebuild`: built again); one
    that `keepdb` reuses is migrated forward as Django does. `say` gets a line for each
    template not used (and why) or removed.

    Raises `CommandError` before touching any database when a test database name is a
    real database's, when another fire server holds one of the test databases, or when
    one exists that no fire server made (Django would drop it; with `keepdb` it is
    reused as it is, never dropped: `djfire.ownership`).
    """
    bases = {alias: str(connections[alias].creation._get_test_db_name()) for alias in connections}
    servers, mirrors = name_test_databases(suffix)
    claims = claim_test_databases(servers, skip=set(mirrors))
    try:
        with shared_nodb_cursors([alias for alias in connections if alias not in mirrors]):
            ownership = Ownership(skip=set(mirrors))
            ownership.refuse_unmarked(keepdb=keepdb)
            templates = Templates(
                _templated(mirrors, ownership, keepdb=keepdb), bases, rebuild=rebuild, say=say
            )
            expected = {
                alias: connections[alias].creation._get_test_db_name()
                for alias in connections
                if alias not in mirrors
            }
            expected.update({mirror: expected[primary] for mirror, primary in mirrors.items()})
            with ownership.marking(keepdb=keepdb), templates.installed():
                old_config = setup_databases(
                    verbosity, interactive=False, keepdb=keepdb, serialized_aliases=set()
                )
        databases = ServedDatabases(old_config, claims, ownership, templates)
        try:
            ensure_test_databases(expected)
        except CommandError:
            if not keepdb:
                destroy_test_databases(databases, verbosity=verbosity)
            raise
    except BaseException:
        claims.release()
        raise
    return databases


def _templated(mirrors: dict[str, str], ownership: Ownership, *, keepdb: bool) -> list[str]:
    """The aliases whose test database is made from a template: PostgreSQL and SQLite,
    not a read replica, not one ``--keepdb`` reuses (it exists already), and not with
    ``DJFIRE_TEMPLATES = False`` in the settings."""
    if not getattr(settings, "DJFIRE_TEMPLATES", True):
        return []
    return [
        alias
        for alias in connections
        if alias not in mirrors
        and connections[alias].vendor in ("postgresql", "sqlite")
        and not (keepdb and alias in ownership.existing)
    ]


def destroy_test_databases(databases: ServedDatabases, *, verbosity: int) -> None:
    """Drop the test databases this server made (not called with --keepdb), then let go
    of their claims."""
    connections.close_all()
    try:
        old_config = databases.ownership.teardown_config(databases.old_config)
        _drop_together(old_config, verbosity)
    finally:
        databases.claims.release()


def _drop_together(old_config: list[tuple[Any, str, bool]], verbosity: int) -> None:
    """Django's ``teardown_databases``, with the databases dropped at the same time.

    A PostgreSQL ``DROP DATABASE`` waits for a checkpoint, over a second on a busy
    machine for each database: a server stopped by Ctrl-C should wait for about one.
    What ``destroy_test_db`` does with the shared connection stays in this thread (the
    others may not touch it, `djfire.threads`); each drop (`drop_test_database`, on a
    connection of its own to the server's maintenance database) runs in a thread.
    """
    dropped = [(connection, old_name) for connection, old_name, destroy in old_config if destroy]
    errors: list[BaseException] = []

    def drop(creation: Any, name: str) -> None:
        try:
            drop_test_database(creation, name, verbosity)
        except BaseException as exc:  # raised in the caller's thread, below
            errors.append(exc)

    threads = []
    for connection, _ in dropped:
        connection.close()
        name = connection.settings_dict["NAME"]
        if verbosity >= 1:
            shown = connection.creation._get_database_display_str(verbosity, name)
            connection.creation.log(f"Destroying test database for alias {shown}...")
        threads.append(threading.Thread(target=drop, args=(connection.creation, name)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection, old_name in dropped:  # the original names back, as Django does
        settings.DATABASES[connection.alias]["NAME"] = old_name
        connection.settings_dict["NAME"] = old_name
    if errors:
        raise errors[0]


def drop_test_database(creation: Any, name: str, verbosity: int) -> None:
    """Django's ``_destroy_test_db``; on PostgreSQL 13 and later ``WITH (FORCE)``: a
    session still on the test database (one closed a moment ago whose backend has not
    ended yet, a ``psql`` left open) is ended, where without it PostgreSQL waits up to
    5 s for it to leave, then refuses the drop."""
    if creation.connection.vendor != "postgresql":
        creation._destroy_test_db(name, verbosity)
        return
    with creation._nodb_cursor() as cursor:
        force = " WITH (FORCE)" if cursor.db.pg_version >= 130000 else ""
        cursor.execute(f"DROP DATABASE {creation.connection.ops.quote_name(name)}{force}")


def _lost(conn: Any) -> bool:
    """Whether `conn`'s DB-API connection is gone (psycopg's ``closed``; or closed by
    Django inside a transaction after an error)."""
    if conn.connection is None:
        return bool(conn.closed_in_transaction)
    return bool(getattr(conn.connection, "closed", False))


def forget(conn: Any) -> None:
    """Close `conn` for real and put its transaction bookkeeping back to none.

    Bypasses the server's guarded ``close`` (`djfire.threads`), which does nothing inside
    a transaction: the transaction is gone with the connection. The wrapper object stays
    the one every thread shares.
    """
    raw, conn.connection = conn.connection, None
    if raw is not None:
        with contextlib.suppress(Exception):
            raw.close()
    conn.in_atomic_block = False
    conn.savepoint_ids = []
    conn.atomic_blocks = []
    conn.savepoint_state = 0
    conn.needs_rollback = False
    conn.rollback_exc = None
    conn.closed_in_transaction = False
    conn.commit_on_exit = True
    conn.run_on_commit = []
    conn.errors_occurred = False
    conn.health_check_done = False


class SharedConnections:
    """One connection per alias for every thread, and the lock that serializes their use."""

    def __init__(self, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.lock = ConnectionLock(lock_timeout)
        mirrors = _mirrors()
        self.aliases = [alias for alias in connections if alias not in mirrors]
        self.by_alias = {alias: connections[alias] for alias in self.aliases}
        for connection in self.by_alias.values():
            connection.inc_thread_sharing()
        # A read replica (TEST MIRROR) *is* its primary's connection, in every thread: reads
        # through it see the test's rows. `by_alias` (scopes, savepoints) has primaries only.
        self.every_alias = {**self.by_alias, **{m: self.by_alias[p] for m, p in mirrors.items()}}
        for mirror in mirrors:
            connections[mirror].close()
            connections[mirror] = self.every_alias[mirror]
        # Inside the test transaction these would close the connection and end it.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        # Every thread gets these wrappers from django.db.connections (djfire.threads).
        self._unshare = share_with_every_thread(self.every_alias, self.lock)

    def in_transaction(self) -> bool:
        """Whether a test scope's transaction is open (the first alias tells for all)."""
        return self.by_alias[self.aliases[0]].in_atomic_block

    def vendors(self) -> dict[str, str]:
        return {alias: conn.vendor for alias, conn in self.by_alias.items()}

    def lost(self) -> list[str]:
        """The aliases whose database connection is gone (its backend terminated, the
        server restarted): without a query, so it also answers inside a broken transaction."""
        return [alias for alias, conn in self.by_alias.items() if _lost(conn)]

    def check_health(self) -> list[str]:
        """Reconnect every connection that is lost or fails Django's health check
        (``is_usable()``, as ``CONN_HEALTH_CHECKS`` does); returns the aliases reconnected.

        Called with the connections held, before an outermost scope opens: outside every
        transaction, so a connection that died between two tests costs no test. A
        reconnect fires ``connection_created`` (the data-change capture makes its
        temporary tables again, `djfire.changes`).
        """
        reconnected = []
        for alias, conn in self.by_alias.items():
            if conn.connection is None and not conn.in_atomic_block:
                continue  # never opened, or closed: the next query connects
            if _lost(conn) or conn.in_atomic_block or not conn.is_usable():
                log.warning(
                    "the database connection of alias %r was lost (its backend was "
                    "terminated, or the database restarted): reconnecting",
                    alias,
                )
                forget(conn)
                conn.ensure_connection()
                reconnected.append(alias)
        return reconnected

    def forget_lost(self) -> list[str]:
        """Forget the transactions of the lost connections (gone with them): their
        atomic and savepoint bookkeeping back to none, the connection closed. The next
        query, or `check_health`, reconnects. Returns the aliases forgotten."""
        aliases = self.lost()
        for alias in aliases:
            forget(self.by_alias[alias])
        return aliases

    def close(self) -> None:
        self._unshare()
        for connection in self.by_alias.values():
            connection.dec_thread_sharing()
