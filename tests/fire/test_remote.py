"""A Remote and a server in memory: modules, the handshake's version choice, operations
and extensions, threads (the socket's part is in test_connection.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from servers import ExchangeCounter

import fire
from fire.net.loopback import Loopback
from fire.server.dispatch import Dispatcher


@pytest.fixture
def remote(memory_remote: fire.Remote) -> fire.Remote:
    """In memory (conftest.memory_remote): this module checks logic, not sockets."""
    return memory_remote


def test_module_proxy(remote: fire.Remote) -> None:
    json = remote.module("json")
    assert fire.is_proxy(json)
    assert json.dumps({"a": [1]}) == '{"a": [1]}'
    with pytest.raises(ModuleNotFoundError, match="no_such_module_xyz"):
        remote.module("no_such_module_xyz")
    with pytest.raises(fire.FireError, match="dotted module name"):
        remote.module("")


def test_a_misspelt_module_gets_the_close_names_the_server_can_import(
    remote: fire.Remote,
) -> None:
    """Issue 23: a typo in module("…") names what the server has, in a note."""
    with pytest.raises(ModuleNotFoundError) as raised:
        remote.module("email.mime.txt")
    assert "(fire: did you mean 'email.mime.text'?)" in raised.value.__notes__
    with pytest.raises(ModuleNotFoundError) as raised:
        remote.module("textwarp.sub")  # the package itself misspelt
    assert any(n.startswith("(fire: did you mean 'textwrap'") for n in raised.value.__notes__)
    with pytest.raises(ModuleNotFoundError) as raised:
        remote.module("zzqqxx")
    assert not any(n.startswith("(fire: did you mean") for n in raised.value.__notes__)


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
    connect_memory: Callable[..., fire.Remote], version: int
) -> None:
    with pytest.raises(fire.ProtocolError) as raised:
        connect_memory(versions=(version, version))
    message = str(raised.value)
    assert f"client speaks {version}..{version}" in message
    assert "server speaks 3..3" in message


def test_client_speaking_only_the_current_version_works(
    connect_memory: Callable[..., fire.Remote],
) -> None:
    with connect_memory(versions=(3, 3)) as remote:
        assert remote.protocol_version == 3
        assert remote.module("os").path.join("a", "b") == "a/b"


def test_client_speaking_a_wider_range_gets_the_highest_common(
    connect_memory: Callable[..., fire.Remote],
) -> None:
    with connect_memory(versions=(1, 5)) as remote:
        assert remote.protocol_version == 3


def test_server_speaking_a_range_serves_old_and_new_clients(
    connect_memory: Callable[..., fire.Remote],
) -> None:
    server = Loopback(Dispatcher, versions=(2, 3))
    with (
        connect_memory(server, versions=(2, 2)) as old,
        connect_memory(server, versions=(2, 3)) as new,
        connect_memory(server, versions=(3, 4)) as newest,
    ):
        assert (old.protocol_version, new.protocol_version, newest.protocol_version) == (2, 3, 3)
        assert old.info()["protocol"] == 2
        assert newest.info()["protocol"] == 3
    with pytest.raises(fire.ProtocolError, match=r"client speaks 4\.\.5, the server speaks 2\.\.3"):
        connect_memory(server, versions=(4, 5))


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
    connect_memory: Callable[..., fire.Remote], remote: fire.Remote
) -> None:
    remote.call_extension("begin_scope")
    with (
        connect_memory() as other,
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


# -- the transport ----------------------------------------------------------------------


def test_a_remote_takes_a_transport_or_an_address_and_its_options_not_both() -> None:
    loopback = Loopback(Dispatcher)
    with pytest.raises(fire.FireError, match="needs the server's address"):
        fire.Remote()
    with pytest.raises(fire.FireError, match="give them to it"):
        fire.Remote("/tmp/x.sock", transport=loopback.transport())
    with pytest.raises(fire.FireError, match="give them to it"):
        fire.Remote(transport=loopback.transport(), spin_wait=0)


def test_a_closed_loopback_connection_is_unavailable_and_its_session_gone(
    connect_memory: Callable[..., fire.Remote], remote: fire.Remote
) -> None:
    other = connect_memory()
    assert remote.info()["sessions"] == 2
    other.close()
    assert remote.info()["sessions"] == 1
    with pytest.raises(fire.ServerUnavailable, match="closed"):
        other.ping()
