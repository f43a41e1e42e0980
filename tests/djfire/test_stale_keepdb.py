"""A kept test database older than the migrations: errors name it and the fix."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
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


@contextlib.contextmanager
def _kept_databases_dropped(backend: str, suffix: str) -> Iterator[None]:
    """Drop this test's kept PostgreSQL test databases at its end, whatever happened
    (PostgreSQL is shared by runs: a kept database must not outlive the test)."""
    try:
        yield
    finally:
        if backend == "postgres":
            with psycopg.connect(
                host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
            ) as admin:
                for name in (f"test_djfire_shop_{suffix}", f"test_djfire_shop_other_{suffix}"):
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.mark.parametrize(
    "backend", ["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_missing_column_in_a_kept_database_names_it_and_the_fix(
    backend: str, tmp_path: Path
) -> None:
    suffix = f"stale{os.getpid()}"  # this run's own (another run may share PostgreSQL)
    with _kept_databases_dropped(backend, suffix):
        _check_stale_note(backend, tmp_path, suffix)


def _check_stale_note(backend: str, tmp_path: Path, suffix: str) -> None:
    keep = ("--keepdb", "--db-suffix", suffix)
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
    last = spawn_shop(backend, "--db-suffix", suffix, data_dir=str(tmp_path))  # rebuilt
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
