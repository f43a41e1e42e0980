"""The data-change capture: every kind of write appears, netted; rolled-back ones do not."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import requests

import fire
from djfire import DjangoRemote
from djfire.changes import net_changes


def _tables(dj: DjangoRemote, alias: str = "default") -> dict[str, Any]:
    return dj.data_changes()[alias]["tables"]


def test_every_kind_of_write_appears_and_rolled_back_ones_do_not(
    shop: fire.Remote, dj: DjangoRemote
):
    with shop.scope("class"):  # data made before the test: not among its changes
        kept = shop.module("shop.factories").ProductFactory(name="kept", price="1.00")
        _check_test_changes(shop, dj, kept.id)


def _check_test_changes(shop: fire.Remote, dj: DjangoRemote, kept_id: int) -> None:
    models = shop.module("shop.models")
    factories = shop.module("shop.factories")
    db = shop.module("django.db")
    with shop.scope(data_changes=True):
        product = factories.ProductFactory(name="lamp", price="9.50")  # the ORM
        models.Product.objects.filter(id=product.id).update(price="7.25")  # QuerySet.update
        models.Category.objects.bulk_create([models.Category(name="a"), models.Category(name="b")])
        models.Category.objects.filter(name="b").delete()  # inserted then deleted: nothing
        db.connection.cursor().execute(  # raw SQL
            "UPDATE shop_product SET name = 'renamed' WHERE name = 'kept'"
        )
        made = requests.post(dj.live_url + "/products/create/", json={"name": "http"}, timeout=30)
        assert made.status_code == 201  # a view
        shop.module("shop.tasks").create_on_commit("from a callback")  # on_commit
        assert requests.post(dj.live_url + "/products/fail/", timeout=30).status_code == 500
        with pytest.raises(shop.exception("django.db.utils.IntegrityError")):
            factories.CategoryFactory(name="a")  # a failing call: rolled back, not shown
        models.AuditEntry.objects.using("other").create(message="other alias")

        tables = _tables(dj)
        products = tables["shop_product"]
        inserted = {row["name"]: row for row in products["inserted"]}
        assert sorted(inserted) == ["http", "lamp"]  # not the failing view's row
        assert inserted["lamp"]["price"] == Decimal("7.25")  # insert + update: final values
        assert products["updated"] == [
            {"key": {"id": kept_id}, "changed": {"name": ["kept", "renamed"]}}
        ]
        assert products["deleted"] == []
        categories = [row["name"] for row in tables["shop_category"]["inserted"]]
        assert {"a", "from a callback"} <= set(categories)  # (the factory made one more)
        assert "b" not in categories
        other = _tables(dj, "other")
        assert [row["message"] for row in other["shop_auditentry"]["inserted"]] == ["other alias"]
        assert dj.data_changes()["default"]["vendor"] in ("sqlite", "postgresql")
    with shop.scope(data_changes=True):
        assert _tables(dj) == {}  # nothing is left from the last test
        models.Product.objects.all().delete()
        assert [row["name"] for row in _tables(dj)["shop_product"]["deleted"]] == ["kept"]


def test_changes_are_captured_only_when_asked(shop: fire.Remote, dj: DjangoRemote):
    with shop.scope():
        shop.module("shop.factories").ProductFactory()
        with pytest.raises(fire.FireError, match="data_changes=True"):
            dj.data_changes()
    assert shop.info()["extensions"]["scopes"]["data_changes"] is True


def test_a_transactional_scope_captures_too_and_forgets_at_its_end(
    shop: fire.Remote, dj: DjangoRemote
):
    with shop.scope(transactional=True, data_changes=True):
        shop.module("shop.factories").ProductFactory(name="committed")
        assert [r["name"] for r in _tables(dj)["shop_product"]["inserted"]] == ["committed"]
    with shop.scope(data_changes=True):
        assert _tables(dj) == {}


def test_an_alias_no_call_queried_is_not_read_and_one_queried_is(
    shop: fire.Remote, dj: DjangoRemote
):
    # A contract's state is read on every recorded request: an alias that no call or
    # request of the test queried has no rows, and its read is skipped.
    other = shop.module("django.db").connections["other"]
    if other.vendor != "sqlite":
        pytest.skip("the statements are seen through SQLite's trace callback")
    seen = shop.module("collections").deque()  # stays in the service: a proxy
    statements = shop.module("builtins").list  # its contents, as a local list
    with shop.scope(data_changes=True):
        shop.module("shop.factories").ProductFactory(name="lamp")  # 'default' only
        other.connection.set_trace_callback(seen.append)
        try:
            changes = dj.data_changes()
            assert changes["other"]["tables"] == {}
            assert "shop_product" in changes["default"]["tables"]
            assert not [sql for sql in statements(seen) if "djfire_changes" in sql]
            models = shop.module("shop.models")
            models.AuditEntry.objects.using("other").create(message="now queried")
            tables = _tables(dj, "other")
            assert [r["message"] for r in tables["shop_auditentry"]["inserted"]] == ["now queried"]
            assert [sql for sql in statements(seen) if "djfire_changes" in sql]  # read now
        finally:
            other.connection.set_trace_callback(None)
    with shop.scope(data_changes=True):
        assert _tables(dj, "other") == {}  # a test of its own starts untouched again


# netting, without a database: rows as the triggers record them
def test_netting_per_primary_key() -> None:
    keys = {"t": ["id"]}
    rows = [
        ("t", "INSERT", None, {"id": 1, "a": "x"}),
        ("t", "UPDATE", {"id": 1, "a": "x"}, {"id": 1, "a": "y"}),  # insert+update: insert
        ("t", "INSERT", None, {"id": 2, "a": "gone"}),
        ("t", "DELETE", {"id": 2, "a": "gone"}, None),  # insert+delete: nothing
        ("t", "UPDATE", {"id": 3, "a": "p", "b": 1}, {"id": 3, "a": "q", "b": 1}),
        ("t", "UPDATE", {"id": 3, "a": "q", "b": 1}, {"id": 3, "a": "r", "b": 1}),
        ("t", "UPDATE", {"id": 4, "a": "same"}, {"id": 4, "a": "other"}),
        ("t", "UPDATE", {"id": 4, "a": "other"}, {"id": 4, "a": "same"}),  # back: nothing
        ("t", "DELETE", {"id": 5, "a": "old"}, None),
        ("t", "INSERT", None, {"id": 5, "a": "new"}),  # delete+insert: an update
        ("t", "DELETE", {"id": 6, "a": "z"}, None),
        ("t", "UPDATE", {"id": 7, "a": "k"}, {"id": 8, "a": "k"}),  # the key changed
    ]
    assert net_changes(rows, keys) == {
        "t": {
            "inserted": [{"id": 1, "a": "y"}, {"id": 8, "a": "k"}],
            "updated": [
                {"key": {"id": 3}, "changed": {"a": ["p", "r"]}},
                {"key": {"id": 5}, "changed": {"a": ["old", "new"]}},
            ],
            "deleted": [{"id": 6, "a": "z"}, {"id": 7, "a": "k"}],
        }
    }


def test_netting_a_table_without_a_primary_key_keys_rows_by_their_values() -> None:
    rows = [("log", "INSERT", None, {"line": "a"}), ("log", "INSERT", None, {"line": "b"})]
    assert net_changes(rows, {"log": []}) == {
        "log": {"inserted": [{"line": "a"}, {"line": "b"}], "updated": [], "deleted": []}
    }


_SERVICE_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER audit_product AFTER INSERT ON shop_product BEGIN "
        "INSERT INTO shop_category (name) VALUES ('by a trigger'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION audit_product() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO shop_category (name) VALUES ('by a trigger'); RETURN NULL; END $$",
        "CREATE TRIGGER audit_product AFTER INSERT ON shop_product "
        "FOR EACH ROW EXECUTE FUNCTION audit_product()",
    ],
}


def test_rows_written_by_the_service_s_own_triggers_appear(shop: fire.Remote, dj: DjangoRemote):
    db = shop.module("django.db")
    with shop.scope(data_changes=True):
        cursor = db.connection.cursor()
        for statement in _SERVICE_TRIGGERS[db.connection.vendor]:  # rolled back with the test
            cursor.execute(statement)
        shop.module("shop.models").Product.objects.create(name="audited", price="1.00")
        tables = _tables(dj)
        assert [row["name"] for row in tables["shop_product"]["inserted"]] == ["audited"]
        assert [row["name"] for row in tables["shop_category"]["inserted"]] == ["by a trigger"]


def test_netting_counts_each_of_several_identical_rows_without_a_primary_key() -> None:
    same, other = {"line": "a", "n": 1}, {"line": "b", "n": 2}
    rows = [
        ("log", "INSERT", None, same),
        ("log", "INSERT", None, same),
        ("log", "INSERT", None, same),
        ("log", "DELETE", same, None),  # one of the three goes again
        ("log", "DELETE", other, None),  # a row from before the test
        ("log", "DELETE", other, None),  # and its twin
        ("log", "UPDATE", {"line": "c", "n": 3}, {"line": "c", "n": 4}),  # a delete and an insert
    ]
    assert net_changes(rows, {"log": []}) == {
        "log": {
            "inserted": [same, same, {"line": "c", "n": 4}],
            "updated": [],
            "deleted": [other, other, {"line": "c", "n": 3}],
        }
    }
    back = [("log", "DELETE", same, None), ("log", "INSERT", None, same)]  # the same row again
    assert net_changes(back, {"log": []}) == {}


def test_netting_a_composite_key_shows_all_its_columns() -> None:
    keys = {"member": ["team", "person"]}
    ada = {"team": 1, "person": "ada"}
    rows = [
        ("member", "UPDATE", {**ada, "role": "x"}, {**ada, "role": "y"}),
        ("member", "INSERT", None, {"team": 1, "person": "bob", "role": "x"}),
        ("member", "INSERT", None, {"team": 2, "person": "ada", "role": "x"}),  # not ada of 1
    ]
    changes = net_changes(rows, keys)["member"]
    assert changes["updated"] == [
        {"key": {"team": 1, "person": "ada"}, "changed": {"role": ["x", "y"]}}
    ]
    assert [(r["team"], r["person"]) for r in changes["inserted"]] == [(1, "bob"), (2, "ada")]


def test_the_server_tells_how_much_it_watches(shop: fire.Remote):
    capture = shop.info()["extensions"]["scopes"]["capture"]
    assert capture["off"] is None and capture["skipped"] == {"default": {}, "other": {}}
    assert capture["watched"]["default"] > 5


class _BrokenConnection:
    """A connection whose every cursor fails (a database the capture cannot install on)."""

    vendor = "sqlite"
    alias = "default"

    def cursor(self) -> Any:
        raise RuntimeError("disk I/O error")


def test_a_capture_that_cannot_be_installed_is_off_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from djfire import changes

    monkeypatch.setattr(changes, "_fields_by_column", dict)  # no Django project here
    capture = changes.ChangeCapture({"default": _BrokenConnection()})
    capture.install()  # no exception: the server starts
    assert capture.off == "off (could not be installed: disk I/O error)"
    assert capture.summary() == capture.off
    assert "the data-change capture could not be installed" in caplog.text
    capture.start()  # switching and reading ask nothing of the database
    assert capture.read() == {"default": {"vendor": "sqlite", "tables": None, "off": capture.off}}


class _MysqlConnection:
    """A connection of a backend the capture cannot watch (asked nothing)."""

    vendor = "mysql"
    alias = "default"

    def cursor(self) -> Any:
        raise AssertionError("the capture asked a database it cannot capture")


def test_a_service_with_no_database_the_capture_can_watch_says_off_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from djfire import changes
    from djfire.isolation import DjangoScopes

    monkeypatch.setattr(changes, "_fields_by_column", dict)  # no Django project here
    capture = changes.ChangeCapture({"default": _MysqlConnection()})
    capture.install()
    assert capture.summary() == "off (no database here can be captured)"  # the ready line
    shared = SimpleNamespace(vendors=lambda: {"default": "mysql"}, lock=_FreeLock())
    info = DjangoScopes(shared, capture).info()  # type: ignore[arg-type]
    assert info["data_changes"] is False  # was True: the ready line and info disagreed
    assert info["capture"]["off"] == capture.summary()
    capture.start()
    assert capture.read() == {
        "default": {"vendor": "mysql", "tables": None, "off": capture.summary()}
    }


class _FreeLock:
    def holder(self) -> str:
        return ""
