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
from djfire import DjangoRemote
from fire.errors import FireError, ServerBusy
from fire.runners.spawn import SpawnedServer

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


def _slow_view_holding(
    server: SpawnedServer, url: str, seconds: float, method: str = "POST"
) -> threading.Thread:
    """A request to the slow view, in a thread, once it holds the server's connections."""
    request = requests.post if method == "POST" else requests.get
    slow = threading.Thread(
        target=request,
        args=(f"{url}/products/create-slowly/?seconds={seconds}",),
        kwargs={"timeout": 30},
    )
    slow.start()
    _until(
        lambda: _holding(server, f"HTTP {method} /products/create-slowly/"),
        "the slow view never held the connections",
    )
    return slow


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
        slow = _slow_view_holding(impatient_server, url, 2)
        with pytest.raises(
            ServerBusy, match=r"end_scope from .* waited 0.5 s .*create-slowly"
        ) as raised:
            shop.end_scope()
        # The server's own bound cut the wait: the fix is the server's option.
        assert "`runfireserver --lock-timeout SECONDS`" in str(raised.value)
        assert "reply timeout" not in str(raised.value)
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
            slow = _slow_view_holding(sqlite_shop, url, 4)
            with pytest.raises(
                ServerBusy,
                match=r"waited 1.5 s .*HTTP POST /products/create-slowly/ has held them for",
            ) as raised:
                models.Product.objects.count()
            # The fix it names is this client's, not the server's bound (10 s).
            message = str(raised.value)
            assert "this client's reply timeout of 2 s limits the wait" in message
            assert "the server's own bound is 10 s" in message
            assert "fire.connect(timeout=SECONDS)" in message
            assert "fire_timeout" in message
            assert "--lock-timeout" not in message
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
            slow = _slow_view_holding(sqlite_shop, url, 0.5, method="GET")
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


def test_a_test_marked_skip_or_skipif_is_never_asked_for_ahead(
    pytester: pytest.Pytester, sqlite_shop: SpawnedServer
):
    # What the server holds as each test's set-up begins, read on the run's own
    # connection (so after every request the previous test's teardown sent).
    pytester.makeconftest(
        """
        import pytest
        from pytest_fire.activate import active_runner

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_setup(item):
            remote = active_runner(item.config).connected("shop")
            if remote is not None:
                scopes = remote.info()["extensions"]["scopes"]
                with open("held.txt", "a") as held:
                    held.write(f"{item.name} {scopes['ahead']} {scopes['depth']}\\n")
            return (yield)
        """
    )
    pytester.makepyfile(
        test_skips="""
        import pytest

        def test_first(fire_remote):
            fire_remote("shop").ping()

        @pytest.mark.skip(reason="not today")
        def test_skipped(fire_remote):
            pass

        def test_second(fire_remote):
            fire_remote("shop").ping()

        @pytest.mark.skipif(True, reason="not here")
        def test_skipped_if(fire_remote):
            pass

        def test_third(fire_remote):
            fire_remote("shop").ping()
        """
    )
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}", "-p", "no:randomly")
    result.assert_outcomes(passed=3, skipped=2)
    held = (pytester.path / "held.txt").read_text().splitlines()
    assert held == [
        "test_first False 0",
        "test_skipped False 0",  # nothing asked ahead: no scope is open
        "test_second True 0",  # asked ahead (it runs): open, not taken yet
        "test_skipped_if False 0",
        "test_third True 0",
    ]


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


# Review of defects 5 and 9: a scope asked ahead never keeps the server from the line
def test_a_scope_asked_ahead_and_never_taken_lets_a_waiting_client_in(
    sqlite_shop: SpawnedServer,
):
    with (
        fire.connect(sqlite_shop.address, name="idle", timeout=20) as idle,
        fire.connect(sqlite_shop.address, name="waiting", timeout=20) as waiting,
    ):
        idle.begin_scope()
        idle.end_scope(wait=False)
        idle.begin_next_scope()  # for a test that never begins (skipped at run time)
        idle.sync()  # the worker goes on with tests that use no fire
        assert _scopes(idle)["ahead"] is True
        started = time.monotonic()
        assert waiting.begin_scope(wait=2) == 1  # at once: the scope asked ahead is closed
        assert time.monotonic() - started < 1.5
        scopes = _scopes(waiting)
        assert (scopes["depth"], scopes["ahead"]) == (1, False)  # the waiting client's
        # The idle client's next begin finds nothing to take: it waits in line.
        idle_depth: list[int] = []
        turn = threading.Thread(target=lambda: idle_depth.append(idle.begin_scope(wait=30)))
        turn.start()
        _until(lambda: _in_line(waiting, 1), "the idle client's begin never waited in line")
        models = waiting.module("shop.models")
        waiting.module("shop.factories").ProductFactory(name="waiting's")
        assert models.Product.objects.count() == 1
        assert waiting.end_scope() == 0
        turn.join()
        assert idle_depth == [1]
        assert idle.module("shop.models").Product.objects.count() == 0
        assert idle.end_scope() == 0


