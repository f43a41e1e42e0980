"""A fire server drops only the test databases a fire server made (djfire.ownership).

Real runfireserver processes on PostgreSQL and SQLite files. A database that exists
under a test database's name but that no fire server made (a developer's own, one kept
by Django's `manage.py test --keepdb`) holds a sentinel row: the server refuses to start
and the row survives; with --keepdb the server reuses it and the row survives too. One
left by an earlier fire server (marked) is made again, as before. PostgreSQL is shared:
every name here is this run's own.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fire
from djfire.launch import RUNFIRESERVER
from djfire.ownership import MARK, SQLITE_APPLICATION_ID
from fire.errors import FireError
from fire.runners.spawn import ServerSpec, SpawnedServer

from ..conftest import MANAGE, require_postgres

SENTINEL = "precious"


def spawn(backend: str, data_dir: str, *args: str, suffix: str | None = None) -> SpawnedServer:
    spec = ServerSpec(
        name="shop",
        program=MANAGE,
        launcher=RUNFIRESERVER,
        suffix=suffix,
        args=list(args),
        env={"DJFIRE_TEST_DB": backend, "DJFIRE_TEST_DIR": data_dir},
    )
    return SpawnedServer(spec).start()


def refusal(backend: str, data_dir: str, *args: str, suffix: str | None = None) -> str:
    with pytest.raises(FireError) as raised:
        spawn(backend, data_dir, *args, suffix=suffix).stop()
    return str(raised.value)


def served_products(server: SpawnedServer) -> int:
    with fire.connect(server.address, name="shop", timeout=30) as shop, shop.scope():
        return shop.module("shop.models").Product.objects.count()


# -- PostgreSQL ------------------------------------------------------------------------


def maintenance() -> Any:
    import psycopg

    return psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)


def pg_comment(name: str) -> str | None:
    """The database's comment; KeyError when it does not exist."""
    with maintenance() as conn:
        rows = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchall()
    if not rows:
        raise KeyError(name)
    return rows[0][0]


def pg_sentinel(name: str) -> list[tuple[str]]:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}") as conn:
        return conn.execute("SELECT note FROM sentinel").fetchall()


