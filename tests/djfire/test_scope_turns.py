"""Scopes that end while the connections are held, clients taking turns, scopes asked ahead.

Issue 21, defects 1, 4, 5, 8 and 9, each against real runfireserver processes and real
HTTP, on SQLite (what is tested here is the server's bookkeeping, the same on every
backend; tests/djfire/test_isolation.py runs the scopes themselves on each backend).
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

import fire
from djfire.client import DjangoRemote
from fire.errors import FireError, ServerBusy
from fire.spawn import SpawnedServer

from ..conftest import spawn_shop


@pytest.fixture(scope="module")
def impatient_server() -> Iterator[SpawnedServer]:
    """A server whose calls, requests and scope ends wait at most 0.5 s for the connections."""
    server = spawn_shop("sqlite", "--lock-timeout", "0.5")
    yield server
    server.stop()


def _scopes(remote: fire.Remote) -> dict:
    return remote.info()["extensions"]["scopes"]


def _until(condition, what: str, seconds: float = 10.0) -> None:
    """Wait for `condition()` (a state another process reaches), failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


class _StalledBody:
    """A POST whose body stops half-way: its view holds the connections while it reads."""

    def __init__(self, live_url: str, path: str) -> None:
        parts = urlsplit(live_url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        body = b'{"name": "stalled"}'
        self.rest = body[5:]
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )

    def finish(self) -> bytes:
        self.sock.sendall(self.rest)
        answer = self.sock.recv(65536)
        self.sock.close()
        return answer


def _holding(server: SpawnedServer, what: str) -> bool:
    """Whether the server's connections are held by `what` (its info says)."""
    with fire.connect(server.address, name="observer", timeout=20) as observer:
        scopes = _scopes(observer)
    if "connections" not in scopes:  # a server that does not say: give it time
        time.sleep(0.5)
        return True
    return what in (scopes["connections"] or "")


def _in_line(observer: fire.Remote, count: int) -> bool:
    """Whether `count` clients wait in line for the server (its info says)."""
    scopes = _scopes(observer)
    if "waiting" not in scopes:  # a server that does not say: give them time
        time.sleep(0.5)
        return True
    return scopes["waiting"] == count


# Defect 1
def test_a_scope_end_behind_a_stalled_request_fails_naming_it_and_rolls_back_later(
    impatient_server: SpawnedServer,
):
    with fire.connect(impatient_server.address, name="shop", timeout=20) as shop:
        url = DjangoRemote(shop).live_url
        models = shop.module("shop.models")
        shop.begin_scope()
        shop.module("shop.factories").ProductFactory(name="the test's own")
        stalled = _StalledBody(url, "/products/create/")
        _until(
            lambda: _holding(impatient_server, "HTTP POST /products/create/ has held"),
            "the stalled request never held the connections",
        )
        # As the runners end a test: without waiting, the next test's scope asked ahead.
        shop.end_scope(wait=False, of="test test_one")
        shop.begin_next_scope()
        with pytest.raises(ServerBusy) as raised:
            shop.begin_scope()  # the next test's begin reads the end's failure
        message = str(raised.value)
        assert "end_scope from" in message
        assert "HTTP POST /products/create/ has held them for" in message
        assert "rolled back" in message
        # Read in the next test's set-up, it names the test whose scope it was.
        assert "'end_scope of test test_one', sent earlier without waiting" in str(
            raised.value.__notes__
        )
        assert b"201" in stalled.finish().split(b"\r\n")[0]  # the holder lets go
        # No scope is left open, none nests in another, and nothing survives.
        assert shop.begin_scope() == 1
        assert models.Product.objects.count() == 0
        assert shop.end_scope() == 0
        shop.ping()  # no failure left unread


