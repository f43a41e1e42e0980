"""A test's data changes, as a server extension reports them: filter and format them.

A server extension (djfire's) may capture the rows a test changed on each database and
answer the ``data_changes`` operation with plain data::

    {alias: {"vendor": "postgresql",
             "tables": {table: {"inserted": [row, …],
                                "updated": [{"key": {…}, "changed": {column: [old, new]}}],
                                "deleted": [row, …]}},
             "skipped": {table: reason},          # tables the capture does not watch
             "written_skipped": [table, …]}}      # those of them this test wrote to

(``"tables"`` is None where the backend cannot be captured, or the capture is off: then
``"off"`` says why; ``"skipped"`` and ``"written_skipped"`` may be missing). A table
without a primary key lists each of several identical rows. The runners show it on a
failing test; this module knows nothing of Django or pytest.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError

if TYPE_CHECKING:
    from ..client.remote import Remote

__all__ = [
    "MODES",
    "collect",
    "exclude",
    "format_changes",
    "has_changes",
    "section_title",
    "to_json",
]

#: When the runners show a test's data changes: on failure (default), always, never.
MODES = ("fail", "always", "off")

#: Rows shown per table unless told otherwise (a count line stands for the rest).
DEFAULT_ROWS_PER_TABLE = 10
#: Before the count of identical rows (U+00D7, the multiplication sign).
TIMES = "\u00d7"
#: A value's repr longer than this is cut, with "…".
MAX_VALUE_LENGTH = 60

Changes = dict[str, Any]


def collect(remotes: Mapping[str, Remote], patterns: Iterable[str] = ()) -> dict[str, Changes]:
    """Server name -> its test's data changes so far (`exclude` applied), for the servers
    that capture them; servers without a capture are left out."""
    patterns = list(patterns)
    collected: dict[str, Changes] = {}
    for name, remote in remotes.items():
        try:
            changes = remote.call_extension("data_changes")
        except ProtocolError:  # "unknown operation": this server captures nothing
            continue
        collected[name] = exclude(changes, patterns) if patterns else changes
    return collected


def section_title(name: str, changes: Changes) -> str:
    """``fire data changes: shop (postgresql)``: the report section's title."""
    vendors = sorted({str(database.get("vendor")) for database in changes.values()})
    return f"fire data changes: {name} ({', '.join(vendors)})"


def exclude(changes: Changes, patterns: Iterable[str]) -> Changes:
    """`changes` without the tables or columns that `patterns` name.

    ``django_session`` (or ``shop_*``) leaves a table out; ``*.updated_at`` (or
    ``shop_order.note``) leaves a column out of every row and update of the tables that
    match; an update left with no changed column disappears.
    """
    tables_out, columns_out = [], []
    for pattern in patterns:
        table, dot, column = pattern.partition(".")
        (columns_out.append((table, column)) if dot else tables_out.append(pattern))
    result: Changes = {}
    for alias, database in changes.items():
        tables = database.get("tables")
        if tables is None:
            result[alias] = database
            continue
        kept: dict[str, Any] = {}
        for table, table_changes in tables.items():
            if _excluded(table, tables_out):
                continue
            hidden = {c for t, c in columns_out if fnmatch.fnmatchcase(table, t)}
            filtered = _without_columns(table_changes, hidden) if hidden else table_changes
            if any(filtered.values()):
                kept[table] = filtered
        result[alias] = {**database, "tables": kept}
        if "skipped" in database:
            result[alias]["skipped"] = {
                table: reason
                for table, reason in database["skipped"].items()
                if not _excluded(table, tables_out)
            }
        if "written_skipped" in database:
            result[alias]["written_skipped"] = [
                table for table in database["written_skipped"] if not _excluded(table, tables_out)
            ]
    return result


def _excluded(table: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(table, pattern) for pattern in patterns)


def _without_columns(changes: dict[str, list[Any]], hidden: set[str]) -> dict[str, list[Any]]:
    def row(values: dict[str, Any]) -> dict[str, Any]:
        return {c: v for c, v in values.items() if not _hidden(c, hidden)}

    updated = []
    for update in changes["updated"]:
        changed = {c: v for c, v in update["changed"].items() if not _hidden(c, hidden)}
        if changed:
            updated.append({**update, "changed": changed})
    return {
        "inserted": [row(r) for r in changes["inserted"]],
        "updated": updated,
        "deleted": [row(r) for r in changes["deleted"]],
    }


def _hidden(column: str, hidden: set[str]) -> bool:
    return any(fnmatch.fnmatchcase(column, pattern) for pattern in hidden)


def has_changes(changes: Changes) -> bool:
    """Whether any captured table changed, or the test wrote to a table the capture does
    not watch (an uncapturable backend is not a change)."""
    return any(
        database.get("tables") or database.get("written_skipped") for database in changes.values()
    )


