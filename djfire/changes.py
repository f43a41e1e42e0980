"""Row changes inside a test's transaction, captured by triggers before the rollback.

What a failing full-system test wrote, on each service, is what its developer needs
first; the rollback throws it away. Row-level triggers see every change whatever made
it (the ORM, ``QuerySet.update()``, bulk operations, raw SQL, views, ``on_commit``
callbacks, the database's own triggers), and they write into a temporary table *inside*
the test's transaction, so a change undone by a rolled-back savepoint (a failing call,
a 5xx view) vanishes from the capture too, and the final rollback removes the rest.

- PostgreSQL: one trigger function, and a trigger on every table, installed in the test
  database when the server starts. The function returns at once unless the transaction
  set ``djfire.capture`` (``SET LOCAL``, undone by the rollback) and the session has the
  temporary table.
- SQLite: temporary triggers on every table of the connection, guarded by a row in a
  temporary switch table that the test inserts (and the rollback removes).
- Other backends: no capture; the report says so.

Capture is switched on per test scope (``begin_scope(data_changes=True)``); a scope
without it pays nothing but the guard, once per written row.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.backends.signals import connection_created
from django.utils import timezone

__all__ = ["ChangeCapture"]

log = logging.getLogger("djfire.changes")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION djfire_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('djfire.capture', true) IS DISTINCT FROM 'on'
     OR to_regclass('pg_temp.djfire_changes') IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO pg_temp.djfire_changes(tbl, op, old, new) VALUES (TG_TABLE_NAME, TG_OP,
    CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
    CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $$
"""
_PG_TEMP_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS djfire_changes "
    "(seq bigserial PRIMARY KEY, tbl text, op text, old jsonb, new jsonb)"
)
_SQLITE_TEMP_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS djfire_capture (capturing integer)",
    "CREATE TEMP TABLE IF NOT EXISTS djfire_changes "
    "(seq integer PRIMARY KEY, tbl text, op text, old text, new text)",
)
_OPERATIONS = {"INSERT": "i", "UPDATE": "u", "DELETE": "d"}

Row = dict[str, Any]