def test_a_scope_end_waited_for_behind_a_slow_view_fails_then_everything_is_rolled_back(
    impatient_server: SpawnedServer,
):
    with fire.connect(impatient_server.address, name="shop", timeout=20) as shop:
        url = DjangoRemote(shop).live_url
        models = shop.module("shop.models")
        shop.begin_scope()
        slow = threading.Thread(
            target=requests.post,
            args=(url + "/products/create-slowly/?seconds=2",),
            kwargs={"timeout": 30},
        )
        slow.start()
        _until(
            lambda: _holding(impatient_server, "HTTP POST /products/create-slowly/"),
            "the slow view never held the connections",
        )
        with pytest.raises(ServerBusy, match=r"end_scope from .* waited 0.5 s .*create-slowly"):
            shop.end_scope()
        assert _scopes(shop)["depth"] == 0  # ended all the same
        slow.join()
        with shop.scope():
            assert models.Product.objects.count() == 0  # the slow view's row went with it


# Defect 8
def test_a_client_with_a_short_timeout_is_told_what_holds_the_connections_within_it(
    sqlite_shop: SpawnedServer,
):
    # The server's own bound is 10 s; this client waits 2 s for a reply.
    with fire.connect(sqlite_shop.address, name="shop", timeout=2) as shop:
        url = DjangoRemote(shop).live_url
        models = shop.module("shop.models")
        with shop.scope():
            slow = threading.Thread(
                target=requests.post,
                args=(url + "/products/create-slowly/?seconds=4",),
                kwargs={"timeout": 30},
            )
            slow.start()
            _until(
                lambda: _holding(sqlite_shop, "HTTP POST /products/create-slowly/"),
                "the slow view never held the connections",
            )
            with pytest.raises(
                ServerBusy,
                match=r"waited 1.5 s .*HTTP POST /products/create-slowly/ has held them for",
            ):
                models.Product.objects.count()
            slow.join()
            assert models.Product.objects.count() == 1


# Defect 9
def test_a_late_request_runs_outside_the_next_test_s_scope_asked_ahead(
    sqlite_shop: SpawnedServer,
):
    with (
        fire.connect(sqlite_shop.address, name="shop", timeout=20) as shop,
        fire.connect(sqlite_shop.address, name="observer", timeout=20) as observer,
    ):
        url = DjangoRemote(shop).live_url
        models = shop.module("shop.models")
        shop.begin_scope()
        shop.end_scope(wait=False)
        shop.begin_next_scope()  # as the runners do, for the next test
        _until(lambda: _scopes(observer)["holder"] is not None, "no scope was asked ahead")
        # The last request of the test that ended arrives now.
        late = requests.post(url + "/products/create/", json={"name": "late"}, timeout=30)
        assert late.status_code == 201
        assert shop.begin_scope() == 1
        try:
            assert models.Product.objects.count() == 0
            response = requests.post(url + "/products/create/", json={"name": "own"}, timeout=30)
            assert response.status_code == 201  # the test's own requests run in its scope
            assert list(models.Product.objects.values_list("name", flat=True)) == ["own"]
        finally:
            shop.end_scope()


# Also: the scope asked ahead, and another thread's call
def test_a_call_from_another_thread_never_nests_the_test_s_scope(sqlite_shop: SpawnedServer):
    with fire.connect(sqlite_shop.address, name="shop", timeout=20) as shop:
        url = DjangoRemote(shop).live_url
        models = shop.module("shop.models")
        for _ in range(3):
            # A view outside any scope holds the connections: the scope asked ahead opens
            # late, while another thread's call (which closes it) and the test's begin
            # (which takes it) both come.
            slow = threading.Thread(
                target=requests.get,
                args=(url + "/products/create-slowly/?seconds=0.5",),
                kwargs={"timeout": 30},
            )
            slow.start()
            _until(
                lambda: _holding(sqlite_shop, "HTTP GET /products/create-slowly/"),
                "the slow view never held the connections",
            )
            shop.begin_next_scope()
            other = threading.Thread(target=models.Product.objects.count)
            other.start()
            time.sleep(0.1)  # the other thread's call first
            assert shop.begin_scope() == 1
            other.join()
            slow.join()
            assert _scopes(shop)["depth"] == 1
            assert shop.end_scope() == 0


