"""Row changes inside a test's transaction, captured by triggers before the rollback.

What a failing full-system test wrote, on each service, is what its developer needs
first; the rollback throws it away. Row-level triggers see every change whatever made
it (the ORM, ``QuerySet.update()``, bulk operations, raw SQL, views, ``on_commit``
callbacks, the database's own triggers), and they write into a temporary table *inside*
the test's transaction, so a change undone by a rolled-back savepoint (a failing call,
a 5xx view) vanishes from the capture too, and the final rollback removes the rest.

- PostgreSQL: one trigger function, and a trigger on every table it may watch (every
  schema but the system's), installed in the test database when the server starts. The
  function returns at once unless the transaction set ``djfire.capture`` (``SET
  LOCAL``, undone by the rollback) and the session has the temporary table.
- SQLite: temporary triggers on every table of the connection, guarded by a row in a
  temporary switch table that the test inserts (and the rollback removes).
- Other backends: no capture; the report says so.

Capture watches what it can and skips the rest, per table, with a reason (virtual
tables and their shadow tables, views, materialized views, tables the user may not put
a trigger on, a trigger the database refused): the report names them, and a test that
wrote into one is told so where the database can tell (`_Sqlite` marks writes to a
virtual table's shadow tables, `_Postgres` compares the transaction's row counters).
Nothing about the capture stops a server from starting: a capture that cannot be
installed at all is turned off, with the reason.

Capture is switched on per test scope (``begin_scope(data_changes=True)``); a scope
without it pays nothing but the guard, once per written row.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, models, transaction
from django.db.backends.signals import connection_created
from django.utils import timezone

from .savepoints import savepoints_opened

__all__ = ["ChangeCapture", "net_changes"]

log = logging.getLogger("djfire.changes")

#: Why runfireserver --no-data-changes has no capture.
OFF_BY_OPTION = "off (runfireserver --no-data-changes)"
OFF_NO_BACKEND = "off (no database here can be captured)"

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION djfire_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('djfire.capture', true) IS DISTINCT FROM 'on'
     OR to_regclass('pg_temp.djfire_changes') IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO pg_temp.djfire_changes(tbl, op, old, new) VALUES
    (COALESCE(TG_ARGV[0], TG_TABLE_NAME), TG_OP,
     CASE WHEN TG_OP <> 'INSERT' THEN to_json(OLD) END,
     CASE WHEN TG_OP <> 'DELETE' THEN to_json(NEW) END);
  RETURN NULL;
END $$
"""
_PG_TEMP_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS djfire_changes "
    "(seq bigserial PRIMARY KEY, tbl text, op text, old json, new json)"
)
# Every relation of every schema but the system's; partitions are watched through
# their partitioned table (whose trigger PostgreSQL clones onto each of them).
_PG_RELATIONS = r"""
SELECT c.oid, n.nspname, c.relname, c.relkind,
       pg_catalog.pg_table_is_visible(c.oid),
       pg_catalog.has_table_privilege(c.oid, 'TRIGGER'),
       pg_catalog.pg_get_userbyid(c.relowner)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY n.nspname, c.relname
"""
_PG_PRIMARY_KEYS = """
SELECT i.indrelid, a.attname FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indisprimary ORDER BY i.indrelid, array_position(i.indkey::int2[], a.attnum)
"""
_PG_BINARY_COLUMNS = """
SELECT a.attrelid, a.attname FROM pg_catalog.pg_attribute a
WHERE a.atttypid = 'bytea'::regtype AND a.attnum > 0 AND NOT a.attisdropped
"""
_PG_WRITTEN = """
SELECT relid, n_tup_ins + n_tup_upd + n_tup_del FROM pg_catalog.pg_stat_xact_all_tables
WHERE relid = ANY(%s)
"""
_SQLITE_TEMP_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS djfire_capture (capturing integer)",
    "CREATE TEMP TABLE IF NOT EXISTS djfire_changes "
    "(seq integer PRIMARY KEY, tbl text, op text, old text, new text)",
    "CREATE TEMP TABLE IF NOT EXISTS djfire_written (tbl text PRIMARY KEY)",
)
#: The shadow tables of SQLite's own virtual table modules (for SQLite < 3.37,
#: whose ``PRAGMA table_list`` does not tell them).
_SHADOW_SUFFIXES = (
    "_data", "_idx", "_content", "_docsize", "_config",  # FTS5 (FTS3/4: _segments…)
    "_segments", "_segdir", "_stat", "_node", "_parent", "_rowid",  # FTS3/4, R*Tree
)  # fmt: skip
#: SQLite functions take at most 127 arguments: a row is built 63 columns at a time.
_SQLITE_COLUMNS_PER_CALL = 63
_OPERATIONS = {"INSERT": "i", "UPDATE": "u", "DELETE": "d"}

