"""The real-database guard asks the server, not the spelling; read replicas (TEST MIRROR).

Real PostgreSQL and real runfireserver processes. The 'real' databases are made here, with
names of this run's own (PostgreSQL is shared), and must survive every refusal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import fire
from djfire import DjangoRemote
from fire.errors import FireError

from ..conftest import require_postgres, spawn_shop

#: The same PostgreSQL as 127.0.0.1:5432 (the real database's alias), spelled otherwise.
SPELLINGS = {
    "localhost": ("localhost", "5432"),
    "port-omitted": ("127.0.0.1", ""),
    "unix-socket": ("/var/run/postgresql", ""),
}


def maintenance() -> Any:
    import psycopg

    return psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)


def database_names() -> set[str]:
    with maintenance() as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


@pytest.fixture
def real_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A 'production' database with a sentinel row, made here and dropped at the end."""
    import psycopg

    require_postgres()
    name = f"djfire_real_{os.getpid()}_{request.node.callspec.id.replace('-', '_')}"
    with maintenance() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE sentinel (note text)")
        conn.execute("INSERT INTO sentinel VALUES ('precious')")
    yield name
    with maintenance() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP DATABASE IF EXISTS "test_{name}" WITH (FORCE)')


@pytest.mark.postgres
@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_a_test_database_that_is_a_real_one_on_the_same_server_spelled_otherwise_is_refused(
    spelling: str, real_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if spelling == "unix-socket" and not Path(SPELLINGS[spelling][0]).is_dir():
        pytest.skip("no PostgreSQL socket directory at /var/run/postgresql")
    host, port = SPELLINGS[spelling]
    monkeypatch.setenv("DJFIRE_PG_REAL", real_database)
    monkeypatch.setenv("DJFIRE_PG_OTHER_HOST", host)
    monkeypatch.setenv("DJFIRE_PG_OTHER_PORT", port)
    with pytest.raises(FireError) as raised:
        spawn_shop("postgres-spellings").stop()
    message = str(raised.value)
    assert (
        f"database alias 'other': its test database name {real_database!r} is the same as "
        "the NAME of alias 'default'"
    ) in message
    assert "runfireserver never serves a non-test database" in message
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={real_database}") as conn:
        assert conn.execute("SELECT note FROM sentinel").fetchall() == [("precious",)]
    # Refused before touching any database: not even default's test database was made.
    assert f"test_{real_database}" not in database_names()


# -- read replicas: TEST MIRROR --------------------------------------------------------


@pytest.fixture(
    params=["sqlite-mirror", pytest.param("postgres-mirror", marks=pytest.mark.postgres)]
)
def mirrored(request: pytest.FixtureRequest) -> Iterator[DjangoRemote]:
    """The shop with a read replica that mirrors default, reads routed to the replica."""
    if request.param == "postgres-mirror":
        require_postgres()
    server = spawn_shop(request.param, "--db-suffix", f"mirror{os.getpid()}")
    try:
        with fire.connect(server.address, name="shop", timeout=20) as remote:
            yield DjangoRemote(remote)
    finally:
        assert server.stop() == 0


def test_a_mirror_reads_the_test_s_rows_from_calls_and_live_requests_and_none_after(
    mirrored: DjangoRemote,
) -> None:
    remote = mirrored.remote
    products = remote.module("shop.models").Product.objects
    url = mirrored.live_url + "/products/"
    with remote.scope():
        remote.module("shop.factories").ProductFactory(name="written to default")
        assert products.using("replica").count() == 1
        assert products.count() == 1  # the router reads from the replica
        listed = requests.get(url, timeout=10).json()["products"]  # reads from the replica
        assert [p["name"] for p in listed] == ["written to default"]
        created = requests.post(url + "create/", json={"name": "over http"}, timeout=10)
        assert created.status_code == 201  # written to default by the live server
        assert sorted(products.using("replica").values_list("name", flat=True)) == [
            "over http",
            "written to default",
        ]
    with remote.scope():
        assert products.using("replica").count() == 0
        assert products.using("default").count() == 0
        assert requests.get(url, timeout=10).json() == {"products": []}


@pytest.mark.postgres
@pytest.mark.parametrize("spelling", ["localhost"])
def test_two_aliases_that_would_create_one_test_database_under_two_spellings_are_refused(
    spelling: str, real_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both aliases are the real database, spelled twice, with the same test database name:
    # Django would create it twice (dropping it under the first). A mirror is the fix.
    monkeypatch.setenv("DJFIRE_PG_REAL", real_database)
    monkeypatch.setenv("DJFIRE_PG_OTHER_HOST", "localhost")
    monkeypatch.setenv("DJFIRE_PG_OTHER_NAME", real_database)
    monkeypatch.setenv("DJFIRE_PG_OTHER_TEST_NAME", f"test_{real_database}")
    with pytest.raises(FireError) as raised:
        spawn_shop("postgres-spellings").stop()
    message = str(raised.value)
    assert (
        f"database aliases 'default' and 'other' would both create the test database "
        f"'test_{real_database}' on one database server"
    ) in message
    assert "DATABASES['other']['TEST'] = {'MIRROR': 'default'}" in message
    assert f"test_{real_database}" not in database_names()
