"""Socket permissions, live and stale socket files, TCP tokens, and clean shutdown on signals."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import ServerProcess, run_fire, serve_argv

import fire

AT_ONCE = 5.0  # far below the 30 s timeout: an answer, not a wait


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


# -- TCP --------------------------------------------------------------------------------


def test_tcp_server_without_token_refuses_to_start() -> None:
    result = run_fire("serve", "tcp://127.0.0.1:0")
    assert result.returncode == 2
    assert "a TCP server needs a token" in result.stderr
    assert "--token-file" in result.stderr


def test_tcp_server_on_a_non_loopback_host_needs_allow_remote(tmp_dir: Path) -> None:
    token_file = tmp_dir / "token"
    token_file.write_text("secret")
    result = run_fire("serve", "tcp://0.0.0.0:0", "--token-file", str(token_file))
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "--allow-remote" in result.stderr
    with pytest.raises(fire.FireError, match=r"refusing to listen on 0\.0\.0\.0"):
        fire.Server("tcp://0.0.0.0:0", token="secret")


def test_empty_token_file_is_refused(tmp_dir: Path) -> None:
    token_file = tmp_dir / "token"
    token_file.write_text(" \n\t\n")
    result = run_fire("serve", "tcp://127.0.0.1:0", "--token-file", str(token_file))
    assert result.returncode == 2
    assert "is empty" in result.stderr


@pytest.fixture
def tcp_server(server_factory: Callable[..., ServerProcess], tmp_dir: Path) -> ServerProcess:
    """A TCP server on a free loopback port; its token file has whitespace around the token."""
    token_file = tmp_dir / "token"
    token_file.write_text("  s3cret-token \n\n")
    server = server_factory(serve_argv("tcp://127.0.0.1:0", "--token-file", str(token_file)))
    assert server.endpoint.startswith("tcp://127.0.0.1:")
    return server


def test_second_tcp_server_on_a_used_port_is_a_message_not_a_traceback(
    tcp_server: ServerProcess, tmp_dir: Path
) -> None:
    token_file = tmp_dir / "token"
    result = run_fire("serve", tcp_server.endpoint, "--token-file", str(token_file))
    assert result.returncode == 2
    assert f"cannot serve at {tcp_server.endpoint}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    with fire.connect(tcp_server.endpoint, token="s3cret-token") as remote:
        assert remote.ping() > 0  # the first keeps serving


def test_tcp_right_token_works(tcp_server: ServerProcess) -> None:
    with fire.connect(tcp_server.endpoint, token="s3cret-token") as remote:
        assert remote.info()["pid"] == tcp_server.pid
        assert remote.module("os").path.join("a", "b") == "a/b"


def test_tcp_wrong_token_is_an_authentication_error_at_once(tcp_server: ServerProcess) -> None:
    start = time.monotonic()
    with pytest.raises(fire.AuthenticationError, match="refused the token"):
        fire.connect(tcp_server.endpoint, token="s3cret-token ", timeout=30)
    assert time.monotonic() - start < AT_ONCE
    with fire.connect(tcp_server.endpoint, token="s3cret-token") as remote:
        assert remote.ping() > 0


def test_tcp_missing_token_is_an_authentication_error(tcp_server: ServerProcess) -> None:
    start = time.monotonic()
    with pytest.raises(fire.AuthenticationError, match="needs a token"):
        fire.connect(tcp_server.endpoint, timeout=30)
    assert time.monotonic() - start < AT_ONCE


def test_tcp_wrong_token_leaves_no_session_behind(tcp_server: ServerProcess) -> None:
    with pytest.raises(fire.AuthenticationError):
        fire.connect(tcp_server.endpoint, token="wrong")
    with fire.connect(tcp_server.endpoint, token="s3cret-token") as remote:
        assert remote.info()["sessions"] == 1


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