Row = dict[str, Any]
Change = tuple[str, str, Row | None, Row | None]


class _Backend:
    """How one database vendor installs, switches and reads the capture."""

    def __init__(self, connection: Any, fields: dict[str, dict[str, Any]]) -> None:
        self.connection = connection
        self.fields = fields  # table -> column -> model field (where a model has it)
        self.tables: dict[str, list[str]] = {}  # watched table -> primary key columns
        self.skipped: dict[str, str] = {}  # table -> why it is not watched

    def install(self) -> None: ...
    def install_session(self) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...

    def written_skipped(self) -> list[str]:
        """The skipped tables this test wrote to, as far as the database can tell."""
        return []

    def rows(self, *, raw: bool = False) -> list[Change]:
        """The captured rows, in order. `raw` reads through the DB-API connection,
        past Django's execute wrappers: a read of the capture's own temporary table,
        which then opens no per-request savepoint on an alias the request never uses."""
        return self.decoded(self.fetch(raw=raw))

    def fetch(self, *, raw: bool = False) -> list[Any]:
        """The captured rows as the driver returns them (`decoded` makes them `rows`)."""
        cursor = self.connection.connection.cursor() if raw else self.connection.cursor()
        with contextlib.closing(cursor):
            cursor.execute("SELECT tbl, op, old, new FROM djfire_changes ORDER BY seq")
            return list(cursor.fetchall())

    def decoded(self, fetched: list[Any]) -> list[Change]:
        return [
            (table, op, self._decoded(table, old), self._decoded(table, new))
            for table, op, old, new in fetched
        ]

    def _decoded(self, table: str, value: Any) -> Row | None:
        row = json.loads(value) if isinstance(value, str | bytes) else value
        return None if row is None else {c: self._value(table, c, v) for c, v in row.items()}

    def _value(self, table: str, column: str, value: Any) -> Any:
        return value

    def clear(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("DELETE FROM djfire_changes")


class _Postgres(_Backend):
    def __init__(self, connection: Any, fields: dict[str, dict[str, Any]]) -> None:
        super().__init__(connection, fields)
        self.binary: dict[str, set[str]] = {}  # table -> bytea columns
        self._counted: dict[int, str] = {}  # skipped table's oid -> name (written_skipped)
        self._baseline: dict[int, int] = {}

    def install(self) -> None:
        quote = self.connection.ops.quote_name
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            cursor.execute(_PG_FUNCTION)
            cursor.execute("SELECT current_schema()")
            function = f"{quote(cursor.fetchone()[0])}.djfire_capture"
            cursor.execute(_PG_PRIMARY_KEYS)
            keys: dict[int, list[str]] = {}
            for oid, column in cursor.fetchall():
                keys.setdefault(oid, []).append(column)
            cursor.execute(_PG_BINARY_COLUMNS)
            binary: dict[int, set[str]] = {}
            for oid, column in cursor.fetchall():
                binary.setdefault(oid, set()).add(column)
            cursor.execute(_PG_RELATIONS)
            for oid, schema, name, kind, visible, may_trigger, owner in cursor.fetchall():
                table = name if visible else f"{schema}.{name}"
                if kind in "vm":
                    self.skipped[table] = "view" if kind == "v" else "materialized view"
                    continue
                if not may_trigger:
                    self.skipped[table] = f"no TRIGGER privilege (owned by {owner})"
                    self._counted[oid] = table
                    continue
                try:
                    with transaction.atomic(using=self.connection.alias):  # a savepoint
                        cursor.execute(
                            f"CREATE OR REPLACE TRIGGER djfire_capture AFTER INSERT OR UPDATE "
                            f"OR DELETE ON {quote(schema)}.{quote(name)} FOR EACH ROW "
                            f"EXECUTE FUNCTION {function}({_sql_text_literal(table)})"
                        )
                except DatabaseError as exc:
                    self.skipped[table] = f"trigger not created: {_first_line(exc)}"
                    self._counted[oid] = table
                    continue
                self.tables[table] = keys.get(oid, [])
                if oid in binary:
                    self.binary[table] = binary[oid]
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
            self._baseline = self._written_counts(cursor)

    def _written_counts(self, cursor: Any) -> dict[int, int]:
        """The transaction's row counters of the skipped tables (none: no query)."""
        if not self._counted:
            return {}
        cursor.execute(_PG_WRITTEN, [list(self._counted)])
        return dict(cursor.fetchall())

    def written_skipped(self) -> list[str]:
        with self.connection.cursor() as cursor:
            now = self._written_counts(cursor)
        return [
            self._counted[oid]
            for oid, count in now.items()
            if count > self._baseline.get(oid, 0) and oid in self._counted
        ]

    def stop(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("RESET djfire.capture")
        self.clear()

    def _value(self, table: str, column: str, value: Any) -> Any:
        """bytea reads ``"\\x0102"`` in JSON: bytes again."""
        if (
            isinstance(value, str)
            and value.startswith("\\x")
            and column in self.binary.get(table, ())
        ):
            return bytes.fromhex(value[2:])
        return value


class _Sqlite(_Backend):
    def __init__(self, connection: Any, fields: dict[str, dict[str, Any]]) -> None:
        super().__init__(connection, fields)
        self.columns: dict[str, list[str]] = {}  # watched table -> its columns
        self.shadows: dict[str, str] = {}  # shadow table -> its virtual table
        #: Tables whose capture triggers SQLite refused: a write marker there, if it can.
        self.refused: dict[str, str] = {}  # table -> the database's message

    def install(self) -> None:
        with self.connection.cursor() as cursor:
            for table, kind in _sqlite_tables(cursor):
                if table.startswith("sqlite_"):
                    continue  # SQLite's own
                if kind == "view":
                    self.skipped[table] = "view"
                elif kind == "virtual":
                    self.skipped[table] = "virtual table"
                elif kind == "shadow":
                    self.shadows[table] = ""
                else:
                    cursor.execute(
                        f"PRAGMA main.table_info({self.connection.ops.quote_name(table)})"
                    )
                    info = cursor.fetchall()
                    self.columns[table] = [row[1] for row in info]
                    self.tables[table] = [
                        row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]
                    ]
            virtual = sorted((t for t, r in self.skipped.items() if r == "virtual table"), key=len)
            for shadow in self.shadows:
                owner = next((v for v in reversed(virtual) if shadow.startswith(f"{v}_")), "?")
                self.shadows[shadow] = owner
                self.skipped[shadow] = f"shadow table of the virtual table {owner}"
        self.install_session()

    def install_session(self) -> None:
        with self.connection.cursor() as cursor:
            for statement in _SQLITE_TEMP_TABLES:
                cursor.execute(statement)
        for table in list(self.tables):
            try:
                self._create_triggers(table, self._capture_statements(table), "c")
            except DatabaseError as exc:
                del self.tables[table]
                self.refused[table] = f"trigger not created: {_first_line(exc)}"
        # A write marker is a much simpler trigger than the capture's (no JSON, depth 1):
        # on a table whose capture trigger was refused (a lowered SQLite limit, say) it
        # usually is not, and a test that wrote there is told, as row counters tell it
        # on PostgreSQL. A write to a shadow table is a write to its virtual table.
        for table, reason in self.refused.items():
            if self._create_marker(table, table):
                self.skipped[table] = reason
            else:
                self.skipped[table] = f"{reason}; writes to it cannot be told either"
        for shadow, owner in self.shadows.items():
            self._create_marker(shadow, owner)

    def _create_marker(self, table: str, written: str) -> bool:
        """Triggers on `table` that note a write to `written` (for `written_skipped`)."""
        statement = f"INSERT OR IGNORE INTO djfire_written VALUES ('{_sql_text(written)}')"
        try:
            self._create_triggers(table, dict.fromkeys(_OPERATIONS, statement), "w")
        except DatabaseError as exc:  # the report then cannot tell writes there
            log.warning("no write marker on %s: %s", table, exc)
            return False
        return True

    def _capture_statements(self, table: str) -> dict[str, str]:
        quote = self.connection.ops.quote_name
        fields = self.fields.get(table, {})
        json_columns = {c for c, f in fields.items() if isinstance(f, models.JSONField)}
        columns = self.columns[table]
        statements = {}
        for operation in _OPERATIONS:
            old = (
                _sqlite_row("OLD", columns, json_columns, quote)
                if operation != "INSERT"
                else "NULL"
            )
            new = (
                _sqlite_row("NEW", columns, json_columns, quote)
                if operation != "DELETE"
                else "NULL"
            )
            statements[operation] = (
                f"INSERT INTO djfire_changes (tbl, op, old, new) VALUES "
                f"('{_sql_text(table)}', '{operation}', {old}, {new})"
            )
        return statements

    def _create_triggers(self, table: str, statements: dict[str, str], kind: str) -> None:
        """A temporary trigger per operation on `table`; none if one fails.

        Named ``djfire_{kind}_{table}_{operation}``: `kind` (``c`` capture, ``w`` write
        marker) keeps the two kinds' names apart whatever the tables are called.
        """
        quote = self.connection.ops.quote_name
        names = [quote(f"djfire_{kind}_{table}_{_OPERATIONS[op]}") for op in statements]
        with self.connection.cursor() as cursor:
            try:
                for name, (operation, statement) in zip(names, statements.items(), strict=True):
                    cursor.execute(f"DROP TRIGGER IF EXISTS temp.{name}")
                    cursor.execute(
                        f"CREATE TEMP TRIGGER {name} AFTER {operation} ON main.{quote(table)} "
                        f"WHEN EXISTS (SELECT 1 FROM temp.djfire_capture) "
                        f"BEGIN {statement}; END"
                    )
            except DatabaseError:
                for name in names:
                    cursor.execute(f"DROP TRIGGER IF EXISTS temp.{name}")
                raise

    def start(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("INSERT INTO temp.djfire_capture VALUES (1)")

    def stop(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("DELETE FROM temp.djfire_capture")
            cursor.execute("DELETE FROM temp.djfire_written")
        self.clear()

    def written_skipped(self) -> list[str]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT tbl FROM temp.djfire_written")
            return [row[0] for row in cursor.fetchall()]

    def _value(self, table: str, column: str, value: Any) -> Any:
        """A blob was captured as ``[hex]`` (no other SQLite value makes a JSON array)."""
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            field = self.fields.get(table, {}).get(column)
            if not isinstance(field, models.JSONField):
                return bytes.fromhex(value[0])
        return value


def _sqlite_tables(cursor: Any) -> list[tuple[str, str]]:
    """(name, kind) of the main schema's tables; kind: table, view, virtual or shadow."""
    cursor.execute("PRAGMA main.table_list")  # SQLite < 3.37 ignores it: no rows
    listed = sorted((row[1], row[2]) for row in cursor.fetchall())
    if listed:
        return listed
    # Before 3.37: virtual tables by their SQL, shadow tables by their names.
    cursor.execute("SELECT name, type, sql FROM main.sqlite_master WHERE type IN ('table', 'view')")
    found = cursor.fetchall()
    virtual = [name for name, _, sql in found if (sql or "").upper().startswith("CREATE VIRTUAL")]
    tables = []
    for name, kind, _ in found:
        if name in virtual:
            kind = "virtual"
        elif any(name == v + suffix for v in virtual for suffix in _SHADOW_SUFFIXES):
            kind = "shadow"
        tables.append((name, kind))
    return sorted(tables)


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _sql_text_literal(text: str) -> str:
    return f"'{_sql_text(text)}'"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _sqlite_row(
    which: str, columns: list[str], json_columns: set[str], quote: Callable[[str], str]
) -> str:
    """The JSON object of a trigger's OLD or NEW row.

    A blob becomes ``[hex]`` (JSON holds no blob; no other SQLite value makes an array),
    a JSON column's valid JSON its value, not its text. Built 63 columns per call
    (``json_object``, then ``json_set``): a function takes at most 127 arguments.
    """
    values = []
    for column in columns:
        value = f"{which}.{quote(column)}"
        if column in json_columns:
            values.append(f"CASE WHEN json_valid({value}) THEN json({value}) ELSE {value} END")
        else:
            values.append(
                f"CASE typeof({value}) WHEN 'blob' THEN json_array(hex({value})) ELSE {value} END"
            )
    size = _SQLITE_COLUMNS_PER_CALL
    first = ", ".join(
        f"'{_sql_text(c)}', {v}" for c, v in zip(columns[:size], values[:size], strict=True)
    )
    expression = f"json_object({first})"
    for start in range(size, len(columns), size):
        pairs = zip(columns[start : start + size], values[start : start + size], strict=True)
        more = ", ".join(f"""'$."{_sql_text(c)}"', {v}""" for c, v in pairs)
        expression = f"json_set({expression}, {more})"
    return expression


_BACKENDS: dict[str, type[_Backend]] = {"postgresql": _Postgres, "sqlite": _Sqlite}


class ChangeCapture:
    """Installs the capture on every alias, switches it per scope, reads it netted.

    `off` is None while the capture works, else why there is none (runfireserver
    ``--no-data-changes``, no database of a backend it can capture, or an install that
    failed): then nothing is installed, switched or read, and `read` says why.
    """

    def __init__(self, by_alias: dict[str, Any], *, enabled: bool = True) -> None:
        self._by_alias = by_alias
        self.off: str | None = None if enabled else OFF_BY_OPTION
        self._fields = _fields_by_column() if enabled else {}
        self._backends = {
            alias: _BACKENDS[conn.vendor](conn, self._fields)
            for alias, conn in by_alias.items()
            if conn.vendor in _BACKENDS and enabled
        }
        if self.off is None and not self._backends:
            self.off = OFF_NO_BACKEND  # e.g. a MySQL-only service: said as any other off
        #: Each alias's count of call and request savepoints when the capture started
        #: (`djfire.savepoints.savepoints_opened`): `read` skips an alias none opened since.
        self._opened_at_start: dict[str, int] = {}

    def install(self) -> None:
        """Put the triggers in place (once, when the server has its test databases).

        Never raises: a table that cannot be watched is skipped (`skipped`), and a
        failure of the whole install turns the capture off, logged with its reason.
        """
        if self.off is not None:
            return
        try:
            for backend in self._backends.values():
                backend.install()
        except Exception as exc:
            log.exception("the data-change capture could not be installed: it is off")
            self.off = f"off (could not be installed: {_first_line(exc)})"
            return
        connection_created.connect(self._reconnected, weak=False)

    def _reconnected(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        """A reconnected shared connection lost its temporary tables: make them again."""
        for backend in self._backends.values():
            if backend.connection is connection and self.off is None:
                try:
                    backend.install_session()
                except Exception as exc:
                    log.exception("the data-change capture could not be reinstalled: it is off")
                    self.off = f"off (could not be reinstalled: {_first_line(exc)})"

    def skipped(self) -> dict[str, dict[str, str]]:
        """Alias -> table -> why the capture does not watch it."""
        return {alias: dict(backend.skipped) for alias, backend in self._backends.items()}

    def summary(self) -> str:
        """``212 tables watched, 4 skipped``, or why the capture is off (the ready line)."""
        if self.off is not None:
            return self.off
        watched = sum(len(backend.tables) for backend in self._backends.values())
        skipped = sum(len(backend.skipped) for backend in self._backends.values())
        return f"{watched} tables watched, {skipped} skipped"

    def describe(self) -> dict[str, Any]:
        """What a server's info says of its capture."""
        return {
            "off": self.off,
            "watched": {alias: len(b.tables) for alias, b in self._backends.items()},
            "skipped": self.skipped() if self.off is None else {},
        }

    def start(self) -> None:
        """Capture from now until the scope's rollback (or `stop`, after a transactional one)."""
        if self.off is not None:
            return
        for backend in self._backends.values():
            backend.start()
        self._opened_at_start = {
            alias: savepoints_opened(backend.connection)
            for alias, backend in self._backends.items()
            if backend.connection.features.uses_savepoints
        }

    def stop(self) -> None:
        """Stop a capture that no rollback ends (a transactional scope), and forget its rows."""
        self._opened_at_start = {}
        if self.off is not None:
            return
        for backend in self._backends.values():
            backend.stop()

    def forget(self) -> None:
        """Drop the changes captured so far, capturing on: a replayed contract's state
        rows are not the replay's changes (`djfire.contracts`)."""
        if self.off is not None:
            return
        for backend in self._backends.values():
            backend.clear()

    def read(self, *, tables_only: bool = False, skip_untouched: bool = False) -> dict[str, Any]:
        """The net changes so far: ``{alias: {"vendor", "tables": {table: changes},
        "skipped": {table: reason}, "written_skipped": [table, …]}}``.

        An alias whose backend cannot be captured has ``"tables": None``; with the
        capture off, every alias has, and ``"off"`` says why. `tables_only` leaves out
        ``"skipped"`` and ``"written_skipped"`` (on PostgreSQL a read of the statistics
        views) and reads past Django's execute wrappers (`_Backend.rows`): what a
        contract's state, read as each recorded request arrives, needs and no more.

        `skip_untouched` reads no rows of an alias that no call or request queried since
        the capture started (none opened its savepoint there): it has none. The caller
        says when that count is the whole story: every scope open runs its calls in
        savepoints (a scope without them, or a transactional one, counts nothing).
        """
        report: dict[str, Any] = {}
        for alias, connection in self._by_alias.items():
            backend = self._backends.get(alias)
            if self.off is not None or backend is None:
                report[alias] = {"vendor": connection.vendor, "tables": None}
                if self.off is not None:
                    report[alias]["off"] = self.off
                continue
            if skip_untouched and self._untouched(alias):
                fetched = []
            else:
                fetched = backend.fetch(raw=tables_only)
            report[alias] = {"vendor": connection.vendor, "tables": self._netted(alias, fetched)}
            if not tables_only:
                report[alias]["skipped"] = dict(backend.skipped)
                report[alias]["written_skipped"] = backend.written_skipped()
        return report

    def fetch(self, *, skip_untouched: bool = False) -> dict[str, Any]:
        """What `read(tables_only=True)` reads, as the driver returns it, for `netted` to
        make the same report of later: the query now (what the rows are at this moment),
        the decoding and netting when no request waits for them (a contract's state)."""
        fetched: dict[str, Any] = {}
        for alias, connection in self._by_alias.items():
            backend = self._backends.get(alias)
            if self.off is not None or backend is None:
                fetched[alias] = (connection.vendor, None)
            elif skip_untouched and self._untouched(alias):
                fetched[alias] = (connection.vendor, [])
            else:
                fetched[alias] = (connection.vendor, backend.fetch(raw=True))
        return fetched

    def netted(self, fetched: dict[str, Any]) -> dict[str, Any]:
        """`fetch`'s rows as `read(tables_only=True)` reports them."""
        report: dict[str, Any] = {}
        for alias, (vendor, rows) in fetched.items():
            report[alias] = {"vendor": vendor, "tables": None}
            if rows is None:
                if self.off is not None:
                    report[alias]["off"] = self.off
                continue
            report[alias]["tables"] = self._netted(alias, rows)
        return report

    def _netted(self, alias: str, fetched: list[Any]) -> dict[str, Any]:
        backend = self._backends[alias]
        tables = net_changes(backend.decoded(fetched), backend.tables)
        return {table: self._typed(table, changes) for table, changes in tables.items()}

    def _untouched(self, alias: str) -> bool:
        """Whether no call or request opened a savepoint on `alias` since the start: then
        nothing wrote there through Django, and its capture holds no rows."""
        at_start = self._opened_at_start.get(alias)
        connection = self._by_alias[alias]
        return at_start is not None and savepoints_opened(connection) == at_start

    def _typed(self, table: str, changes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Values as the model's fields read them (a Decimal, a datetime), where known."""
        fields = self._fields.get(table, {})

        def value(column: str, raw: Any) -> Any:
            field = fields.get(column)
            if field is None or raw is None or isinstance(raw, bytes):
                return raw  # bytes are decoded already (BinaryField would read base64)
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
    if isinstance(field, models.JSONField):
        return raw  # the JSON value itself (the capture keeps JSON as JSON)
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
            if field.column is not None:
                columns[field.column] = field
    return fields


def net_changes(rows: list[Change], keys: dict[str, list[str]]) -> dict[str, dict[str, list[Any]]]:
    """Net captured row changes per table and primary key, in the order rows first changed.

    Insert then update is one insert of the final values; insert then delete is nothing;
    updates show only the columns that changed, from the first old value to the last new
    one; delete then insert of the same key is an update. A table without a primary key
    counts its rows by their values: two identical rows inserted are two inserts, an
    update is a delete of the old row and an insert of the new one.
    """
    keyed: dict[str, dict[Any, list[Any]]] = {}  # table -> key -> [before, after]
    counted: dict[str, dict[str, list[Any]]] = {}  # table -> values -> [row, net count]
    order: dict[str, None] = {}
    for table, operation, old, new in rows:
        order[table] = None
        columns = keys.get(table) or []
        if not columns:
            bag = counted.setdefault(table, {})
            for row, step in ((old, -1), (new, 1)):
                if row is not None:
                    entry = bag.setdefault(_values(row), [row, 0])
                    entry[1] += step
            continue
        table_states = keyed.setdefault(table, {})
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
    for table in order:
        changes: dict[str, list[Any]] = {"inserted": [], "updated": [], "deleted": []}
        for row, count in counted.get(table, {}).values():
            changes["inserted" if count > 0 else "deleted"].extend([row] * abs(count))
        columns = keys.get(table) or []
        for before, after in keyed.get(table, {}).values():
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
                    key = {column: after.get(column) for column in columns}
                    changes["updated"].append({"key": key, "changed": changed})
        if any(changes.values()):
            result[table] = changes
    return result


def _values(value: Row | list[Any]) -> str:
    """A row, or a JSON column's object or array, as one canonical string."""
    return json.dumps(value, sort_keys=True, default=repr)


def _key(row: Row, columns: list[str]) -> Any:
    return tuple(_hashable(row.get(column)) for column in columns)


def _hashable(value: Any) -> Any:
    return _values(value) if isinstance(value, dict | list) else value


def _apply(states: dict[Any, list[Any]], key: Any, old: Row | None, new: Row | None) -> None:
    """Fold one change of a row into its [before the test, now] pair."""
    if key not in states:
        states[key] = [old, new]
    else:
        states[key][1] = new
