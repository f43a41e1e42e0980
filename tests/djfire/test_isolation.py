"""Per-scope isolation on every alias, with real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import requests

import fire
from djfire import DjangoRemote
from fire.errors import ServerBusy

from .conftest import Counter


def test_factory_data_is_seen_over_http_and_rolled_back(shop: fire.Remote, dj: DjangoRemote):
    factories = shop.module("shop.factories")
    models = shop.module("shop.models")
    with shop.scope():
        product = factories.ProductFactory(name="widget")
        listed = requests.get(dj.live_url + "/products/", timeout=10).json()["products"]
        assert listed == [{"id": product.id, "name": "widget"}]
        response = requests.post(
            dj.live_url + "/products/create/", json={"name": "gadget"}, timeout=10
        )
        assert response.status_code == 201
        assert sorted(models.Product.objects.values_list("name", flat=True)) == ["gadget", "widget"]
    with shop.scope():
        assert models.Product.objects.count() == 0
        assert requests.get(dj.live_url + "/products/", timeout=10).json() == {"products": []}


def test_the_live_server_serves_one_connection_after_another_on_the_same_threads(
    shop: fire.Remote, dj: DjangoRemote
):
    # requests.get opens a connection per request, as tests do. A thread per connection
    # (20 thread ids here) would cost a thread start each time; the server hands each
    # connection to an idle worker (as many as were ever busy at once: a few, from the
    # tests that overlap requests).
    url = dj.live_url + "/thread/"
    with shop.scope():
        served_by = {requests.get(url, timeout=10).json()["thread"] for _ in range(20)}
    assert len(served_by) <= 10, served_by


def test_every_alias_is_rolled_back(shop: fire.Remote):
    models = shop.module("shop.models")
    with shop.scope():
        models.AuditEntry.objects.using("other").create(message="kept only in the test")
        assert models.AuditEntry.objects.using("other").count() == 1
    with shop.scope():
        assert models.AuditEntry.objects.using("other").count() == 0


def test_class_scope_data_lives_until_the_class_scope_ends(shop: fire.Remote):
    factories = shop.module("shop.factories")
    models = shop.module("shop.models")
    with shop.scope("class"):
        factories.CategoryFactory(name="class data")
        with shop.scope():
            factories.CategoryFactory(name="test data")
            assert models.Category.objects.count() == 2
        with shop.scope():
            assert list(models.Category.objects.values_list("name", flat=True)) == ["class data"]
    with shop.scope():
        assert models.Category.objects.count() == 0


def test_transactional_scope_commits_then_flushes(shop: fire.Remote, dj: DjangoRemote):
    db = shop.module("django.db")
    factories = shop.module("shop.factories")
    models = shop.module("shop.models")
    with shop.scope(transactional=True):
        assert db.connection.in_atomic_block is False
        factories.ProductFactory(name="committed")
        assert db.transaction.get_autocommit() is True
        names = [
            p["name"]
            for p in requests.get(dj.live_url + "/products/", timeout=10).json()["products"]
        ]
        assert names == ["committed"]
    with shop.scope():
        assert models.Product.objects.count() == 0


def test_atomic_view_becomes_a_savepoint(shop: fire.Remote, dj: DjangoRemote):
    models = shop.module("shop.models")
    with shop.scope():
        response = requests.post(dj.live_url + "/products/create-atomic/", timeout=10)
        assert response.status_code == 201
        assert models.Product.objects.get().id == response.json()["id"]
    with shop.scope():
        assert models.Product.objects.count() == 0


def test_failing_view_rolls_back_only_its_own_work(shop: fire.Remote, dj: DjangoRemote):
    factories = shop.module("shop.factories")
    models = shop.module("shop.models")
    with shop.scope():
        factories.ProductFactory(name="before")
        assert requests.post(dj.live_url + "/products/fail/", timeout=10).status_code == 500
        assert requests.post(dj.live_url + "/products/db-error/", timeout=10).status_code == 500
        # the test's transaction is still usable, and only the failed requests' rows are gone
        assert list(models.Product.objects.values_list("name", flat=True)) == ["before"]
        assert not models.Category.objects.filter(name="duplicate").exists()
        assert requests.post(dj.live_url + "/products/create/", timeout=10).status_code == 201
        assert models.Product.objects.count() == 2


def test_a_call_that_raises_a_database_error_keeps_the_test_usable(shop: fire.Remote):
    factories = shop.module("shop.factories")
    models = shop.module("shop.models")
    integrity_error = shop.exception("django.db.utils.IntegrityError")
    with shop.scope():
        factories.CategoryFactory(name="unique")
        with pytest.raises(integrity_error) as raised:
            factories.CategoryFactory(name="unique")
        assert raised.value.remote_type == "django.db.utils.IntegrityError"
        assert models.Category.objects.count() == 1


def test_a_call_that_swallows_a_database_error_is_rolled_back_and_the_test_goes_on(
    shop: fire.Remote,
):
    # Django marks the connection needs_rollback when save() fails inside an atomic
    # block, even if the caller catches the error: the call's savepoint is rolled back
    # on the way out, as Django's own atomic() would, and the test's transaction is usable.
    tasks = shop.module("shop.tasks")
    models = shop.module("shop.models")
    with shop.scope():
        models.Category.objects.create(name="before")
        assert tasks.create_then_swallow_integrity_error("twice") == "swallowed"
        assert list(models.Category.objects.values_list("name", flat=True)) == ["before"]


def test_a_savepoint_is_opened_only_for_calls_that_query(shop: fire.Remote):
    trace = shop.module("shop.sql_trace")
    op = shop.module("operator")
    models = shop.module("shop.models")
    with shop.scope():
        trace.start()
        assert op.add(1, 2) == 3
        assert "operator" in repr(op)
        assert trace.stop() == []  # no query: no savepoint, no SQL at all
        trace.start()
        assert models.Product.objects.count() == 0
        sent = " | ".join(trace.stop())
    # The query came inside a savepoint of its own, released after it.
    assert sent.index("SAVEPOINT") < sent.index("COUNT(") < sent.index("RELEASE SAVEPOINT"), sent


def test_a_scope_can_end_without_waiting_for_the_server(shop: fire.Remote):
    factories = shop.module("shop.factories")
    models = shop.module("shop.models")
    counter = Counter(shop)
    shop.begin_scope()
    factories.ProductFactory()
    before = counter.count
    assert shop.end_scope(wait=False) is None
    assert counter.count == before  # sent, not waited for
    assert models.Product.objects.count() == 0  # the next reply comes after the rollback


def test_a_scope_end_that_fails_without_waiting_is_raised_with_the_next_reply(
    shop: fire.Remote,
):
    shop.end_scope(wait=False)  # no scope is open: the server refuses
    with pytest.raises(fire.FireError, match="end_scope without begin_scope") as raised:
        shop.ping()
    assert "'end_scope', sent earlier without waiting" in str(raised.value.__notes__)
    shop.ping()  # reported once


def _depth(remote: fire.Remote) -> int:
    return remote.info()["extensions"]["scopes"]["depth"]


def _scopes(remote: fire.Remote) -> dict:
    return remote.info()["extensions"]["scopes"]


def test_a_scope_asked_for_ahead_is_opened_then_taken_by_the_begin(shop: fire.Remote):
    shop.begin_next_scope(data_changes=True)
    assert _scopes(shop)["ahead"] is True  # opened, not the test's yet (info leaves it)
    assert _depth(shop) == 0
    assert shop.begin_scope(data_changes=True) == 1  # taken
    assert _scopes(shop)["ahead"] is False
    shop.module("shop.factories").ProductFactory(name="ahead")
    assert _depth(shop) == 1
    assert shop.end_scope() == 0
    with shop.scope():
        assert shop.module("shop.models").Product.objects.count() == 0


def test_a_begin_with_other_arguments_closes_the_scope_asked_for_ahead(shop: fire.Remote):
    shop.begin_next_scope()
    assert shop.begin_scope(on_commit="capture") == 1  # not nested in the one asked for
    assert shop.end_scope() == 0


def test_any_other_request_closes_the_scope_asked_for_ahead_first(shop: fire.Remote):
    shop.begin_next_scope()
    with pytest.raises(fire.FireError, match="outside a test scope"):
        shop.module("shop.factories").ProductFactory(name="stray")
    assert shop.info()["extensions"]["scopes"]["holder"] is None


def test_ending_a_scope_closes_the_scope_asked_for_ahead_first(shop: fire.Remote):
    shop.begin_scope("class")
    shop.begin_next_scope()
    assert shop.end_scope() == 0


def test_a_scope_asked_for_ahead_while_another_client_held_the_server_is_begun_in_turn(
    shop_server, shop: fire.Remote
):
    with fire.connect(shop_server.address, name="second") as second:
        second.begin_scope()
        shop.begin_next_scope()  # opens nothing: the server is not free for it
        second.end_scope()
    assert shop.begin_scope(wait=10) == 1
    assert shop.end_scope() == 0


def test_on_commit_callbacks_run_after_the_request(shop: fire.Remote, dj: DjangoRemote):
    tasks = shop.module("shop.tasks")
    with shop.scope():
        assert (
            requests.post(
                dj.live_url + "/products/notify/", json={"name": "lamp"}, timeout=10
            ).status_code
            == 201
        )
        tasks.notify_on_commit("from a fire call")
        subjects = [m["subject"] for m in dj.mail_outbox()]
        assert subjects == ["new product lamp", "from a fire call"]
    with shop.scope():
        assert dj.mail_outbox() == []


def test_on_commit_callbacks_can_be_captured(shop: fire.Remote, dj: DjangoRemote):
    tasks = shop.module("shop.tasks")
    with shop.scope(on_commit="capture"):
        tasks.notify_on_commit("captured")
        assert dj.mail_outbox() == []
        assert len(dj.captured_on_commit()) == 1
        assert dj.run_captured_on_commit() == 1
        assert [m["subject"] for m in dj.mail_outbox()] == ["captured"]
        assert dj.captured_on_commit() == []


def test_one_client_holds_the_server_at_a_time(shop_server, shop: fire.Remote):
    models = shop.module("shop.models")
    with fire.connect(shop_server.address, name="second") as second:
        with shop.scope(), pytest.raises(ServerBusy, match=r"held by .*pid"):
            second.begin_scope(wait=0.3)
        with second.scope():
            assert second.module("shop.models").Product.objects.count() == 0
    with shop.scope():
        assert models.Product.objects.count() == 0


def test_a_killed_client_leaves_nothing_behind(shop_server, shop: fire.Remote):
    script = textwrap.dedent(f"""
        import os, signal, fire
        remote = fire.connect({shop_server.address!r})
        remote.begin_scope()
        remote.module("shop.factories").ProductFactory(name="orphan")
        print("made", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == -9 and "made" in result.stdout, result.stderr
    start = time.monotonic()
    shop.begin_scope(wait=10)
    try:
        assert time.monotonic() - start < 10
        assert shop.module("shop.models").Product.objects.count() == 0
    finally:
        shop.end_scope()


def test_factory_sequences_reset_and_random_reseed(shop: fire.Remote, dj: DjangoRemote):
    factories = shop.module("shop.factories")
    with shop.scope():
        dj.reset_sequences()
        assert factories.UserFactory().username == "user0"
        dj.reseed_random(42)
        first = factories.ProductFactory().name
    with shop.scope():
        assert dj.reset_sequences() >= 3
        assert factories.UserFactory().username == "user0"
        dj.reseed_random(42)
        assert factories.ProductFactory().name == first


def test_settings_override_inside_a_block(shop: fire.Remote, dj: DjangoRemote):
    url = dj.live_url + "/settings/greeting/"
    with shop.scope():
        with dj.settings(GREETING="bonjour"):
            assert requests.get(url, timeout=10).json() == {"greeting": "bonjour"}
        assert requests.get(url, timeout=10).json() == {"greeting": "hello"}
        dj.settings(GREETING="left on").__enter__()  # not restored by the test…
    with shop.scope():  # …but by the end of its scope
        assert requests.get(url, timeout=10).json() == {"greeting": "hello"}


def test_static_files_are_served(dj: DjangoRemote):
    response = requests.get(dj.live_url + "/static/shop/site.css", timeout=10)
    assert response.status_code == 200
    assert "color: red" in response.text


def test_info_names_the_databases(shop_server, shop: fire.Remote):
    scopes = shop.info()["extensions"]["scopes"]
    assert scopes["isolation"] == "transaction"
    vendor = "postgresql" if shop_server.backend == "postgres" else "sqlite"
    assert scopes["databases"] == {"default": vendor, "other": vendor}
