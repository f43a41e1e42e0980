"""The Remote API against a real server: closing, addresses, info, waiting for replies (the
logic that needs no socket, in memory: test_remote.py)."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import pytest
from servers import ServerProcess

import fire


def test_connect_is_a_context_manager(shared_server: ServerProcess) -> None:
    with fire.connect(shared_server.path) as remote:
        assert isinstance(remote, fire.Remote)
        assert not remote.closed
        assert remote.ping() > 0
    assert remote.closed
    with pytest.raises(fire.ServerUnavailable, match="closed"):
        remote.ping()


def test_close_twice_is_harmless(shared_server: ServerProcess) -> None:
    remote = fire.connect(shared_server.path)
    remote.close()
    remote.close()
    assert remote.closed
    assert "closed" in repr(remote)


def test_info_describes_the_server(remote: fire.Remote, shared_server: ServerProcess) -> None:
    info = remote.info()
    assert info["pid"] == shared_server.pid
    assert info["fire_version"] == fire.__version__
    assert info["python"] == platform.python_version()
    assert info["protocol"] == remote.protocol_version == 3
    assert info["protocol_versions"] == [3, 3]
    assert info["extensions"] == {"scopes": {"isolation": "none"}}
    assert info["endpoint"] == f"ipc://{shared_server.path}"
    assert info["refs"] == 0
    assert info["sessions"] >= 1


@pytest.mark.parametrize("form", ["str", "path", "ipc", "relative"])
def test_address_forms(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    path = shared_server.path
    assert path is not None
    if form == "relative":
        monkeypatch.chdir(path.parent)
    address: Any = {
        "str": str(path),
        "path": Path(path),
        "ipc": f"ipc://{path}",
        "relative": path.name,
    }[form]
    with fire.connect(address) as remote:
        assert remote.module("remote_helpers").echo(form) == form
        assert remote.name == str(path)


# -- waiting for replies ----------------------------------------------------------------


@pytest.mark.parametrize("spin_wait", [0, 0.001, 60])
def test_a_call_returns_its_reply_however_long_the_client_polls(
    shared_server: ServerProcess, spin_wait: float
) -> None:
    with fire.connect(shared_server.path, spin_wait=spin_wait) as remote:
        helpers = remote.module("remote_helpers")
        started = time.monotonic()
        # A call longer than the short spin: the client polls, then sleeps in recv.
        assert helpers.sleep(0.01) == 0.01
        assert helpers.echo([1, "two"]) == [1, "two"]
        # Polling stops at the reply, not at the end of the spin (60 s here).
        assert time.monotonic() - started < 30


def test_a_negative_spin_wait_is_refused(shared_server: ServerProcess) -> None:
    with pytest.raises(fire.FireError, match="spin_wait must be 0 or more seconds, not -1"):
        fire.connect(shared_server.path, spin_wait=-1)
