"""Reference lifetime: releases ride on the next request; a gone client's references are freed.

In memory (a server's dispatcher in this process); a killed client and a stopped server
are in test_failures.py.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any

import pytest
from servers import ExchangeCounter

import fire
from fire.extensions import Scopes
from fire.net.loopback import Loopback
from fire.server.dispatch import Dispatcher


@pytest.fixture
def remote(memory_remote: fire.Remote) -> fire.Remote:
    """In memory (conftest.memory_remote): this module checks logic, not sockets."""
    return memory_remote


def test_dropped_proxies_are_released_with_the_next_request(
    remote: fire.Remote, helpers: Any, exchanges: ExchangeCounter
) -> None:
    before = remote.info()["refs"]
    things = [helpers.Thing(f"t{i}") for i in range(100)]
    assert remote.info()["refs"] >= before + 100
    del things
    gc.collect()
    with exchanges.counting():
        refs = remote.info()["refs"]
    assert exchanges.count == 1  # the releases travelled with the info request
    assert refs == before


def test_pending_paths_hold_no_server_reference(remote: fire.Remote, helpers: Any) -> None:
    before = remote.info()["refs"]
    paths = [helpers.Outer.Inner for _ in range(20)]
    assert remote.info()["refs"] == before
    assert all(fire.is_proxy(path) for path in paths)


def test_refs_stay_while_proxies_live(remote: fire.Remote, helpers: Any) -> None:
    thing = helpers.Thing("kept")
    gc.collect()
    remote.ping()
    remote.ping()
    assert thing.name == "kept"


def test_closed_client_references_are_freed(
    connect_memory: Callable[..., fire.Remote], remote: fire.Remote
) -> None:
    baseline = remote.info()["total_refs"]
    other = connect_memory()
    helpers = other.module("remote_helpers")
    things = [helpers.Thing(f"o{i}") for i in range(50)]
    assert remote.info()["total_refs"] >= baseline + 50
    other.close()
    assert remote.info()["total_refs"] == baseline
    del things, helpers  # dropping proxies of a closed connection is harmless
    gc.collect()


class Releaser:
    """Drops released objects on a thread of its own, as an extension guarding them may."""

    name = "releaser"

    def __init__(self) -> None:
        self.dropped: list[str] = []

    def operations(self) -> dict[str, Callable[..., Any]]:
        return {"dropped": lambda session: list(self.dropped)}

    def release_references(self, session: Any, objects: list[Any]) -> None:
        def drop() -> None:
            self.dropped.extend(sorted(type(o).__name__ for o in objects))
            objects.clear()

        thread = threading.Thread(target=drop)
        thread.start()
        thread.join()


def test_an_extension_drops_released_objects_where_it_says(
    connect_memory: Callable[..., fire.Remote],
) -> None:
    server = Loopback(Dispatcher, extensions=[Scopes(), Releaser()])
    with connect_memory(server) as remote:
        helpers = remote.module("remote_helpers")
        things = [helpers.Thing(str(i)) for i in range(3)]
        before = remote.info()["refs"]
        del things
        gc.collect()
        assert remote.info()["refs"] == before - 3  # gone from the session at once
        assert remote.call_extension("dropped") == ["Thing", "Thing", "Thing"]
        kept = helpers.Thing("kept")
    with connect_memory(server) as other:
        assert other.call_extension("dropped").count("Thing") == 4
        assert "module" in other.call_extension("dropped")  # a closing session's references too
    del kept
