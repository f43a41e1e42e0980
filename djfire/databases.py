"""Test databases: create them, prove every alias is one, share each connection across threads.

The fire calls (server main thread) and the live HTTP server's threads use one
connection per alias, serialized by `SharedConnections.lock`, so an HTTP request made
during a test sees the test's uncommitted rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections
from django.test.utils import setup_databases, teardown_databases

from .claims import Claims, claim_test_databases
from .connection_lock import DEFAULT_LOCK_TIMEOUT, ConnectionLock

__all__ = [
    "ServedDatabases",
    "SharedConnections",
    "create_test_databases",
    "destroy_test_databases",
]


def _apply_suffix(suffix: str) -> None:
    """Give each alias its own test database name, e.g. ``test_shop_gw0`` (one per worker)."""
    for alias in connections:
        connection = connections[alias]
        test_name = connection.creation._get_test_db_name()
        if connection.vendor == "sqlite" and connection.creation.is_in_memory_db(test_name):
            continue  # in-memory databases are private to the process already
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{test_name}_{suffix}"


def _database_key(connection: Any, name: Any) -> tuple[str, ...]:
    """What identifies a database: its file for SQLite, else server and name."""
    if connection.vendor == "sqlite":
        return ("sqlite", str(Path(name).resolve()))
    settings = connection.settings_dict
    return (connection.vendor, str(settings.get("HOST")), str(settings.get("PORT")), str(name))


def _refuse_non_test_names() -> None:
    """Refuse to start when a test database name would be any alias's real database."""
    real: dict[tuple[str, ...], str] = {}
    for alias in connections:
        connection = connections[alias]
        name = connection.settings_dict["NAME"]
        if name and not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
            real.setdefault(_database_key(connection, name), alias)
    for alias in connections:
        connection = connections[alias]
        test = connection.creation._get_test_db_name()
        if connection.vendor == "sqlite" and connection.creation.is_in_memory_db(test):
            continue
        owner = real.get(_database_key(connection, test))
        if owner is None:
            continue
        whose = "its NAME" if owner == alias else f"the NAME of alias {owner!r}"
        raise CommandError(
            f"database alias {alias!r}: its test database name {test!r} is the same as "
            f"{whose}; runfireserver never serves a non-test database. Set "
            f"DATABASES[{alias!r}]['TEST']['NAME'] to a name no alias uses."
        )


@dataclass
class ServedDatabases:
    """What `create_test_databases` made: Django's teardown data and the claims held."""

    old_config: list[tuple[Any, str, bool]]
    claims: Claims


def ensure_test_databases(expected_names: dict[str, str]) -> None:
    """Raise `CommandError` unless every alias now points at its test database."""
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


def create_test_databases(
    *, keepdb: bool, verbosity: int, suffix: str | None = None
) -> ServedDatabases:
    """Claim, then create (or with `keepdb` reuse) every alias's test database, migrated.

    Raises `CommandError` before touching any database when a test database name is a
    real database's, or when another fire server holds one of the test databases.
    """
    if suffix:
        _apply_suffix(suffix)
    _refuse_non_test_names()
    claims = claim_test_databases()
    try:
        expected = {alias: connections[alias].creation._get_test_db_name() for alias in connections}
        old_config = setup_databases(
            verbosity, interactive=False, keepdb=keepdb, serialized_aliases=set()
        )
        databases = ServedDatabases(old_config, claims)
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


def destroy_test_databases(databases: ServedDatabases, *, verbosity: int) -> None:
    """Drop the test databases (not called with --keepdb), then let go of their claims."""
    connections.close_all()
    try:
        teardown_databases(databases.old_config, verbosity=verbosity)
    finally:
        databases.claims.release()


class SharedConnections:
    """One connection per alias for every thread, and the lock that serializes their use."""

    def __init__(self, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.lock = ConnectionLock(lock_timeout)
        self.aliases = list(connections)
        self.by_alias = {alias: connections[alias] for alias in self.aliases}
        for connection in self.by_alias.values():
            connection.inc_thread_sharing()
        # Inside the test transaction these would close the connection and end it.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)

    def in_transaction(self) -> bool:
        """Whether a test scope's transaction is open (the first alias tells for all)."""
        return self.by_alias[self.aliases[0]].in_atomic_block

    def vendors(self) -> dict[str, str]:
        return {alias: conn.vendor for alias, conn in self.by_alias.items()}

    def close(self) -> None:
        for connection in self.by_alias.values():
            connection.dec_thread_sharing()