@pytest.fixture
def pg_suffix(request: pytest.FixtureRequest) -> Iterator[str]:
    """This test's --db-suffix; its test databases are dropped at the end, whatever is left."""
    require_postgres()
    suffix = f"own{os.getpid()}_{request.node.name[-12:].strip('_[]-').replace('-', '_')}"
    yield suffix
    with maintenance() as conn:
        for name in (f"test_djfire_shop_{suffix}", f"test_djfire_shop_other_{suffix}"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_pg_database(name: str, comment: str | None = None) -> None:
    """A database named like a test database, with a sentinel row (and `comment`)."""
    import psycopg

    with maintenance() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
        if comment is not None:
            conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE sentinel (note text)")
        conn.execute("INSERT INTO sentinel VALUES (%s)", [SENTINEL])


@pytest.mark.postgres
def test_pg_an_existing_test_database_no_fire_server_made_is_refused_and_survives(
    pg_suffix: str, tmp_path: Path
) -> None:
    name = f"test_djfire_shop_{pg_suffix}"
    make_pg_database(name)  # a developer's own, or one Django's --keepdb kept
    message = refusal("postgres", str(tmp_path), suffix=pg_suffix)
    assert (
        f"database alias 'default': its test database exists already, and was not made by a "
        f"fire server: the PostgreSQL database {name!r}"
    ) in message
    assert f'drop it yourself (`DROP DATABASE "{name}"`)' in message
    assert "runfireserver --keepdb" in message
    assert pg_sentinel(name) == [(SENTINEL,)]
    assert pg_comment(name) is None
    with pytest.raises(KeyError):  # refused before the set-up made anything
        pg_comment(f"test_djfire_shop_other_{pg_suffix}")


@pytest.mark.postgres
def test_pg_with_keepdb_an_unmarked_test_database_is_reused_and_never_dropped(
    pg_suffix: str, tmp_path: Path
) -> None:
    name = f"test_djfire_shop_{pg_suffix}"
    make_pg_database(name)
    server = spawn("postgres", str(tmp_path), "--keepdb", suffix=pg_suffix)
    try:
        assert served_products(server) == 0  # migrated in place, and served
    finally:
        assert server.stop() == 0
    assert pg_sentinel(name) == [(SENTINEL,)]
    assert pg_comment(name) is None  # still not a fire server's: a run without --keepdb refuses
    assert "exists already" in refusal("postgres", str(tmp_path), suffix=pg_suffix)
    assert pg_sentinel(name) == [(SENTINEL,)]
    # The other alias's test database was made by the --keepdb server: marked, its own.
    assert pg_comment(f"test_djfire_shop_other_{pg_suffix}").startswith(MARK)


@pytest.mark.postgres
def test_pg_a_test_database_an_earlier_fire_server_left_is_made_again_and_dropped(
    pg_suffix: str, tmp_path: Path
) -> None:
    import psycopg

    name = f"test_djfire_shop_{pg_suffix}"
    make_pg_database(name, comment=f"{MARK}, made by runfireserver pid 1 on elsewhere")
    server = spawn("postgres", str(tmp_path), suffix=pg_suffix)
    try:
        assert served_products(server) == 0
        assert pg_comment(name).startswith(f"{MARK}, made by runfireserver pid ")
        assert "pid 1 on" not in pg_comment(name)  # made again, by this server
        with pytest.raises(psycopg.errors.UndefinedTable):
            pg_sentinel(name)
    finally:
        assert server.stop() == 0
    with pytest.raises(KeyError):  # dropped at exit: it made it
        pg_comment(name)


# -- SQLite files ----------------------------------------------------------------------


def make_sqlite_database(path: Path, *, marked: bool = False) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE sentinel (note text)")
        conn.execute("INSERT INTO sentinel VALUES (?)", [SENTINEL])
        if marked:
            conn.execute(f"PRAGMA application_id = {SQLITE_APPLICATION_ID}")
    conn.close()


def sqlite_sentinel(path: Path) -> list[tuple[str]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT note FROM sentinel").fetchall()
    conn.close()
    return rows


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fire-own-", dir="/tmp") as directory:
        yield Path(directory)


def test_sqlite_an_existing_test_file_no_fire_server_made_is_refused_and_survives(
    data_dir: Path,
) -> None:
    path = data_dir / "test_shop.sqlite3"
    make_sqlite_database(path)
    message = refusal("sqlite-file", str(data_dir))
    assert (
        "database alias 'default': its test database exists already, and was not made by a "
        f"fire server: the SQLite file {path} (no djfire application_id"
    ) in message
    assert "delete the file yourself" in message
    assert sqlite_sentinel(path) == [(SENTINEL,)]
    assert not (data_dir / "test_other.sqlite3").exists()  # nothing made


def test_sqlite_with_keepdb_an_unmarked_test_file_is_reused_and_kept(data_dir: Path) -> None:
    path = data_dir / "test_shop.sqlite3"
    make_sqlite_database(path)
    server = spawn("sqlite-file", str(data_dir), "--keepdb")
    try:
        assert served_products(server) == 0
    finally:
        assert server.stop() == 0
    assert sqlite_sentinel(path) == [(SENTINEL,)]
    assert "exists already" in refusal("sqlite-file", str(data_dir))  # still not marked


def test_sqlite_a_test_file_an_earlier_fire_server_left_is_made_again_and_removed(
    data_dir: Path,
) -> None:
    path = data_dir / "test_shop.sqlite3"
    make_sqlite_database(path, marked=True)
    server = spawn("sqlite-file", str(data_dir))
    try:
        assert served_products(server) == 0
        with pytest.raises(sqlite3.OperationalError, match="no such table: sentinel"):
            sqlite_sentinel(path)
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            assert conn.execute("PRAGMA application_id").fetchone() == (SQLITE_APPLICATION_ID,)
        conn.close()
    finally:
        assert server.stop() == 0
    assert not path.exists()  # removed at exit: it made it
    # Killed without its teardown, the server leaves a marked file: the next one starts.
    server = spawn("sqlite-file", str(data_dir), "--keepdb")
    assert server.stop() == 0
    assert path.exists()
    server = spawn("sqlite-file", str(data_dir))
    assert server.stop() == 0
    assert not path.exists()
