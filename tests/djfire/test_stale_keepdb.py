"""A kept test database older than the migrations: errors name it and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

import fire
from djfire import DjangoRemote

from ..conftest import spawn_shop

NOTE = (
    "fire: this server reused its test databases (runfireserver --keepdb): {kept}; one may "
    "be older than the migrations (a migration edited in place, another branch checked "
    "out), which migrate cannot see. Start runfireserver once without --keepdb to rebuild "
    "them"
)


@pytest.mark.parametrize(
    "backend", ["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_missing_column_in_a_kept_database_names_it_and_the_fix(
    backend: str, tmp_path: Path
) -> None:
    keep = ("--keepdb", "--db-suffix", "stale")
    first = spawn_shop(backend, *keep, "--no-data-changes", data_dir=str(tmp_path))
    try:
        with fire.connect(first.address, timeout=20) as shop:
            names = {
                alias: shop.module("django.db").connections[alias].settings_dict["NAME"]
                for alias in ("default", "other")
            }
            # What an edited migration leaves: the kept database lacks a column the
            # models have (a transactional scope commits, as the edited schema was).
            with shop.scope(transactional=True):
                cursor = shop.module("django.db").connection.cursor()
                cursor.execute("ALTER TABLE shop_product DROP COLUMN price")
    finally:
        assert first.stop() == 0
    kept = ", ".join(f"{names[alias]!r} (alias {alias!r})" for alias in ("default", "other"))
    note = NOTE.format(kept=kept)

    again = spawn_shop(backend, *keep, data_dir=str(tmp_path))
    try:
        with fire.connect(again.address, timeout=20) as shop, shop.scope():
            with pytest.raises(fire.RemoteError) as raised:
                shop.module("shop.factories").ProductFactory(name="lamp")
            assert "price" in str(raised.value)  # "no column named price" / "column "price""
            assert note in raised.value.__notes__
            # Only a missing table or column gets it.
            with pytest.raises(KeyError) as unrelated:
                shop.module("builtins").dict()["nothing"]
            assert note not in getattr(unrelated.value, "__notes__", [])
            # A view's error gets it in the traceback the server prints.
            url = DjangoRemote(shop).live_url
            assert requests.post(f"{url}/products/create/", json={}, timeout=10).status_code == 500
        assert any(note in line for line in again.output)
    finally:
        assert again.stop() == 0
    last = spawn_shop(backend, "--db-suffix", "stale", data_dir=str(tmp_path))  # rebuilt
    try:
        with fire.connect(last.address, timeout=20) as shop, shop.scope():
            assert shop.module("shop.factories").ProductFactory(name="lamp").price is not None
    finally:
        assert last.stop() == 0


def test_without_keepdb_a_missing_column_gets_no_note(sqlite_shop) -> None:
    with fire.connect(sqlite_shop.address, timeout=20) as shop, shop.scope():
        cursor = shop.module("django.db").connection.cursor()
        with pytest.raises(fire.RemoteError) as raised:
            cursor.execute("SELECT no_such_column FROM shop_product")
        assert "no such column" in str(raised.value)
        assert not any("--keepdb" in note for note in getattr(raised.value, "__notes__", []))
