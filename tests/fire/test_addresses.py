"""Parsing addresses and preparing socket paths (no server needed)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fire import FireError, ServerUnavailable
from fire.net.addresses import is_loopback, parse_address, prepare_socket_path, probe_unix_socket


def test_absolute_socket_path() -> None:
    address = parse_address("/tmp/x/s.sock")
    assert address.path == Path("/tmp/x/s.sock")
    assert address.endpoint == "ipc:///tmp/x/s.sock"
    assert not address.is_tcp
    assert str(address) == "/tmp/x/s.sock"


def test_relative_socket_path_resolves_against_base_or_cwd(
    tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_address("a/../s.sock", base=tmp_dir).path == tmp_dir / "s.sock"
    monkeypatch.chdir(tmp_dir)
    assert parse_address("s.sock").path == tmp_dir / "s.sock"


def test_ipc_address_must_be_absolute() -> None:
    assert parse_address("ipc:///tmp/s.sock").path == Path("/tmp/s.sock")
    with pytest.raises(FireError, match=r"use ipc:///absolute/path"):
        parse_address("ipc://relative.sock")


def test_tcp_address() -> None:
    address = parse_address("tcp://127.0.0.1:5555")
    assert address.is_tcp
    assert (address.host, address.port) == ("127.0.0.1", 5555)
    assert address.endpoint == "tcp://127.0.0.1:5555"
    assert parse_address("tcp://[::1]:7").host == "::1"
    assert parse_address("tcp://127.0.0.1:0").endpoint == "tcp://127.0.0.1:*"


@pytest.mark.parametrize("text", ["tcp://127.0.0.1", "tcp://:80", "tcp://host:http"])
def test_bad_tcp_addresses_are_refused(text: str) -> None:
    with pytest.raises(FireError, match="expected tcp://HOST:PORT"):
        parse_address(text)


def test_unsupported_scheme_is_refused() -> None:
    with pytest.raises(FireError, match="unsupported address 'http://x'"):
        parse_address("http://x")


def test_too_long_socket_path_is_refused_with_its_length() -> None:
    path = "/tmp/" + "x" * 120
    with pytest.raises(FireError, match=r"is 125 bytes long; Unix sockets allow 107"):
        parse_address(path)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("::", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_probe_names_a_missing_socket(tmp_dir: Path) -> None:
    path = tmp_dir / "missing.sock"
    with pytest.raises(ServerUnavailable, match="socket does not exist") as raised:
        probe_unix_socket(path)
    assert str(path) in str(raised.value)
    assert raised.value.address == str(path)


def test_probe_refuses_a_regular_file(tmp_dir: Path) -> None:
    path = tmp_dir / "file.sock"
    path.write_text("")
    with pytest.raises(ServerUnavailable, match="is not a socket"):
        probe_unix_socket(path)


def test_prepare_removes_a_stale_socket(tmp_dir: Path) -> None:
    path = tmp_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # bound but never listening: nothing answers
    assert path.exists()
    prepare_socket_path(path)
    assert not path.exists()


def test_prepare_refuses_a_live_socket(tmp_dir: Path) -> None:
    path = tmp_dir / "live.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        sock.listen()
        with pytest.raises(FireError, match="another server is running there"):
            prepare_socket_path(path)
    assert path.exists()


def test_prepare_refuses_a_file_in_the_way(tmp_dir: Path) -> None:
    path = tmp_dir / "data.sock"
    path.write_text("precious")
    with pytest.raises(FireError, match="a file that is not a socket is in the way"):
        prepare_socket_path(path)
    assert path.read_text() == "precious"


def test_prepare_refuses_a_missing_directory(tmp_dir: Path) -> None:
    with pytest.raises(FireError, match="does not exist"):
        prepare_socket_path(tmp_dir / "nope" / "s.sock")