# Defect 4
def test_a_transactional_scope_is_never_begun_ahead(sqlite_shop: SpawnedServer):
    with fire.connect(sqlite_shop.address, name="shop", timeout=20) as shop:
        with pytest.raises(FireError, match="never begun ahead"):
            shop.call_extension("begin_scope", "test", transactional=True, ahead=True)
        shop.begin_next_scope(transactional=True)  # asks nothing
        assert _scopes(shop)["holder"] is None


def test_a_skipped_transactional_test_costs_nothing_and_flushes_no_seeded_rows(
    pytester: pytest.Pytester, tmp_path: Path
):
    server = spawn_shop("sqlite-file", data_dir=str(tmp_path))
    try:
        # A row committed outside any test, as a data migration seeds one.
        with sqlite3.connect(tmp_path / "test_shop.sqlite3") as db:
            db.execute("INSERT INTO shop_category (name) VALUES ('seeded')")
        pytester.makepyfile(
            test_seeded="""
            import pytest

            def seeded(fire_remote):
                categories = fire_remote("shop").module("shop.models").Category.objects
                return list(categories.values_list("name", flat=True))

            def test_before(fire_remote):
                assert seeded(fire_remote) == ["seeded"]

            @pytest.mark.skip(reason="not today")
            @pytest.mark.fire(transactional=True)
            def test_skipped(fire_remote):
                pass

            def test_after(fire_remote):
                assert seeded(fire_remote) == ["seeded"]
            """
        )
        result = pytester.runpytest(f"--fire-servers=shop={server.address}", "-p", "no:randomly")
        result.assert_outcomes(passed=2, skipped=1)
    finally:
        server.stop()


# Defect 5
def test_clients_waiting_for_the_server_are_served_first_come_first_served(
    sqlite_shop: SpawnedServer,
):
    order: list[str] = []
    with (
        fire.connect(sqlite_shop.address, name="holder", timeout=20) as holder,
        fire.connect(sqlite_shop.address, name="x", timeout=20) as x,
        fire.connect(sqlite_shop.address, name="y", timeout=20) as y,
        fire.connect(sqlite_shop.address, name="z", timeout=20) as z,
        fire.connect(sqlite_shop.address, name="observer", timeout=20) as observer,
    ):
        holder.begin_scope()
        threads: list[threading.Thread] = []
        for name, remote in (("x", x), ("y", y), ("z", z)):

            def turn(remote: fire.Remote = remote, name: str = name) -> None:
                remote.begin_scope(wait=60)
                order.append(name)
                remote.module("shop.factories").ProductFactory()
                remote.end_scope()

            threads.append(threading.Thread(target=turn))
            threads[-1].start()
            count = len(threads)
            _until(lambda: _in_line(observer, count), f"{name} never waited in line")  # noqa: B023
        holder.end_scope()
        holder.begin_scope(wait=60)  # at once: behind the three already in line
        order.append("holder")
        holder.end_scope()
        for thread in threads:
            thread.join()
    assert order == ["x", "y", "z", "holder"]


def test_a_waiting_client_gets_server_busy_after_its_own_wait_naming_the_holder(
    sqlite_shop: SpawnedServer,
):
    with (
        fire.connect(sqlite_shop.address, name="holder", timeout=20) as holder,
        fire.connect(sqlite_shop.address, name="patient", timeout=20) as patient,
        fire.connect(sqlite_shop.address, name="impatient", timeout=20) as impatient,
    ):
        holder.begin_scope()
        patient_depth: list[int] = []
        waiting = threading.Thread(
            target=lambda: patient_depth.append(patient.begin_scope(wait=60))
        )
        waiting.start()
        _until(lambda: _in_line(holder, 1), "the first client never waited")
        started = time.monotonic()
        with pytest.raises(ServerBusy, match=r"waited its 0.5 s in line: .*held by .*pid"):
            impatient.begin_scope(wait=0.5)
        assert time.monotonic() - started >= 0.5  # not before its own wait ran out
        holder.end_scope()
        waiting.join()
        assert patient_depth == [1]  # the first in line got the server
        assert patient.end_scope() == 0