def format_changes(changes: Changes, *, rows_per_table: int | None = DEFAULT_ROWS_PER_TABLE) -> str:
    """The changes as text, a block per alias and table, ``+`` inserted, ``~`` updated, ``-``
    deleted; at most `rows_per_table` rows each (None: all); identical rows (of a table
    without a primary key) once, with their count (`TIMES` and the number). A table the
    test wrote to but the capture does not watch says so (``odd_note_fts  not watched
    (virtual table)…``), and a last line per alias names the tables not watched (with
    `rows_per_table` None, every one; else shadow tables are counted, not named)."""
    lines: list[str] = []
    speaking = {alias: db for alias, db in changes.items() if _speaks(db)}
    several = len(speaking) > 1  # name the alias only where two have something to say
    for alias, database in speaking.items():
        tables = database.get("tables")
        heading = f"[{alias}] " if several else ""
        if tables is None:
            off = database.get("off")
            why = f"data changes {off}" if off else "changes cannot be captured"
            lines.append(f"{heading}({database.get('vendor')}: {why})")
            continue
        skipped = database.get("skipped") or {}
        written = database.get("written_skipped") or []
        width = max((len(table) for table in [*tables, *written]), default=0)
        for table, table_changes in tables.items():
            counts = " ".join(
                f"{sign}{len(table_changes[kind])}"
                for sign, kind in (("+", "inserted"), ("~", "updated"), ("-", "deleted"))
                if table_changes[kind]
            )
            lines.append(f"{heading}{table:<{width}}  {counts}")
            entries: list[_Entry] = [("+", _row, r) for r in table_changes["inserted"]]
            entries += [("~", _update, u) for u in table_changes["updated"]]
            entries += [("-", _row, r) for r in table_changes["deleted"]]
            grouped = _grouped(entries)
            shown = grouped if rows_per_table is None else grouped[:rows_per_table]
            for sign, text, count in shown:
                lines.append(f"  {sign} {text}" + (f"  {TIMES}{count}" if count > 1 else ""))
            if len(shown) < len(grouped):
                lines.append(f"  … {len(grouped) - len(shown)} more (-vv shows all)")
        for table in written:
            why = skipped.get(table, "not watched")
            lines.append(
                f"{heading}{table:<{width}}  not watched ({why}): this test wrote to it, "
                "its rows are not shown"
            )
        if skipped and (tables or written):
            lines.append(f"{heading}{_not_watched(skipped, every=rows_per_table is None)}")
    return "\n".join(lines)


def _speaks(database: dict[str, Any]) -> bool:
    return database.get("tables") != {} or bool(database.get("written_skipped"))


#: A row to show: its sign (+ ~ -), what renders it (`_row`, `_update`), its values.
_Entry = tuple[str, Callable[..., str], Any]


def _grouped(entries: list[_Entry]) -> list[tuple[str, str, int]]:
    """Identical entries (rows of a table without a primary key) once, with their count.

    Entries are the same when their values are, in full: the shown text cuts long values,
    and two rows that differ only past the cut are two rows, not one counted twice.
    """
    counts: dict[tuple[str, str], list[Any]] = {}
    for sign, render, values in entries:
        full = render(values, limit=None)
        if (sign, full) in counts:
            counts[sign, full][1] += 1
        else:
            counts[sign, full] = [render(values), 1]
    return [(sign, text, count) for (sign, _full), (text, count) in counts.items()]


def _not_watched(skipped: dict[str, str], *, every: bool) -> str:
    """``(not watched here: odd_note_fts (virtual table), odd_view (view), 5 shadow tables)``."""
    shadows = [t for t, why in skipped.items() if why.startswith("shadow table")]
    named = [f"{t} ({why})" for t, why in skipped.items() if every or t not in shadows]
    if shadows and not every:
        named.append(f"{len(shadows)} shadow table{'s' if len(shadows) > 1 else ''}")
    return f"(not watched here: {', '.join(named)})"


def _value(value: Any, limit: int | None = MAX_VALUE_LENGTH) -> str:
    """A value as Python would write it, but dates and times in ISO form (shorter); cut
    at `limit` characters (None: whole)."""
    if isinstance(value, datetime.datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, datetime.date | datetime.time):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _row(values: dict[str, Any], limit: int | None = MAX_VALUE_LENGTH) -> str:
    return " ".join(f"{column}={_value(value, limit)}" for column, value in values.items())


def _update(update: dict[str, Any], limit: int | None = MAX_VALUE_LENGTH) -> str:
    key = _row(update["key"], limit)
    changed = " ".join(
        f"{column}: {_value(old, limit)} -> {_value(new, limit)}"
        for column, (old, new) in update["changed"].items()
    )
    return f"{key} {changed}"


def to_json(changes: Changes) -> str:
    """The changes as JSON (for JUnit XML properties): non-JSON values as their str()."""
    return json.dumps(changes, default=str, sort_keys=True)