def test_a_begin_asked_ahead_never_waits_in_line(sqlite_shop: SpawnedServer):
    with (
        fire.connect(sqlite_shop.address, name="holder", timeout=20) as holder,
        fire.connect(sqlite_shop.address, name="early", timeout=20) as early,
    ):
        holder.begin_scope()
        early.begin_next_scope()  # while another client holds the server
        early.sync()
        assert _scopes(holder)["waiting"] == 0
        holder.end_scope()
        scopes = _scopes(holder)
        assert scopes["holder"] is None  # not handed to a client that runs no test yet
        assert scopes["waiting"] == 0
        assert early.begin_scope(wait=10) == 1  # its test's own begin: an ordinary one
        assert early.end_scope() == 0


# Review: a waiter whose wait ran out while the server's loop was busy
def test_a_waiter_whose_wait_ran_out_while_the_loop_was_busy_is_not_given_the_server(
    sqlite_shop: SpawnedServer,
):
    with (
        fire.connect(sqlite_shop.address, name="waiter", timeout=20) as waiter,
        fire.connect(sqlite_shop.address, name="observer", timeout=20) as observer,
    ):
        sleeper = fire.connect(sqlite_shop.address, name="sleeper", timeout=0.8)
        sleep = sleeper.module("time").sleep
        sleeper.begin_scope()
        outcome: list[object] = []

        def wait_in_line() -> None:
            try:
                outcome.append(waiter.begin_scope(wait=0.5))
            except ServerBusy as exc:
                outcome.append(exc)

        turn = threading.Thread(target=wait_in_line)
        turn.start()
        _until(lambda: _in_line(observer, 1), "the waiter never waited in line")
        # A call keeps the server's loop busy past the waiter's wait; its client gives
        # up and leaves meanwhile, so its scope ends as soon as the loop is free again.
        with pytest.raises(fire.ServerUnavailable):
            sleep(1.5)
        sleeper.close()
        turn.join()
        assert isinstance(outcome[0], ServerBusy), outcome
        assert "waited its 0.5 s in line" in str(outcome[0])
        _until(lambda: _scopes(observer)["holder"] is None, "an orphan holds the server")


# Review: the server's loop never stalls while clients wait for busy connections
def test_the_loop_answers_at_once_while_clients_wait_and_a_request_holds_the_connections(
    sqlite_shop: SpawnedServer,
):
    with (
        fire.connect(sqlite_shop.address, name="holder", timeout=2) as holder,
        fire.connect(sqlite_shop.address, name="waiter", timeout=20) as waiter,
        fire.connect(sqlite_shop.address, name="observer", timeout=20) as observer,
    ):
        url = DjangoRemote(holder).live_url
        holder.begin_scope()
        first = _slow_view_holding(sqlite_shop, url, 3)
        with pytest.raises(ServerBusy):
            holder.end_scope()  # its rollback waits for the slow view
        depth: list[int] = []
        turn = threading.Thread(target=lambda: depth.append(waiter.begin_scope(wait=30)))
        turn.start()
        _until(lambda: _in_line(observer, 1), "the waiter never waited in line")
        # Another request takes the connections as the first lets go: the server is
        # free, a client waits, and the connections stay busy for 3 s.
        second = threading.Thread(
            target=requests.get,
            args=(url + "/products/create-slowly/?seconds=3",),
            kwargs={"timeout": 30},
        )
        second.start()
        _until(
            lambda: _holding(sqlite_shop, "HTTP GET /products/create-slowly/"),
            "the second view never held the connections",
            seconds=15,
        )
        assert _scopes(observer)["waiting"] == 1
        slow = 0
        for _ in range(60):
            if observer.ping() > 0.02:
                slow += 1
            time.sleep(0.013)
        assert slow <= 6, f"{slow} of 60 pings took over 20 ms"
        first.join()
        second.join()
        turn.join()
        assert depth == [1]
        assert waiter.module("shop.models").Product.objects.count() == 0
        assert waiter.end_scope() == 0


# Review: a late request's mail never lands in the test that takes the scope asked ahead
def test_mail_of_a_late_request_never_lands_in_the_test_that_takes_the_scope(
    sqlite_shop: SpawnedServer,
):
    with (
        fire.connect(sqlite_shop.address, name="shop", timeout=20) as shop,
        fire.connect(sqlite_shop.address, name="observer", timeout=20) as observer,
    ):
        django = DjangoRemote(shop)
        shop.begin_scope()
        shop.end_scope(wait=False)
        shop.begin_next_scope()
        _until(lambda: _scopes(observer)["ahead"] is True, "no scope was asked ahead")
        late = threading.Thread(
            target=requests.get,
            args=(django.live_url + "/mail-slowly/?seconds=1",),
            kwargs={"timeout": 30},
        )
        late.start()
        _until(
            lambda: _holding(sqlite_shop, "HTTP GET /mail-slowly/"),
            "the late request never held the connections",
        )
        assert shop.begin_scope() == 1  # takes the scope asked ahead
        try:
            assert django.mail_outbox() == []
        finally:
            late.join()
            shop.end_scope()
