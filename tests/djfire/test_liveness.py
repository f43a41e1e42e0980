"""Liveness over TCP (issue 23): links cut and restored, silent clients, stalled servers.

The shop service runs on CURVE TCP behind a real relay (`tests.relay`) that a test cuts,
freezes and restores; a stalled server is a real SIGSTOP. The servers run with a short
liveness time (`LIVENESS`) so that the tests stay fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

import fire
from fire.net.curve import ClientKeys, create_key_pair, read_public, read_secret
from fire.net.transport import LinkLost
from fire.runners import supervise
from fire.runners.spawn import SpawnedServer
from fire.server.liveness import heartbeat_options

from ..conftest import MANAGE, scratch_dir, spawn_shop
from ..relay import Relay

LIVENESS = 2.0
#: What a test that lost its scope with the link is told (either way it learns it).
ROLLED_BACK = "test scopes were rolled back and its references are gone"
#: A bound on "it ends at all" for waits the liveness time should end (not a measure).
GENEROUS = 15.0


class TcpShop:
    """The shop on CURVE TCP (sqlite file), started with ``--liveness LIVENESS``."""

    def __init__(self, directory: Path, liveness: float = LIVENESS) -> None:
        _, server_secret = create_key_pair(directory / "server", "shop")
        _, self.client_secret = create_key_pair(directory / "clients", "ci")
        self.server_public = directory / "server" / "shop.key"
        public, secret = read_secret(self.client_secret)
        self.keys = ClientKeys(public, secret, read_public(self.server_public))
        env = {**os.environ, "DJFIRE_TEST_DB": "sqlite-file", "DJFIRE_TEST_DIR": str(directory)}
        argv = [sys.executable, str(MANAGE), "runfireserver", "tcp://127.0.0.1:0"]
        argv += [
            "--curve-secret",
            str(server_secret),
            "--curve-clients",
            str(directory / "clients"),
        ]
        argv += ["--liveness", str(liveness)]
        self.output = (directory / "output.txt").open("w")
        self.proc, line = supervise.start(
            argv, timeout=60, stderr=self.output, env=env, cwd=str(directory)
        )
        self.endpoint = (supervise.parse_ready(line) or ("", None))[0]
        self.port = int(self.endpoint.rpartition(":")[2])

    def connect(self, endpoint: str | None = None, timeout: float = 20) -> fire.Remote:
        return fire.connect(endpoint or self.endpoint, curve=self.keys, timeout=timeout)

    def stop(self) -> None:
        supervise.stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.output.close()


@pytest.fixture(scope="module")
def tcp_shop() -> Iterator[TcpShop]:
    shop = TcpShop(Path(scratch_dir("fire-db-")))
    yield shop
    shop.stop()


@pytest.fixture
def relay(tcp_shop: TcpShop) -> Iterator[Relay]:
    relay = Relay(("127.0.0.1", tcp_shop.port))
    yield relay
    relay.close()


def depth(remote: fire.Remote) -> tuple[int, str | None]:
    """The server's open scopes (of whoever holds it) and its holder."""
    scopes = remote.info()["extensions"]["scopes"]
    return scopes["depth"], scopes["holder"]


def products(remote: fire.Remote) -> int:
    return int(remote.module("shop.models").Product.objects.count())


def test_a_link_cut_and_restored_between_tests_is_usable_at_once(
    tcp_shop: TcpShop, relay: Relay
) -> None:
    with tcp_shop.connect(relay.endpoint) as shop:
        with shop.scope():
            shop.module("shop.factories").ProductFactory(name="before")
        relay.cut()
        relay.restore()
        with shop.scope():  # a new session, opened on the way: the test does not see it
            shop.module("shop.factories").ProductFactory(name="after")
            assert products(shop) == 1
        assert depth(shop) == (0, None)


def test_a_link_cut_mid_test_fails_that_test_with_its_scope_rolled_back(
    tcp_shop: TcpShop, relay: Relay
) -> None:
    with tcp_shop.connect(relay.endpoint) as shop:
        factories = shop.module("shop.factories")
        shop.begin_scope()
        factories.ProductFactory(name="cut off")
        relay.cut()
        relay.restore()
        with pytest.raises(fire.ServerUnavailable) as lost:
            factories.ProductFactory(name="after the cut")
        # "lost this connection's session", or, when the request went out over the old
        # link just before it dropped, "was lost while waiting for a reply" (`LinkLost`)
        message = str(lost.value)
        assert ROLLED_BACK in message, message
        shop.end_scope(wait=False)  # the runner's end: that scope is gone, nothing is sent
        with shop.scope():
            assert products(shop) == 0
            shop.module("shop.factories").ProductFactory(name="next test")
        with pytest.raises(fire.FireError, match="its session was closed"):
            factories.ProductFactory(name="an object of the old session")
        assert depth(shop) == (0, None)


def test_a_class_scope_lost_with_the_link_fails_its_tests_until_it_ends(
    tcp_shop: TcpShop, relay: Relay
) -> None:
    with tcp_shop.connect(relay.endpoint) as shop:
        shop.begin_scope("class")
        shop.module("shop.factories").ProductFactory(name="class data")
        relay.cut()
        relay.restore()
        with pytest.raises(fire.ServerUnavailable, match=ROLLED_BACK):
            shop.begin_scope()  # the class's next test
        with pytest.raises(fire.ServerUnavailable, match="a scope still open around this one"):
            shop.begin_scope()  # and the one after
        assert shop.end_scope() == 0  # the class ends: nothing to send
        with shop.scope():
            assert products(shop) == 0