class _Backend:
    """How one database vendor installs, switches and reads the capture."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.tables: dict[str, list[str]] = {}  # table -> primary key columns

    def _read_tables(self, cursor: Any) -> None:
        introspection = self.connection.introspection
        self.tables = {
            table: list(introspection.get_primary_key_columns(cursor, table) or [])
            for table in introspection.table_names(cursor)
        }

    def install(self) -> None: ...
    def install_session(self) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...

    def rows(self) -> list[tuple[str, str, Row | None, Row | None]]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT tbl, op, old, new FROM djfire_changes ORDER BY seq")
            return [(t, op, _json(old), _json(new)) for t, op, old, new in cursor.fetchall()]

    def clear(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("DELETE FROM djfire_changes")


def _json(value: Any) -> Row | None:
    return json.loads(value) if isinstance(value, str | bytes) else value


class _Postgres(_Backend):
    def install(self) -> None:
        quote = self.connection.ops.quote_name
        with self.connection.cursor() as cursor:
            self._read_tables(cursor)
            cursor.execute(_PG_FUNCTION)
            for table in self.tables:
                cursor.execute(f"DROP TRIGGER IF EXISTS djfire_capture ON {quote(table)}")
                cursor.execute(
                    f"CREATE TRIGGER djfire_capture AFTER INSERT OR UPDATE OR DELETE ON "
                    f"{quote(table)} FOR EACH ROW EXECUTE FUNCTION djfire_capture()"
                )
        self.install_session()

    def install_session(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(_PG_TEMP_TABLE)

    def start(self) -> None:
        with self.connection.cursor() as cursor:
            if self.connection.in_atomic_block:
                cursor.execute("SET LOCAL djfire.capture = 'on'")
            else:  # a transactional scope: until `stop`
                cursor.execute("SET djfire.capture = 'on'")

    def stop(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("RESET djfire.capture")
        self.clear()


class _Sqlite(_Backend):
    def install(self) -> None:
        with self.connection.cursor() as cursor:
            self._read_tables(cursor)
        self.install_session()

    def install_session(self) -> None:
        quote = self.connection.ops.quote_name
        with self.connection.cursor() as cursor:
            for statement in _SQLITE_TEMP_TABLES:
                cursor.execute(statement)
            for table in self.tables:
                cursor.execute(f"PRAGMA table_info({quote(table)})")
                columns = [row[1] for row in cursor.fetchall()]
                for operation, suffix in _OPERATIONS.items():
                    old = _sqlite_row("OLD", columns, quote) if operation != "INSERT" else "NULL"
                    new = _sqlite_row("NEW", columns, quote) if operation != "DELETE" else "NULL"
                    trigger = quote(f"djfire_{table}_{suffix}")
                    cursor.execute(
                        f"CREATE TEMP TRIGGER IF NOT EXISTS {trigger} AFTER {operation} ON "
                        f"main.{quote(table)} WHEN EXISTS (SELECT 1 FROM temp.djfire_capture) "
                        f"BEGIN INSERT INTO djfire_changes (tbl, op, old, new) VALUES "
                        f"('{_sql_text(table)}', '{operation}', {old}, {new}); END"
                    )

    def start(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("INSERT INTO temp.djfire_capture VALUES (1)")

    def stop(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("DELETE FROM temp.djfire_capture")
        self.clear()


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _sqlite_row(which: str, columns: list[str], quote: Callable[[str], str]) -> str:
    """``json_object(...)`` of a trigger's OLD or NEW row; blobs as hex (JSON holds no blob)."""
    pairs = []
    for column in columns:
        value = f"{which}.{quote(column)}"
        pairs.append(
            f"'{_sql_text(column)}', "
            f"CASE typeof({value}) WHEN 'blob' THEN hex({value}) ELSE {value} END"
        )
    return f"json_object({', '.join(pairs)})"


_BACKENDS: dict[str, type[_Backend]] = {"postgresql": _Postgres, "sqlite": _Sqlite}


