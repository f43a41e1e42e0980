"""Nothing survives whatever arrives when, and Django's transaction features work in a test.

Each test runs against a real runfireserver, on SQLite (memory and file) and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

import fire
from djfire import DjangoRemote
from fire.errors import FireError, ServerBusy
from fire.runners.spawn import SpawnedServer

from ..conftest import spawn_shop


def _post(url: str, **kwargs: object) -> requests.Response:
    return requests.post(url, timeout=30, **kwargs)  # type: ignore[arg-type]


def _count(shop: fire.Remote) -> int:
    with shop.scope():
        return shop.module("shop.models").Product.objects.count()


# 1. Nothing survives, whatever arrives when
def test_a_request_outside_a_scope_commits_nothing(
    shop_server: SpawnedServer, shop: fire.Remote, dj: DjangoRemote
):
    lines = len(shop_server.output)
    response = _post(dj.live_url + "/products/create/", json={"name": "late"})
    assert response.status_code == 201
    assert _count(shop) == 0
    deadline = time.monotonic() + 5
    while not any("outside a test scope" in line for line in shop_server.output[lines:]):
        assert time.monotonic() < deadline, "".join(shop_server.output[lines:])
        time.sleep(0.05)
    said = "".join(shop_server.output[lines:])
    assert "HTTP POST /products/create/ came outside a test scope" in said
    assert "INSERT INTO" in said


def test_a_call_that_writes_outside_a_scope_is_refused_and_rolled_back(shop: fire.Remote):
    factories = shop.module("shop.factories")
    models = shop.module("shop.models")
    assert models.Product.objects.count() == 0  # reading needs no scope
    with pytest.raises(FireError, match=r"outside a test scope .*INSERT INTO.*remote\.scope\(\)"):
        factories.ProductFactory(name="stray")
    assert shop.ping() > 0
    assert _count(shop) == 0


def test_a_second_client_may_only_ping_while_another_holds_the_server(
    shop_server: SpawnedServer, shop: fire.Remote
):
    with fire.connect(shop_server.address, name="second", timeout=20) as second:
        second_models = second.module("shop.models")
        with shop.scope():
            shop.module("shop.factories").ProductFactory(name="held")
            with pytest.raises(ServerBusy, match=r"held by .*pid \d+ on .* since \d\d:"):
                second_models.Product.objects.count()
            with pytest.raises(ServerBusy, match=r"held by"):
                second.module("shop.factories")
            assert second.ping() > 0
            assert second.info()["extensions"]["scopes"]["depth"] == 1
        with second.scope():
            assert second_models.Product.objects.count() == 0


def test_requests_overlapping_each_other_and_fire_calls_are_all_isolated(
    shop: fire.Remote, dj: DjangoRemote
):
    url = dj.live_url + "/products/create-slowly/?seconds=0.01"
    factories = shop.module("shop.factories")
    models = shop.module("shop.models")
    statuses: list[int] = []

    def client() -> None:
        with requests.Session() as http:
            statuses.extend(http.post(url, timeout=30).status_code for _ in range(5))

    with shop.scope():
        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        for n in range(10):
            factories.ProductFactory(name=f"call {n}")
            models.Product.objects.count()
        for thread in threads:
            thread.join()
        assert statuses == [201] * 20
        assert models.Product.objects.count() == 30
    assert _count(shop) == 0


def test_requests_racing_scope_begin_and_end_leave_nothing(shop: fire.Remote, dj: DjangoRemote):
    """Requests land before, inside and between scopes: none commits, none fails."""
    url = dj.live_url + "/products/create/"
    factories = shop.module("shop.factories")
    statuses: list[int] = []
    done = threading.Event()

    def client() -> None:
        with requests.Session() as http:
            while not done.is_set() and len(statuses) < 500:
                statuses.append(http.post(url, timeout=30).status_code)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        for _ in range(30):
            with shop.scope():
                factories.ProductFactory()
    finally:
        done.set()
        thread.join()
    assert statuses and set(statuses) == {201}
    assert _count(shop) == 0


def test_a_scope_that_fails_to_close_still_rolls_back_every_alias(shop: fire.Remote):
    db = shop.module("django.db")
    models = shop.module("shop.models")
    shop.begin_scope()
    models.Product.objects.create(name="default alias", price="1.00")
    models.AuditEntry.objects.using("other").create(message="other alias")
    shop.call_extension("override_settings", FAIL_ON_RESTORE=True)  # left for end_scope
    with pytest.raises(RuntimeError, match="a setting_changed receiver failed"):
        shop.end_scope()
    assert shop.info()["extensions"]["scopes"]["depth"] == 0
    with shop.scope():
        assert models.Product.objects.count() == 0
        assert models.AuditEntry.objects.using("other").count() == 0
        # only the new scope's atomic is open: nothing of the failed scope is left over
        assert len(db.connections["default"].atomic_blocks) == 1
        assert len(db.connections["other"].atomic_blocks) == 1


# 2. Django's own transaction features
def test_durable_atomic_blocks_work_in_calls_and_views(shop: fire.Remote, dj: DjangoRemote):
    tasks = shop.module("shop.tasks")
    models = shop.module("shop.models")
    with shop.scope():
        made = tasks.create_durably("durable call")
        response = _post(dj.live_url + "/products/create-durably/", json={"name": "durable view"})
        assert response.status_code == 201
        names = sorted(models.Product.objects.values_list("name", flat=True))
        assert names == ["durable call", "durable view"]
        assert models.Product.objects.filter(id=made).exists()
    assert _count(shop) == 0


def test_an_on_commit_callback_with_a_database_error_leaves_the_test_usable(shop: fire.Remote):
    tasks = shop.module("shop.tasks")
    models = shop.module("shop.models")
    integrity_error = shop.exception("django.db.utils.IntegrityError")
    with shop.scope():
        with pytest.raises(integrity_error):
            tasks.on_commit_database_error("twice")
        assert models.Category.objects.count() == 0  # the callback's own work is undone
        models.Category.objects.create(name="after")
        assert models.Category.objects.count() == 1


def test_callbacks_registered_by_callbacks_run_too(shop: fire.Remote, dj: DjangoRemote):
    tasks = shop.module("shop.tasks")
    with shop.scope():
        tasks.on_commit_chain("chained")
        assert [m["subject"] for m in dj.mail_outbox()] == ["chained"]


def test_a_failing_view_drops_its_on_commit_callbacks(shop: fire.Remote, dj: DjangoRemote):
    with shop.scope():
        response = _post(dj.live_url + "/products/notify-then-fail/", json={"name": "x"})
        assert response.status_code == 500
        assert dj.mail_outbox() == []


def test_streaming_and_file_responses_are_served(shop: fire.Remote, dj: DjangoRemote):
    with shop.scope():
        shop.module("shop.factories").ProductFactory(name="lamp")
        streamed = requests.get(dj.live_url + "/products/stream/", timeout=30)
        assert streamed.status_code == 200
        assert streamed.text == "names: lamp"
        download = requests.get(dj.live_url + "/download/", timeout=30)
        assert download.status_code == 200
        assert download.headers["Content-Disposition"] == 'attachment; filename="lines.txt"'
        lines = download.content.splitlines()
        assert len(lines) == 10_000 and lines[-1] == b"line 9999"


@pytest.fixture(scope="module")
def impatient_server() -> Iterator[SpawnedServer]:
    """A server whose calls and requests wait at most 0.5 s for the connections."""
    server = spawn_shop("sqlite", "--lock-timeout", "0.5")
    yield server
    server.stop()


def test_waiting_too_long_for_the_connections_names_what_holds_them(
    impatient_server: SpawnedServer,
):
    with fire.connect(impatient_server.address, name="shop", timeout=20) as shop:
        url = DjangoRemote(shop).live_url
        with shop.scope():
            slow = threading.Thread(
                target=_post, args=(url + "/products/create-slowly/?seconds=3",)
            )
            slow.start()
            time.sleep(0.5)
            with pytest.raises(
                ServerBusy,
                match=r"waited 0.5 s .*HTTP POST /products/create-slowly/ has held them for",
            ):
                shop.module("shop.models").Product.objects.count()
            assert slow.is_alive()  # refused while the view still runs
            refused = requests.get(url + "/products/", timeout=30)
            assert refused.status_code == 503
            assert "HTTP POST /products/create-slowly/ has held them" in refused.text
            assert "--lock-timeout" in refused.text
            slow.join()
            assert shop.module("shop.models").Product.objects.count() == 1


def test_a_remote_cursor_works_as_a_context_manager(shop: fire.Remote):
    db = shop.module("django.db")
    with shop.scope():
        with db.connection.cursor() as cursor:
            cursor.execute("INSERT INTO shop_category (name) VALUES ('raw')")
        assert shop.module("shop.models").Category.objects.get().name == "raw"


def test_an_atomic_block_cannot_span_fire_calls(shop: fire.Remote):
    db = shop.module("django.db")
    models = shop.module("shop.models")
    with shop.scope():
        models.Category.objects.create(name="before")
        with pytest.raises(FireError, match="a block cannot span fire calls"):  # noqa: SIM117
            with db.transaction.atomic():
                models.Category.objects.create(name="inside")
        assert list(models.Category.objects.values_list("name", flat=True)) == ["before"]
        assert len(db.connections["default"].atomic_blocks) == 1  # only the scope's own
