"""Socket permissions, live and stale socket files, CURVE over TCP, clean shutdown on signals."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import Keys, ServerProcess, curve_argv, run_fire, serve_argv

import fire
from fire.net.curve import read_public, read_secret, server_keys

AT_ONCE = 5.0  # far below the 30 s timeout: an answer, not a wait
LONG_TIMEOUT = 60.0  # an error before this is an answer, not a timeout
MiB = 1024 * 1024


# -- Unix sockets -----------------------------------------------------------------------


def socket_mode(path: Path | None) -> int:
    assert path is not None
    return stat.S_IMODE(os.stat(path).st_mode)


def test_socket_is_private_even_with_umask_000(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
) -> None:
    server = server_factory(serve_argv(tmp_dir / "open.sock"), umask=0)
    assert socket_mode(server.path) == 0o600
    with fire.connect(server.path) as remote:
        assert remote.ping() > 0


def test_shared_server_socket_is_private(shared_server: ServerProcess) -> None:
    assert socket_mode(shared_server.path) == 0o600


def test_second_server_on_a_live_address_refuses_and_the_first_keeps_serving(
    own_server: ServerProcess,
) -> None:
    with fire.connect(own_server.path) as remote:
        result = run_fire("serve", str(own_server.path))
        assert result.returncode != 0
        assert "another server is running there" in result.stderr
        assert str(own_server.path) in result.stderr
        assert remote.ping() > 0
    assert own_server.proc.poll() is None
    with fire.connect(own_server.path) as fresh:
        assert fresh.info()["pid"] == own_server.pid


def test_stale_socket_file_is_replaced(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
) -> None:
    path = tmp_dir / "stale.sock"
    first = server_factory(serve_argv(path))
    first.kill()
    assert path.exists()
    second = server_factory(serve_argv(path))
    with fire.connect(path) as remote:
        assert remote.info()["pid"] == second.pid
    assert socket_mode(path) == 0o600


def test_file_in_the_way_is_not_replaced(tmp_dir: Path) -> None:
    path = tmp_dir / "data.sock"
    path.write_text("precious")
    result = run_fire("serve", str(path))
    assert result.returncode == 2
    assert "a file that is not a socket is in the way" in result.stderr
    assert path.read_text() == "precious"


def test_too_long_socket_path_is_refused_with_a_message(tmp_dir: Path) -> None:
    result = run_fire("serve", str(tmp_dir / ("x" * 120)))
    assert result.returncode == 2
    assert "choose a shorter path" in result.stderr


# -- TCP: CURVE -------------------------------------------------------------------------


def server_said(server: ServerProcess, text: str) -> bool:
    """Whether the server logs `text` (its log line is written by now, or very soon)."""
    deadline = time.monotonic() + AT_ONCE
    while text not in server.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    return text in server.stderr()


def test_keys_command_writes_a_public_and_a_private_certificate(keys: Keys) -> None:
    assert socket_mode(keys.server_secret) == 0o600
    public, secret = read_secret(keys.server_secret)
    assert read_public(keys.server_public) == public
    assert len(public) == len(secret) == 40  # Z85 text of 32-byte keys
    assert "secret-key" not in keys.server_public.read_text()
    again = run_fire("keys", str(keys.server_secret.parent), "shop")
    assert again.returncode == 2
    assert "exists already" in again.stderr


def test_tcp_server_without_keys_refuses_to_start_naming_the_fix() -> None:
    result = run_fire("serve", "tcp://127.0.0.1:0")
    assert result.returncode == 2
    assert "a TCP server needs CURVE keys" in result.stderr
    assert "--curve-secret" in result.stderr
    assert "python -m fire keys" in result.stderr


def test_tcp_server_on_a_non_loopback_host_needs_allow_remote(keys: Keys) -> None:
    result = run_fire(*curve_argv(keys, "tcp://0.0.0.0:0")[2:])
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "--allow-remote" in result.stderr


def test_a_public_key_given_as_the_server_s_secret_is_refused(keys: Keys) -> None:
    argv = serve_argv("tcp://127.0.0.1:0", "--curve-secret", str(keys.server_public))
    result = run_fire(*argv[2:], "--curve-clients", str(keys.clients))
    assert result.returncode == 2
    assert "holds no secret key: give the NAME.key_secret file" in result.stderr


def test_a_secret_key_readable_by_others_is_refused(keys: Keys) -> None:
    keys.server_secret.chmod(0o644)
    result = run_fire(*curve_argv(keys, "tcp://127.0.0.1:0")[2:])
    assert result.returncode == 2
    assert f"chmod 600 {keys.server_secret}" in result.stderr


def test_server_keys_come_from_the_environment_when_not_given(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRE_SERVER_CURVE_SECRET", str(keys.server_secret))
    monkeypatch.setenv("FIRE_SERVER_CURVE_CLIENTS", str(keys.clients))
    found = server_keys(None, None)
    assert found is not None and found.public == read_public(keys.server_public)
    monkeypatch.delenv("FIRE_SERVER_CURVE_CLIENTS")
    with pytest.raises(fire.FireError, match="needs both its own key"):
        server_keys(None, None)


@pytest.fixture(params=["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def tcp_server(
    request: pytest.FixtureRequest, server_factory: Callable[..., ServerProcess], keys: Keys
) -> ServerProcess:
    """A CURVE server on a free loopback port, IPv4 and IPv6 (``tcp://[::1]:PORT``)."""
    host = "[::1]" if request.param == "::1" else request.param
    server = server_factory(curve_argv(keys, f"tcp://{host}:0"))
    assert server.endpoint.startswith(f"tcp://{host}:")
    return server


def test_tcp_with_allowed_keys_works(tcp_server: ServerProcess, keys: Keys) -> None:
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.info()["pid"] == tcp_server.pid
        assert remote.module("os").path.join("a", "b") == "a/b"


def test_tcp_without_keys_is_refused_by_the_client_naming_the_fix(
    tcp_server: ServerProcess,
) -> None:
    with pytest.raises(fire.FireError, match="needs CURVE keys: pass curve="):
        fire.connect(tcp_server.endpoint)


def test_a_client_key_the_server_does_not_allow_fails_at_once_on_both_sides(
    tcp_server: ServerProcess, keys: Keys
) -> None:
    stranger = keys.client(secret=keys.stranger_secret)
    with pytest.raises(fire.AuthenticationError, match="refused this client's CURVE key") as raised:
        fire.connect(tcp_server.endpoint, curve=stranger, timeout=LONG_TIMEOUT)
    assert stranger.public.decode() in str(raised.value)
    assert "--curve-clients directory" in str(raised.value)  # the fix
    assert server_said(
        tcp_server, f"refused a client whose CURVE public key {stranger.public.decode()}"
    )
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.info()["sessions"] == 1  # the refused client left no session


def test_a_client_key_copied_in_later_is_allowed_without_a_restart(
    tcp_server: ServerProcess, keys: Keys
) -> None:
    stranger = keys.client(secret=keys.stranger_secret)
    with pytest.raises(fire.AuthenticationError):
        fire.connect(tcp_server.endpoint, curve=stranger, timeout=LONG_TIMEOUT)
    shutil.copy(keys.stranger_secret.with_suffix(".key"), keys.clients)
    with fire.connect(tcp_server.endpoint, curve=stranger) as remote:
        assert remote.ping() > 0


def test_a_client_key_removed_is_refused_at_its_next_connection(
    tcp_server: ServerProcess, keys: Keys
) -> None:
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.ping() > 0  # allowed, and its key is now known to the server
    keys.client_public.unlink()  # revoked: docs/security.md
    with pytest.raises(fire.AuthenticationError, match="refused this client's CURVE key"):
        fire.connect(tcp_server.endpoint, curve=keys.client(), timeout=LONG_TIMEOUT)
    assert server_said(
        tcp_server, f"refused a client whose CURVE public key {keys.client().public.decode()}"
    )
    # A key changed in place (same name) is read again too: the old one is refused.
    shutil.copy(keys.stranger_secret.with_suffix(".key"), keys.client_public)
    with pytest.raises(fire.AuthenticationError):
        fire.connect(tcp_server.endpoint, curve=keys.client(), timeout=LONG_TIMEOUT)
    with fire.connect(tcp_server.endpoint, curve=keys.client(secret=keys.stranger_secret)) as r:
        assert r.ping() > 0


def test_a_key_rewritten_in_place_with_the_same_size_and_time_is_read_again(
    tcp_server: ServerProcess, keys: Keys
) -> None:
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.ping() > 0
    # Another client's key written over the allowed one: same file (inode), same size
    # (every CURVE public key has the same), and the same time, as a rewrite within the
    # clock's resolution leaves it. Only reading the file again can tell.
    before = keys.client_public.stat()
    replacement = keys.stranger_secret.with_suffix(".key").read_bytes()
    assert len(replacement) == before.st_size
    with keys.client_public.open("r+b") as file:
        file.write(replacement)
    os.utime(keys.client_public, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = keys.client_public.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    with pytest.raises(fire.AuthenticationError, match="refused this client's CURVE key"):
        fire.connect(tcp_server.endpoint, curve=keys.client(), timeout=LONG_TIMEOUT)
    with fire.connect(tcp_server.endpoint, curve=keys.client(secret=keys.stranger_secret)) as r:
        assert r.ping() > 0


def test_a_dangling_key_link_is_skipped_and_the_other_clients_still_connect(
    tcp_server: ServerProcess, keys: Keys
) -> None:
    dangling = keys.clients / "gone.key"
    dangling.symlink_to(keys.clients / "no-such-file.key")
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.ping() > 0
    assert server_said(tcp_server, f"skipped {dangling}: cannot read it")
    unreadable = keys.clients / "folder.key"  # not a file: skipped the same way
    unreadable.mkdir()
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.ping() > 0


def test_a_wrong_server_key_fails_at_once_naming_the_fix(
    tcp_server: ServerProcess, keys: Keys
) -> None:
    wrong = keys.client(server=keys.stranger_secret.with_suffix(".key"))
    with pytest.raises(fire.AuthenticationError, match="probably not that server's"):
        fire.connect(tcp_server.endpoint, curve=wrong, timeout=LONG_TIMEOUT)
    assert server_said(tcp_server, "failed the CURVE handshake (protocol error")


def test_a_peer_without_curve_gets_no_session(tcp_server: ServerProcess, keys: Keys) -> None:
    host, _, port = tcp_server.endpoint[len("tcp://") :].rpartition(":")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=LONG_TIMEOUT) as raw:
        # A ZMTP 3.0 greeting with the NULL mechanism: the CURVE server closes the
        # connection (the loop ends) having sent at most its own 64-byte greeting.
        raw.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL" + b"\x00" * 48)
        received = b""
        while chunk := raw.recv(4096):
            received += chunk
    assert len(received) <= 64
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.info()["sessions"] == 1


def curve_peer(server: ServerProcess) -> socket.socket:
    """A raw TCP peer without keys that has sent a ZMTP 3.0 greeting offering CURVE.

    The greeting (ZMTP 3.0, rfc.zeromq.org/spec/23): signature 0xFF, 8 bytes of
    padding, 0x7F; version 3.0; the mechanism's name padded to 20 bytes; as-server 0;
    31 bytes of filler: 64 bytes. The server's own greeting (64 bytes) is read whole.
    """
    host, _, port = server.endpoint[len("tcp://") :].rpartition(":")
    peer = socket.create_connection((host.strip("[]"), int(port)), timeout=LONG_TIMEOUT)
    peer.sendall(
        b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"CURVE".ljust(20, b"\x00") + b"\x00" * 32
    )
    received = b""
    while len(received) < 64:
        chunk = peer.recv(64 - len(received))
        assert chunk, "the server closed the connection of a CURVE greeting"
        received += chunk
    assert received[12:17] == b"CURVE"
    return peer


def command_header(size: int) -> bytes:
    """The header of a ZMTP command frame of `size` bytes: flags 0x06 (command, long)."""
    return b"\x06" + size.to_bytes(8, "big")


def closed_by_the_server(peer: socket.socket, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds."""
    peer.settimeout(within)
    try:
        return peer.recv(4096) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_an_unauthenticated_peer_announcing_a_large_frame_is_dropped_before_sending_it(
    tcp_server: ServerProcess, keys: Keys
) -> None:
    # Before CURVE has checked a key, a peer may announce a frame over the frame limit
    # (64 KiB): the server closes the connection on reading the header, not waiting for
    # (and never holding) the megabyte announced.
    with curve_peer(tcp_server) as peer:
        peer.sendall(command_header(MiB))
        assert closed_by_the_server(peer, within=AT_ONCE)
    # A frame within the limit is waited for: the connection stays open until it comes
    # (the bound: a handshake command is a few hundred bytes) and closes once it comes
    # and is no CURVE HELLO.
    with curve_peer(tcp_server) as peer:
        peer.sendall(command_header(200))
        assert not closed_by_the_server(peer, within=1.0)
        peer.sendall(b"\x05HELLO" + b"\x00" * 194)
        assert closed_by_the_server(peer, within=AT_ONCE)
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.info()["sessions"] == 1  # neither peer got a session


def test_second_tcp_server_on_a_used_port_is_a_message_not_a_traceback(
    tcp_server: ServerProcess, keys: Keys
) -> None:
    result = run_fire(*curve_argv(keys, tcp_server.endpoint)[2:])
    assert result.returncode == 2
    assert f"cannot serve at {tcp_server.endpoint}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    with fire.connect(tcp_server.endpoint, curve=keys.client()) as remote:
        assert remote.ping() > 0  # the first keeps serving


# -- signals ----------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly(own_server: ServerProcess, signum: int) -> None:
    assert own_server.path is not None
    with fire.connect(own_server.path) as remote:
        remote.module("remote_helpers").Thing("held")  # a live reference at shutdown
        own_server.send(signum)
        assert own_server.wait(timeout=15) == 0
    assert not own_server.path.exists()
    assert "Traceback" not in own_server.stderr()


def test_signals_coming_together_never_deadlock_the_server(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
) -> None:
    """Ctrl-C's SIGINT, the runner's SIGTERM and a closed terminal's SIGHUP can come
    together: a handler run while another one is inside `threading.Event.set` must not
    wait for the event's lock in the same thread. (A server so deadlocked kept its test
    databases for good; before the fix, this burst hung 7 servers in 10.)"""
    for attempt in range(4):
        server = server_factory(serve_argv(tmp_dir / f"burst{attempt}.sock"))
        spacing = random.Random(attempt)
        for count in range(2000):
            if server.proc.poll() is not None:
                break
            server.send((signal.SIGTERM, signal.SIGINT)[count % 2])
            time.sleep(spacing.random() * 0.00005)
        try:
            server.wait(timeout=15)  # "it ends at all": a bound, not a measure
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server (pid {server.pid}) hung on {count} signals in a burst")
