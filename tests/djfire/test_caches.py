"""Local-memory caches are put back at each scope's end, as the databases are rolled back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

import fire
from djfire import DjangoRemote
from fire.runners.spawn import SpawnedServer


@pytest.fixture
def shop(sqlite_shop: SpawnedServer) -> Iterator[fire.Remote]:
    with fire.connect(sqlite_shop.address, name="shop", timeout=20) as remote:
        yield remote


def visit(shop: fire.Remote) -> int:
    """One request to the view that counts its visits in the cache."""
    url = DjangoRemote(shop).live_url
    return requests.get(f"{url}/visits/", timeout=10).json()["visits"]


def test_what_a_test_cached_is_gone_in_the_next(shop: fire.Remote) -> None:
    cache = shop.module("django.core.cache").cache
    with shop.scope():
        cache.set("greeting", "hello")
        assert visit(shop) == 1  # a view's cache (the live server's threads) too
        assert visit(shop) == 2
        assert cache.get("visits") == 2
    with shop.scope():
        assert cache.get("greeting") is None
        assert visit(shop) == 1


def test_a_class_scope_s_cached_values_last_for_its_tests_and_go_with_it(
    shop: fire.Remote,
) -> None:
    cache = shop.module("django.core.cache").caches["default"]
    with shop.scope("class"):
        cache.set("class", "warm")
        with shop.scope():
            assert cache.get("class") == "warm"
            cache.set("class", "changed by a test")
            cache.set("test", 1)
        with shop.scope():
            assert cache.get("class") == "warm"
            assert cache.get("test") is None
    with shop.scope():
        assert cache.get("class") is None


def test_what_was_cached_outside_every_test_is_not_the_next_test_s(shop: fire.Remote) -> None:
    cache = shop.module("django.core.cache").cache
    cache.set("between tests", 1)  # a call outside any scope (or a late request)
    with shop.scope():
        assert cache.get("between tests") is None