class ChangeCapture:
    """Installs the capture on every alias, switches it per scope, reads it netted."""

    def __init__(self, by_alias: dict[str, Any]) -> None:
        self._by_alias = by_alias
        self._backends = {
            alias: _BACKENDS[conn.vendor](conn)
            for alias, conn in by_alias.items()
            if conn.vendor in _BACKENDS
        }
        self._fields = _fields_by_column()

    def vendors(self) -> dict[str, str]:
        return {alias: conn.vendor for alias, conn in self._by_alias.items()}

    def install(self) -> None:
        """Put the triggers in place (once, when the server has its test databases)."""
        for backend in self._backends.values():
            backend.install()
        connection_created.connect(self._reconnected, weak=False)

    def _reconnected(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        """A reconnected shared connection lost its temporary tables: make them again."""
        for backend in self._backends.values():
            if backend.connection is connection:
                backend.install_session()

    def start(self) -> None:
        """Capture from now until the scope's rollback (or `stop`, after a transactional one)."""
        for backend in self._backends.values():
            backend.start()

    def stop(self) -> None:
        """Stop a capture that no rollback ends (a transactional scope), and forget its rows."""
        for backend in self._backends.values():
            backend.stop()

    def read(self) -> dict[str, Any]:
        """The net changes so far: ``{alias: {"vendor", "tables": {table: changes}}}``.

        An alias whose backend cannot be captured has ``"tables": None``.
        """
        report: dict[str, Any] = {}
        for alias, connection in self._by_alias.items():
            backend = self._backends.get(alias)
            if backend is None:
                report[alias] = {"vendor": connection.vendor, "tables": None}
                continue
            tables = net_changes(backend.rows(), backend.tables)
            report[alias] = {
                "vendor": connection.vendor,
                "tables": {table: self._typed(table, changes) for table, changes in tables.items()},
            }
        return report

    def _typed(self, table: str, changes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Values as the model's fields read them (a Decimal, a datetime), where known."""
        fields = self._fields.get(table, {})

        def value(column: str, raw: Any) -> Any:
            field = fields.get(column)
            if field is None or raw is None:
                return raw
            try:
                return _as_field_reads(field, raw)
            except Exception:
                return raw

        def row(values: Row) -> Row:
            return {column: value(column, raw) for column, raw in values.items()}

        return {
            "inserted": [row(r) for r in changes["inserted"]],
            "updated": [
                {
                    "key": row(update["key"]),
                    "changed": {
                        column: [value(column, old), value(column, new)]
                        for column, (old, new) in update["changed"].items()
                    },
                }
                for update in changes["updated"]
            ],
            "deleted": [row(r) for r in changes["deleted"]],
        }


def _as_field_reads(field: Any, raw: Any) -> Any:
    """`raw` (from JSON) as the model field would read it from the database."""
    value = field.to_python(raw)
    if isinstance(field, models.DecimalField) and field.decimal_places is not None:
        value = value.quantize(Decimal(1).scaleb(-field.decimal_places))
    elif isinstance(field, models.DateTimeField) and settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.UTC)  # stored in UTC, as Django does
    return value


def _fields_by_column() -> dict[str, dict[str, Any]]:
    fields: dict[str, dict[str, Any]] = {}
    for model in apps.get_models(include_auto_created=True):
        columns = fields.setdefault(model._meta.db_table, {})
        for field in model._meta.concrete_fields:
            columns[field.column] = field
    return fields


def net_changes(
    rows: list[tuple[str, str, Row | None, Row | None]], keys: dict[str, list[str]]
) -> dict[str, dict[str, list[Any]]]:
    """Net captured row changes per table and primary key, in the order rows first changed.

    Insert then update is one insert of the final values; insert then delete is nothing;
    updates show only the columns that changed, from the first old value to the last new
    one; delete then insert of the same key is an update. A table without a primary key
    keys its rows by all their values.
    """
    states: dict[str, dict[Any, list[Any]]] = {}  # table -> key -> [before, after]
    for table, operation, old, new in rows:
        columns = keys.get(table) or []
        table_states = states.setdefault(table, {})
        if operation == "UPDATE" and old is not None and new is not None:
            old_key, new_key = _key(old, columns), _key(new, columns)
            if old_key != new_key:  # the key itself changed: a delete and an insert
                _apply(table_states, old_key, old, None)
                _apply(table_states, new_key, None, new)
                continue
        row = old if old is not None else new
        assert row is not None
        _apply(table_states, _key(row, columns), old, new)
    result: dict[str, dict[str, list[Any]]] = {}
    for table, table_states in states.items():
        changes: dict[str, list[Any]] = {"inserted": [], "updated": [], "deleted": []}
        columns = keys.get(table) or []
        for before, after in table_states.values():
            if before is None and after is not None:
                changes["inserted"].append(after)
            elif before is not None and after is None:
                changes["deleted"].append(before)
            elif before is not None and after is not None:
                changed = {
                    column: [before.get(column), value]
                    for column, value in after.items()
                    if before.get(column) != value
                }
                if changed:
                    key = {column: after.get(column) for column in columns} or before
                    changes["updated"].append({"key": key, "changed": changed})
        if any(changes.values()):
            result[table] = changes
    return result


def _key(row: Row, columns: list[str]) -> Any:
    if columns:
        return tuple(row.get(column) for column in columns)
    return json.dumps(row, sort_keys=True, default=str)


def _apply(states: dict[Any, list[Any]], key: Any, old: Row | None, new: Row | None) -> None:
    """Fold one change of a row into its [before the test, now] pair."""
    if key not in states:
        states[key] = [old, new]
    else:
        states[key][1] = new
