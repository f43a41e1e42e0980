"""Filtering and formatting a data-change report (plain data in, text out)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

from fire.runners.data_changes import exclude, format_changes, has_changes, to_json

CHANGES = {
    "default": {
        "vendor": "postgresql",
        "tables": {
            "shop_order": {
                "inserted": [
                    {"id": 17, "status": "new", "total": Decimal("9.50"), "updated_at": "t1"}
                ],
                "updated": [
                    {"key": {"id": 12}, "changed": {"status": ["new", "paid"]}},
                    {"key": {"id": 13}, "changed": {"updated_at": ["t0", "t2"]}},
                ],
                "deleted": [],
            },
            "django_session": {
                "inserted": [{"session_key": "k", "session_data": "x" * 200}],
                "updated": [],
                "deleted": [],
            },
        },
    }
}


def test_a_report_shows_counts_and_rows_per_table() -> None:
    text = format_changes(CHANGES)
    lines = text.splitlines()
    assert lines[0] == "shop_order      +1 ~2"
    assert lines[1] == "  + id=17 status='new' total=Decimal('9.50') updated_at='t1'"
    assert lines[2] == "  ~ id=12 status: 'new' -> 'paid'"
    assert lines[4] == "django_session  +1"
    assert lines[5].endswith("…") and len(lines[5]) < 110  # a long value is cut


def test_rows_beyond_the_cap_become_a_count_line() -> None:
    many = {
        "default": {
            "vendor": "sqlite",
            "tables": {
                "t": {"inserted": [{"id": n} for n in range(12)], "updated": [], "deleted": []}
            },
        }
    }
    lines = format_changes(many, rows_per_table=10).splitlines()
    assert lines[-1] == "  … 2 more (-vv shows all)"
    assert len(format_changes(many, rows_per_table=None).splitlines()) == 13


def test_tables_and_columns_can_be_excluded() -> None:
    kept = exclude(CHANGES, ["django_session", "*.updated_at"])
    tables = kept["default"]["tables"]
    assert list(tables) == ["shop_order"]
    assert tables["shop_order"]["inserted"] == [
        {"id": 17, "status": "new", "total": Decimal("9.50")}
    ]
    assert tables["shop_order"]["updated"] == [  # the update of updated_at alone is gone
        {"key": {"id": 12}, "changed": {"status": ["new", "paid"]}}
    ]
    assert not has_changes(exclude(CHANGES, ["*"]))


def test_several_aliases_and_uncapturable_backends_are_named() -> None:
    report = {**CHANGES, "legacy": {"vendor": "mysql", "tables": None}}
    text = format_changes(report)
    assert "[default] shop_order" in text
    assert "[legacy] (mysql: changes cannot be captured)" in text
    assert has_changes(report)
    assert not has_changes({"legacy": {"vendor": "mysql", "tables": None}})


def test_dates_and_times_read_in_iso_form() -> None:
    when = datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.UTC)
    table = {"inserted": [{"at": when, "day": when.date()}], "updated": [], "deleted": []}
    text = format_changes({"default": {"vendor": "sqlite", "tables": {"t": table}}})
    assert "  + at=2026-12-01 09:30:00+00:00 day=2026-12-01" in text


def test_json_keeps_every_value_readable() -> None:
    data = json.loads(to_json(CHANGES))
    assert data["default"]["tables"]["shop_order"]["inserted"][0]["total"] == "9.50"


SKIPPED = {
    "odd_note_fts": "virtual table",
    "odd_note_fts_data": "shadow table of the virtual table odd_note_fts",
    "odd_note_fts_idx": "shadow table of the virtual table odd_note_fts",
    "odd_view": "view",
}


def _database(tables: dict, written: list[str] | None = None) -> dict:
    return {
        "default": {
            "vendor": "sqlite",
            "tables": tables,
            "skipped": SKIPPED,
            "written_skipped": written or [],
        }
    }


def test_identical_rows_show_once_with_their_count() -> None:
    same, other = {"line": "a"}, {"line": "b"}
    table = {"inserted": [same, other, same], "updated": [], "deleted": [other, other]}
    lines = format_changes(_database({"log": table})).splitlines()
    assert lines[:5] == [
        "log  +3 -2",
        "  + line='a'  \u00d72",
        "  + line='b'",
        "  - line='b'  \u00d72",
        "(not watched here: odd_note_fts (virtual table), odd_view (view), 2 shadow tables)",
    ]


def test_rows_that_differ_past_the_cut_are_two_rows_not_one_counted_twice() -> None:
    start = "x" * 70  # both values are cut at the same place: their shown text is equal
    first, second = {"line": start + "a"}, {"line": start + "b"}
    updates = [
        {"key": {"id": 1}, "changed": {"line": [start + "a", "z"]}},
        {"key": {"id": 1}, "changed": {"line": [start + "b", "z"]}},
    ]
    table = {"inserted": [first, second], "updated": updates, "deleted": [first, first]}
    lines = format_changes(_database({"log": table})).splitlines()
    cut = "'" + "x" * 58 + "\u2026"  # 60 characters
    assert lines == [
        "log  +2 ~2 -2",
        f"  + line={cut}",
        f"  + line={cut}",  # shown the same, as the cut makes them: two rows, no count
        f"  ~ id=1 line: {cut} -> 'z'",
        f"  ~ id=1 line: {cut} -> 'z'",
        f"  - line={cut}  \u00d72",  # really the same row twice: counted
        "(not watched here: odd_note_fts (virtual table), odd_view (view), 2 shadow tables)",
    ]


def test_a_write_to_a_table_not_watched_is_never_a_silent_no_changes() -> None:
    changes = _database({}, written=["odd_note_fts"])
    assert has_changes(changes)
    assert format_changes(changes).splitlines() == [
        "odd_note_fts  not watched (virtual table): this test wrote to it, its rows are not shown",
        "(not watched here: odd_note_fts (virtual table), odd_view (view), 2 shadow tables)",
    ]
    assert not has_changes(_database({}))  # tables not watched, but nothing written
    assert format_changes(_database({})) == ""


def test_with_every_row_every_table_not_watched_is_named() -> None:
    text = format_changes(_database({}, written=["odd_note_fts"]), rows_per_table=None)
    assert text.splitlines()[-1] == (
        "(not watched here: odd_note_fts (virtual table), odd_note_fts_data (shadow table of "
        "the virtual table odd_note_fts), odd_note_fts_idx (shadow table of the virtual table "
        "odd_note_fts), odd_view (view))"
    )


def test_excluded_tables_leave_the_lists_of_tables_not_watched() -> None:
    kept = exclude(_database({}, written=["odd_note_fts"]), ["odd_note_fts*"])
    assert kept["default"]["skipped"] == {"odd_view": "view"}
    assert kept["default"]["written_skipped"] == []
    assert not has_changes(kept)


def test_a_server_with_capture_off_says_why() -> None:
    off = {"default": {"vendor": "postgresql", "tables": None, "off": "off (because)"}}
    assert not has_changes(off)
    assert format_changes(off) == "(postgresql: data changes off (because))"


def test_bytes_and_non_ascii_read_as_python_writes_them() -> None:
    row = {"blob": b"\x00\xff", "title": "Ünïcødé ☃"}
    text = format_changes(_database({"t": {"inserted": [row], "updated": [], "deleted": []}}))
    assert "  + blob=b'\\x00\\xff' title='Ünïcødé ☃'" in text
    assert json.loads(to_json(_database({"t": {"inserted": [row]}})))  # readable JSON
