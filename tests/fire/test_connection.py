"""The Remote API against a real server: addresses, info, handshake, extensions, threads."""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import ExchangeCounter, ServerProcess, custom_server_argv

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


def test_module_proxy(remote: fire.Remote) -> None:
    json = remote.module("json")
    assert fire.is_proxy(json)
    assert json.dumps({"a": [1]}) == '{"a": [1]}'
    with pytest.raises(ModuleNotFoundError, match="no_such_module_xyz"):
        remote.module("no_such_module_xyz")
    with pytest.raises(fire.FireError, match="dotted module name"):
        remote.module("")


def test_a_module_proxy_is_fetched_once_per_connection(
    remote: fire.Remote, exchanges: ExchangeCounter
) -> None:
    first = remote.module("textwrap")
    with exchanges.counting():
        again = remote.module("textwrap")
        assert again.dedent("  x") == "x"
    assert again is first
    assert exchanges.operations == ["call"]  # the module itself cost no round trip


# -- handshake --------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 2], ids=["a-future-version", "an-older-version"])
def test_client_speaking_only_another_version_gets_both_ranges(
    shared_server: ServerProcess, version: int
) -> None:
    with pytest.raises(fire.ProtocolError) as raised:
        fire.Remote(shared_server.path, versions=(version, version))
    message = str(raised.value)
    assert f"client speaks {version}..{version}" in message
    assert "server speaks 3..3" in message


def test_client_speaking_only_the_current_version_works(shared_server: ServerProcess) -> None:
    with fire.Remote(shared_server.path, versions=(3, 3)) as remote:
        assert remote.protocol_version == 3
        assert remote.module("os").path.join("a", "b") == "a/b"


def test_client_speaking_a_wider_range_gets_the_highest_common(
    shared_server: ServerProcess,
) -> None:
    with fire.Remote(shared_server.path, versions=(1, 5)) as remote:
        assert remote.protocol_version == 3


def test_server_speaking_a_range_serves_old_and_new_clients(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
) -> None:
    server = server_factory(custom_server_argv(tmp_dir / "range.sock", versions=(2, 3)))
    with (
        fire.Remote(server.path, versions=(2, 2)) as old,
        fire.Remote(server.path, versions=(2, 3)) as new,
        fire.Remote(server.path, versions=(3, 4)) as newest,
    ):
        assert (old.protocol_version, new.protocol_version, newest.protocol_version) == (2, 3, 3)
        assert old.info()["protocol"] == 2
        assert newest.info()["protocol"] == 3
    with pytest.raises(fire.ProtocolError, match=r"client speaks 4\.\.5, the server speaks 2\.\.3"):
        fire.Remote(server.path, versions=(4, 5))


# -- operations and extensions -----------------------------------------------------------


def test_scope_extension_accepts_begin_and_end(remote: fire.Remote) -> None:
    assert remote.call_extension("begin_scope") == 1
    assert remote.call_extension("begin_scope", kind="class") == 2
    assert remote.call_extension("end_scope") == 1
    assert remote.call_extension("end_scope") == 0


def test_end_scope_without_begin_is_a_fire_error(remote: fire.Remote) -> None:
    with pytest.raises(fire.FireError, match="end_scope without begin_scope"):
        remote.call_extension("end_scope")
    assert remote.ping() > 0


def test_scopes_belong_to_their_connection(
    shared_server: ServerProcess, remote: fire.Remote
) -> None:
    remote.call_extension("begin_scope")
    with (
        fire.connect(shared_server.path) as other,
        pytest.raises(fire.FireError, match="end_scope without begin_scope"),
    ):
        other.call_extension("end_scope")
    assert remote.call_extension("end_scope") == 0


def test_unknown_operation_is_a_protocol_error(remote: fire.Remote) -> None:
    with pytest.raises(fire.ProtocolError, match="unknown operation 'nope'"):
        remote._request("nope", [])
    assert remote.ping() > 0


def test_dead_reference_is_a_fire_error(remote: fire.Remote) -> None:
    with pytest.raises(fire.FireError, match="reference 999999 is not alive"):
        remote._request("getattr", [999999, "name"])
    assert remote.ping() > 0


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


# -- threads ----------------------------------------------------------------------------


def test_one_remote_shared_by_four_threads(remote: fire.Remote) -> None:
    helpers = remote.module("remote_helpers")
    errors: list[BaseException] = []
    wrong: list[tuple[Any, Any]] = []

    def work(index: int) -> None:
        try:
            for call in range(200):
                expected = (index, call)
                if call % 2:
                    got = helpers.echo(expected)
                else:
                    got = tuple(helpers.Thing(f"{index}-{call}").name.split("-"))
                    expected = (str(index), str(call))
                if got != expected:
                    wrong.append((expected, got))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert wrong == []
    assert remote.ping() > 0