def test_a_silent_client_loses_its_scope_within_the_liveness_time(
    tcp_shop: TcpShop, relay: Relay
) -> None:
    with tcp_shop.connect(relay.endpoint) as silent, tcp_shop.connect() as other:
        silent.begin_scope()
        silent.module("shop.factories").ProductFactory(name="left behind")
        relay.freeze()  # half-open: nothing closes, nothing answers
        start = time.monotonic()
        with other.scope(wait=GENEROUS):  # in line until the silent client is dropped
            took = time.monotonic() - start
            assert products(other) == 0
        print(f"a silent client lost the server after {took:.1f} s (liveness {LIVENESS:g} s)")
        relay.restore()
        with pytest.raises(fire.ServerUnavailable, match=ROLLED_BACK):  # the rest of its test
            silent.ping()
        assert silent.end_scope() == 0  # the runner's end: that scope went with the session
        with silent.scope():  # its next test runs
            assert products(silent) == 0


#: A client in its own process: it opens a scope, writes a row, says so, and waits.
CLIENT_IN_A_SCOPE = """
import sys, time
import fire
from fire.net.curve import ClientKeys, read_public, read_secret
endpoint, secret, server_key = sys.argv[1:4]
public, key = read_secret(secret)
remote = fire.connect(endpoint, curve=ClientKeys(public, key, read_public(server_key)))
remote.begin_scope()
remote.module("shop.factories").ProductFactory(name="frozen")
print("in a scope", flush=True)
time.sleep(600)
"""


def test_a_client_stopped_by_sigstop_loses_its_scope_within_the_liveness_time(
    tcp_shop: TcpShop,
) -> None:
    argv = [sys.executable, "-c", CLIENT_IN_A_SCOPE, tcp_shop.endpoint]
    argv += [str(tcp_shop.client_secret), str(tcp_shop.server_public)]
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None
        assert client.stdout.readline() == "in a scope\n"
        client.send_signal(signal.SIGSTOP)  # its link stays open, and says nothing
        with tcp_shop.connect() as other, other.scope(wait=GENEROUS):
            assert products(other) == 0
    finally:
        client.send_signal(signal.SIGCONT)
        client.kill()
        client.wait(timeout=30)
        if client.stdout is not None:
            client.stdout.close()


@pytest.fixture
def stoppable_shop() -> Iterator[SpawnedServer]:
    server = spawn_shop("sqlite-file", "--liveness", str(LIVENESS))
    yield server
    if server.pid is not None:
        os.kill(server.pid, signal.SIGCONT)
    server.stop()


def test_begins_abandoned_while_the_server_was_stopped_open_no_scope(
    stoppable_shop: SpawnedServer,
) -> None:
    assert stoppable_shop.pid is not None
    with fire.connect(stoppable_shop.address, timeout=1) as shop:
        shop.begin_scope()  # a test, as the runners run it
        shop.end_scope(wait=False)
        shop.begin_next_scope()
        os.kill(stoppable_shop.pid, signal.SIGSTOP)
        try:
            for _ in range(3):  # each next test's begin gives up
                with pytest.raises(fire.ServerUnavailable, match="no reply"):
                    shop.begin_scope(wait=0.5)
        finally:
            os.kill(stoppable_shop.pid, signal.SIGCONT)
        shop.timeout = 20
        with shop.scope(transactional=True):
            assert depth(shop)[0] == 1
        with shop.scope():
            assert depth(shop)[0] == 1
        assert depth(shop) == (0, None)


def test_the_liveness_time_is_a_server_option() -> None:
    result = subprocess.run(
        [sys.executable, str(MANAGE), "runfireserver", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "DJFIRE_TEST_DB": "sqlite"},
        timeout=60,
    )
    assert "--liveness SECONDS" in result.stdout, result.stdout


def test_the_heartbeats_drop_a_silent_link_within_the_liveness_time() -> None:
    options = heartbeat_options(LIVENESS)
    ping, answer = options[zmq.HEARTBEAT_IVL], options[zmq.HEARTBEAT_TIMEOUT]
    assert ping + answer == options[zmq.HEARTBEAT_TTL] == LIVENESS * 1000
    with pytest.raises(fire.FireError, match=r"liveness must be between 0\.3 and 6553 seconds"):
        heartbeat_options(0)


def test_a_short_client_heartbeat_timeout_drops_a_silent_link_before_the_call_s_timeout() -> None:
    """The client's own heartbeat timeout (`fire.connect`'s `heartbeat_timeout`, the
    ``fire_heartbeat_timeout`` ini option), for a server whose liveness time is long: a
    call over a link gone silent fails as a lost link within it, not as a timeout (the
    default, 30 s, is the call's timeout here)."""
    shop = TcpShop(Path(scratch_dir("fire-db-")), liveness=60)  # the server waits 60 s
    relay = Relay(("127.0.0.1", shop.port))
    try:
        with fire.connect(
            relay.endpoint, curve=shop.keys, timeout=2 * GENEROUS, heartbeat_timeout=1
        ) as remote:
            remote.begin_scope()  # a test's: its call fails with the link, not tried again
            relay.freeze()  # half-open: nothing closes, nothing answers
            with pytest.raises(LinkLost, match=ROLLED_BACK):
                remote.module("time").sleep(0)
    finally:
        relay.close()
        shop.stop()
