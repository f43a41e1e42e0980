"""A caught database error, and the service's own threads, inside a test (issue 21: 2, 10).

Real runfireserver processes on SQLite (memory and file) and PostgreSQL.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests

import fire
from djfire import DjangoRemote
from fire.runners.spawn import SpawnedServer

from ..conftest import spawn_shop


def _names(shop: fire.Remote) -> list[str]:
    return sorted(shop.module("shop.models").Category.objects.values_list("name", flat=True))


# 2. A caught database error leaves the test usable. Only PostgreSQL aborts a
# transaction at a failed statement (SQLite goes on: there, nothing is to recover).
@pytest.fixture
def pg_shop(shop_server: SpawnedServer, shop: fire.Remote) -> fire.Remote:
    if shop_server.backend != "postgres":  # type: ignore[attr-defined]
        pytest.skip("SQLite goes on after a failed statement: no aborted transaction")
    return shop


def test_a_call_that_catches_a_raw_cursor_error_goes_on_and_so_does_the_test(
    pg_shop: fire.Remote, dj: DjangoRemote
):
    shop = pg_shop
    tasks = shop.module("shop.tasks")
    models = shop.module("shop.models")
    with shop.scope():
        models.Category.objects.create(name="before")
        # The rest of the call works, as it would in production (autocommit).
        assert isinstance(tasks.probe_then_create("after the probe"), int)
        assert _names(shop) == ["after the probe", "before"]
        response = requests.get(dj.live_url + "/products/", timeout=10)
        assert response.status_code == 200, response.text
        models.Category.objects.create(name="later")
        assert _names(shop) == ["after the probe", "before", "later"]
    with shop.scope():
        assert _names(shop) == []


def test_a_call_that_ends_on_a_caught_raw_cursor_error_leaves_the_test_usable(
    shop_server: SpawnedServer, pg_shop: fire.Remote, dj: DjangoRemote
):
    shop = pg_shop
    lines = len(shop_server.output)
    tasks = shop.module("shop.tasks")
    models = shop.module("shop.models")
    with shop.scope():
        models.Category.objects.create(name="before")
        assert tasks.create_then_probe("in the call") == "ProgrammingError"
        response = requests.post(dj.live_url + "/products/create/", timeout=10)
        assert response.status_code == 201, response.text
        assert models.Product.objects.count() == 1
        # PostgreSQL aborted the transaction at the error: the call's savepoint was
        # rolled back, with the row it wrote before (the server's output says so).
        assert _names(shop) == ["before"]
        models.Category.objects.create(name="later")
        assert _names(shop) == ["before", "later"]
    said = "".join(shop_server.output[lines:])
    assert "its earlier work on that alias is undone" in said, said


def test_an_error_caught_on_the_drivers_own_cursor_leaves_the_test_usable(
    pg_shop: fire.Remote, dj: DjangoRemote
):
    # Django does not see the failed statement: the call's savepoint finds the
    # transaction aborted when it is released at the call's end, and rolls back to it.
    shop = pg_shop
    tasks = shop.module("shop.tasks")
    models = shop.module("shop.models")
    with shop.scope():
        models.Category.objects.create(name="before")
        assert tasks.count_then_probe_with_the_drivers_cursor() == "UndefinedTable"
        assert _names(shop) == ["before"]
        response = requests.get(dj.live_url + "/products/", timeout=10)
        assert response.status_code == 200, response.text
    with shop.scope():
        assert _names(shop) == []


def test_a_view_that_catches_a_raw_cursor_error_answers_and_the_test_goes_on(
    pg_shop: fire.Remote, dj: DjangoRemote
):
    shop = pg_shop
    models = shop.module("shop.models")
    with shop.scope():
        response = requests.post(
            dj.live_url + "/probe-then-create/", json={"name": "probed"}, timeout=10
        )
        assert response.status_code == 201, response.text
        assert response.json()["caught"] == "ProgrammingError"
        listed = requests.get(dj.live_url + "/products/", timeout=10)
        assert [p["name"] for p in listed.json()["products"]] == ["probed"]
        assert list(models.Product.objects.values_list("name", flat=True)) == ["probed"]
    with shop.scope():
        assert models.Product.objects.count() == 0


def test_the_data_changes_of_a_test_that_caught_an_error_can_be_read(
    pg_shop: fire.Remote, dj: DjangoRemote
):
    shop = pg_shop
    tasks = shop.module("shop.tasks")
    with shop.scope(data_changes=True):
        tasks.create_then_probe("in the call")
        tasks.probe_then_create("after the probe")
        changes = dj.data_changes()
    inserted = changes["default"]["tables"]["shop_category"]["inserted"]
    assert "after the probe" in [row["name"] for row in inserted]


# 10. The service's own threads use the test's connection
def test_coroutines_run_by_the_service_itself_share_the_test_transaction(
    shop: fire.Remote, dj: DjangoRemote
):
    tasks = shop.module("shop.tasks")
    with shop.scope():
        shop.module("shop.models").Category.objects.create(name="from the test")
        assert tasks.count_in_asyncio_run("from asyncio.run") == 2
        assert _names(shop) == ["from asyncio.run", "from the test"]
        response = requests.post(dj.live_url + "/count-in-asyncio-run/", timeout=10)
        assert response.status_code == 201, response.text
        assert response.json() == {"count": 3}
    with shop.scope():
        assert _names(shop) == []
        assert tasks.count_in_asyncio_run("again") == 1


def test_a_thread_the_service_starts_and_waits_for_shares_the_test_transaction(
    shop: fire.Remote,
):
    tasks = shop.module("shop.tasks")
    with shop.scope():
        assert tasks.create_in_thread("from a thread").isdigit()
        assert _names(shop) == ["from a thread"]
    with shop.scope():
        assert _names(shop) == []


def test_a_thread_that_closes_its_connections_does_not_end_the_test(shop: fire.Remote):
    tasks = shop.module("shop.tasks")
    models = shop.module("shop.models")
    with shop.scope():
        models.Category.objects.create(name="kept")
        assert tasks.close_connections_in_thread() == ["closed"]
        assert _names(shop) == ["kept"]
        models.Category.objects.create(name="also kept")
    with shop.scope():
        assert _names(shop) == []


def test_a_thread_that_outlives_its_call_is_refused_naming_it(shop: fire.Remote, tmp_path: Path):
    tasks = shop.module("shop.tasks")
    said = tmp_path / "outcome"
    with shop.scope():
        tasks.start_stray_writer("stray", str(said))
        deadline = time.monotonic() + 10
        while not said.exists():  # no call meanwhile: nothing holds the connections
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.05)  # written whole
        assert said.read_text().startswith("DatabaseError: thread 'shop-stray-writer' used")
        assert _names(shop) == []
    with shop.scope():
        assert _names(shop) == []


def test_a_thread_that_outlives_its_call_is_refused_while_the_next_test_holds_the_lock(
    shop: fire.Remote, tmp_path: Path
):
    # The stray thread wakes while a slow call of the next test holds the connections:
    # it is not that call's, so it must not write into the next test beside it.
    tasks = shop.module("shop.tasks")
    said = tmp_path / "outcome"
    with shop.scope():
        tasks.start_stray_writer("stray from test 1", str(said))
    with shop.scope():
        shop.module("time").sleep(1.0)  # the stray thread writes 0.2 s after its start
        assert said.exists(), "the stray thread did not try within the slow call"
        time.sleep(0.05)  # written whole
        assert said.read_text().startswith("DatabaseError: thread 'shop-stray-writer' used")
        assert _names(shop) == []
    with shop.scope():
        assert _names(shop) == []


def test_work_a_call_hands_to_a_pool_made_before_it_shares_the_test_transaction(
    shop: fire.Remote,
):
    # A module-level pool's worker was started in an earlier call (or none): the work
    # item carries the call's hold, not the thread.
    tasks = shop.module("shop.tasks")
    with shop.scope():
        assert tasks.create_in_pool("first").isdigit()
    with shop.scope():
        assert tasks.create_in_pool("second").isdigit()
        assert _names(shop) == ["second"]
        assert tasks.count_in_asyncio_run("from asyncio.run") == 2


# Released references: their objects are dropped under the connections' lock
def test_a_half_read_iterator_released_in_the_next_test_leaves_it_usable(shop: fire.Remote):
    # On PostgreSQL the iterator's generator holds a server-side cursor, gone with test 1's
    # rollback: its finally's CLOSE, run as the release drops it, fails in test 2.
    models = shop.module("shop.models")
    with shop.scope():
        for number in range(5):
            models.Product.objects.create(name=f"p{number}", price="1.00")
        rows = models.Product.objects.iterator(chunk_size=2)
        assert next(rows) is not None
    with shop.scope():
        models.Category.objects.create(name="before the release")
        del rows
        gc.collect()
        assert _names(shop) == ["before the release"]  # the release goes with this call
        models.Category.objects.create(name="after the release")
        assert _names(shop) == ["after the release", "before the release"]
    with shop.scope():
        assert models.Product.objects.count() == 0


def test_a_half_read_iterator_released_in_its_own_test_closes_its_cursor(shop: fire.Remote):
    models = shop.module("shop.models")
    with shop.scope():
        for number in range(5):
            models.Product.objects.create(name=f"p{number}", price="1.00")
        rows = models.Product.objects.iterator(chunk_size=2)
        assert next(rows) is not None
        del rows
        gc.collect()
        assert models.Product.objects.count() == 5


def test_released_objects_are_dropped_holding_the_connections(
    shop_server: SpawnedServer, tmp_path: Path
):
    said = tmp_path / "dropped"
    with fire.connect(shop_server.address, name="shop", timeout=20) as shop:
        tasks = shop.module("shop.tasks")
        with shop.scope():
            probe = tasks.FinalizerProbe(str(said))
            del probe
            gc.collect()
            shop.ping()  # carries the release
            assert said.read_text() == "MainThread: owned=True"
        said.unlink()
        probe = tasks.FinalizerProbe(str(said))  # outside every scope
        del probe
        gc.collect()
        shop.ping()
        assert said.read_text() == "MainThread: owned=True"
        said.unlink()
        kept = tasks.FinalizerProbe(str(said))  # dropped as the session closes
    deadline = time.monotonic() + 10
    while not said.exists():
        assert time.monotonic() < deadline, "not dropped as the session closed"
        time.sleep(0.05)
    time.sleep(0.05)
    assert said.read_text() == "MainThread: owned=True"
    del kept


def test_objects_released_while_a_live_request_holds_the_connections_wait_for_it(
    shop: fire.Remote, dj: DjangoRemote, tmp_path: Path
):
    said = tmp_path / "dropped"
    tasks = shop.module("shop.tasks")
    with shop.scope():
        probe = tasks.FinalizerProbe(str(said))
        slow = threading.Thread(
            target=requests.post,
            args=(dj.live_url + "/products/create-slowly/?seconds=1",),
            kwargs={"timeout": 10},
        )
        slow.start()
        time.sleep(0.3)  # the request holds the connections
        del probe
        gc.collect()
        shop.ping()  # carries the release: never waits, never beside the request
        assert not said.exists()
        slow.join()
        deadline = time.monotonic() + 10
        while not said.exists():
            assert time.monotonic() < deadline, "not dropped once the request let go"
            time.sleep(0.05)
        time.sleep(0.05)
        name, owned = said.read_text().split(": ")
        assert name != "MainThread" and owned == "owned=True"  # the request's thread, after it


@pytest.mark.postgres
def test_rows_written_in_asyncio_run_never_survive_and_the_database_is_dropped():
    server = spawn_shop("postgres", suffix="threads")
    try:
        with fire.connect(server.address, name="shop", timeout=20) as shop:
            tasks = shop.module("shop.tasks")
            db = shop.module("django.db")
            name = db.connection.settings_dict["NAME"]
            with shop.scope():
                assert tasks.count_in_asyncio_run("from asyncio.run") == 1
            with shop.scope():
                assert tasks.count_in_asyncio_run("next test") == 1
    finally:
        server.stop()
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres") as pg:
        listed = [row[0] for row in pg.execute("SELECT datname FROM pg_database")]
    assert name.startswith("test_") and name not in listed, "".join(server.output)
