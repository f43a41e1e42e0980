"""A PostgreSQL backend of the server terminated (issue 23): one test fails, the run goes on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import fire
from fire.runners.spawn import SpawnedServer

from ..conftest import spawn_shop

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_shop() -> Iterator[SpawnedServer]:
    server = spawn_shop("postgres", suffix="lost")  # beside the session's own server
    yield server
    server.stop()


def terminate(remote: fire.Remote) -> None:
    """End the server's 'default' backend from its own side (pg_terminate_backend)."""
    db = remote.module("django.db")
    pid = db.connection.connection.info.backend_pid
    psycopg = remote.module("psycopg")
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_backend_terminated_mid_test_fails_that_test_only(pg_shop: SpawnedServer):
    with fire.connect(pg_shop.address, name="shop", timeout=20) as shop:
        factories = shop.module("shop.factories")
        models = shop.module("shop.models")
        with pytest.raises(fire.RemoteError) as lost, shop.scope():
            factories.ProductFactory(name="before")
            terminate(shop)
            models.Product.objects.count()
        notes = "\n".join(getattr(lost.value, "__notes__", []))
        assert "the server lost its database connection (alias 'default')" in notes, notes
        # the next test passes, and nothing of the aborted one survived
        with shop.scope():
            factories.ProductFactory(name="next")
            assert list(models.Product.objects.values_list("name", flat=True)) == ["next"]
        with shop.scope():
            assert models.Product.objects.count() == 0
            assert shop.module("django.db").connection.is_usable()


def test_a_backend_terminated_between_tests_costs_no_test(pg_shop: SpawnedServer):
    with fire.connect(pg_shop.address, name="shop", timeout=20) as shop:
        factories = shop.module("shop.factories")
        models = shop.module("shop.models")
        with shop.scope():
            factories.ProductFactory(name="first")
        with shop.scope("class"):
            pass
        terminate(shop)
        with shop.scope():
            factories.ProductFactory(name="second")
            assert list(models.Product.objects.values_list("name", flat=True)) == ["second"]
        with shop.scope():
            assert models.Product.objects.count() == 0


LOST_TESTS = """
import pytest

def terminate(shop):
    pid = shop.module("django.db").connection.connection.info.backend_pid
    with shop.module("psycopg").connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

def test_loses_its_connection(fire_remotes):
    shop = fire_remotes["shop"]
    shop.module("shop.factories").ProductFactory(name="lost")
    terminate(shop)
    shop.module("shop.models").Product.objects.count()

@pytest.fixture
def unreadable(fire_remotes):
    # the server's capture raises a TypeError when read (a RemoteError here)
    shop = fire_remotes["shop"]
    builtins, capture = shop.module("builtins"), shop.module("djfire.changes").ChangeCapture
    read = capture.read
    builtins.setattr(capture, "read", None)
    yield
    builtins.setattr(capture, "read", read)

def test_changes_unreadable(fire_remotes, unreadable):
    fire_remotes["shop"].module("shop.factories").ProductFactory(name="unread")
    assert False

def test_innocent(fire_remotes):
    shop = fire_remotes["shop"]
    shop.module("shop.factories").ProductFactory(name="kept")
    assert shop.module("shop.models").Product.objects.count() == 1
"""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_plugin_reports_the_changes_unread_and_runs_on(
    pytester: pytest.Pytester, pg_shop: SpawnedServer
):
    pytester.makepyfile(test_lost=LOST_TESTS)
    result = pytester.runpytest(f"--fire-servers=shop={pg_shop.address}", "-p", "no:cacheprovider")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*the server lost its database connection (alias 'default') during this test*",
            "*fire data changes*",
            "*could not be read: the server lost its database connection (alias*",
            "*_ test_changes_unreadable _*",
            "*fire data changes*",
            "*could not be read: *'NoneType' object is not callable*",
        ]
    )


def test_a_class_scope_that_lost_its_transaction_commits_nothing(pg_shop: SpawnedServer):
    with fire.connect(pg_shop.address, name="shop", timeout=20) as shop:
        factories = shop.module("shop.factories")
        models = shop.module("shop.models")
        with shop.scope("class"):
            with pytest.raises(fire.RemoteError), shop.scope():
                terminate(shop)
                models.Product.objects.count()
            factories.CategoryFactory(name="after the loss, in the class")
            with shop.scope():
                factories.ProductFactory(name="next test in the class")
        with shop.scope():
            assert models.Category.objects.count() == 0
            assert models.Product.objects.count() == 0
