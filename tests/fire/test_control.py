"""Patches and the clock in a server's process, undone with the scope they are made in.

Real `python -m fire serve` processes: the mock lives in the server, the test reaches it
through a fire call and checks it from here (issue 25).
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from servers import ServerProcess, server_env, wait_for

import fire
from fire.client.clock import freeze_time

NEW_YEAR = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def service(remote: fire.Remote) -> object:
    """The service code of these tests, on the shared server."""
    return remote.module("control_helpers")


def test_a_patched_function_is_called_by_service_code_and_checked_here(remote, service):
    with remote.scope():
        send = remote.patch("control_helpers.send", return_value="not sent")

        assert service.notify("ada@example.com") == "not sent"

        assert send.call_count == 1
        assert send.called
        send.assert_called_once_with("ada@example.com", subject="your order")
        send.assert_called_once_with(mock.ANY, subject=mock.ANY)
        send.assert_has_calls([mock.call("ada@example.com", subject="your order")])
        assert send.call_args_list == [mock.call("ada@example.com", subject="your order")]
        assert send.call_args.kwargs == {"subject": "your order"}
        with pytest.raises(AssertionError, match="expected call not found"):
            send.assert_called_with("bob@example.com", subject="your order")
    assert service.notify("ada@example.com") == "sent 'your order' to ada@example.com"


def test_side_effects_an_exception_class_a_list_and_a_service_function(remote, service):
    with remote.scope():
        remote.patch("control_helpers.send", side_effect=ConnectionError)
        with pytest.raises(ConnectionError):
            service.notify("ada@example.com")
        remote.patch("control_helpers.send", side_effect=["first", ValueError("second"), "third"])
        assert service.notify("a") == "first"
        with pytest.raises(ValueError, match="second"):
            service.notify("b")
        assert service.notify("c") == "third"
        remote.patch("control_helpers.send", side_effect="control_helpers.refuse")
        with pytest.raises(remote.exception("control_helpers.Refused"), match="dotted path"):
            service.notify("d")
        refused = remote.exception("control_helpers.Refused")
        remote.patch("control_helpers.send", side_effect=refused("its own class"))
        with pytest.raises(refused, match="its own class"):
            service.notify("e")


def test_a_local_function_as_side_effect_is_refused_with_the_fix(remote):
    with remote.scope(), pytest.raises(fire.FireError, match="name a function of the service"):
        remote.patch("control_helpers.send", side_effect=lambda *a, **k: "local")


def test_autospec_keeps_the_signature(remote, service):
    with remote.scope():
        send = remote.patch("control_helpers.send", autospec=True, return_value="specced")
        assert service.notify("ada") == "specced"
        send.assert_called_once_with("ada", subject="your order")
        with pytest.raises(TypeError):
            service.send("ada", "subject", "one argument too many")


def test_patch_object_and_patch_dict(remote, service):
    with remote.scope():
        deliver = remote.patch_object(service.Mailer, "deliver", return_value="held")
        settings = remote.patch_dict("control_helpers.SETTINGS", {"mode": "test"})
        environ = remote.patch_dict(remote.module("os").environ, {"FIRE_CONTROL_TEST": "1"})
        assert service.deliver("ada") == "held"
        assert deliver.call_count == 1
        assert service.mode() == "test"
        assert settings.mock["mode"] == "test"
        assert service.environment("FIRE_CONTROL_TEST") == "1"
        assert environ.active
    assert service.deliver("ada") == "delivered to ada"
    assert service.mode() == "real"
    assert service.environment("FIRE_CONTROL_TEST") is None


def test_a_with_block_undoes_its_patch_at_its_end(remote, service):
    with remote.scope():
        with remote.patch("control_helpers.send", return_value="inside") as send:
            assert service.notify("ada") == "inside"
        assert not send.active
        assert service.notify("ada") == "sent 'your order' to ada"


def test_a_class_scope_patch_outlives_its_tests_and_ends_with_the_class(remote, service):
    remote.begin_scope("class")
    remote.patch("control_helpers.mode", return_value="for the class")
    remote.begin_scope("test")
    remote.patch("control_helpers.send", return_value="for the test")
    assert (service.mode(), service.notify("a")) == ("for the class", "for the test")
    remote.end_scope()
    assert (service.mode(), service.notify("a")) == ("for the class", "sent 'your order' to a")
    remote.end_scope()
    assert service.mode() == "real"


def test_patching_twice_stacks_and_both_are_undone_in_order(remote, service):
    with remote.scope():
        first = remote.patch("control_helpers.mode", return_value="first")
        second = remote.patch("control_helpers.mode", return_value="second")
        assert service.mode() == "second"
        second.stop()
        assert service.mode() == "first"
        second = remote.patch("control_helpers.mode", return_value="second again")
        first.stop()  # the older one: the newer goes first, so the original comes back
        assert (service.mode(), second.active) == ("real", False)
        remote.patch("control_helpers.mode", return_value="one")
        remote.patch("control_helpers.mode", return_value="two")
    assert service.mode() == "real"


def test_a_missing_target_names_the_module_and_the_nearest_names(remote):
    with remote.scope():
        with pytest.raises(AttributeError) as missing:
            remote.patch("control_helpers.sned")
        assert "cannot patch 'control_helpers.sned': module 'control_helpers' has no " in str(
            missing.value
        )
        assert "did you mean 'send'" in str(missing.value)
        with pytest.raises(ModuleNotFoundError) as no_module:
            remote.patch("control_helper.send")
        assert "did you mean 'control_helpers'" in "".join(no_module.value.__notes__)
        with pytest.raises(AttributeError, match="did you mean 'deliver'"):
            remote.patch_object("control_helpers.Mailer", "delivr")
        remote.patch("control_helpers.unsent", create=True, return_value=1)


KILLED_CLIENT = """
import sys, time, fire
remote = fire.connect(sys.argv[1], timeout=10)
remote.begin_scope()
remote.patch("control_helpers.mode", return_value="left by a killed client")
remote.freeze_time("2001-01-01T00:00Z")
print("patched", flush=True)
time.sleep(60)
"""


def test_a_killed_clients_patches_and_clock_are_undone_by_the_server(
    own_server: ServerProcess, tmp_dir: Path
):
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, str(own_server.path)],
        stdout=subprocess.PIPE,
        env=server_env(),
        text=True,
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "patched"
        with fire.connect(own_server.path, timeout=10) as remote:
            service = remote.module("control_helpers")
            assert service.mode() == "left by a killed client"
            assert service.now()[1].year == 2001
            client.send_signal(signal.SIGKILL)
            client.wait(10)
            assert wait_for(lambda: service.mode() == "real")
            assert service.now()[1].year >= 2026
    finally:
        client.kill()
        client.wait(10)


def test_the_clock_freezes_shifts_and_ticks_and_comes_back(remote, service):
    real_year = dt.datetime.now(dt.UTC).year
    with remote.scope():
        clock = remote.freeze_time("2026-01-01T13:00+01:00")
        stamp, now = service.now()
        assert (stamp, now) == (NEW_YEAR.timestamp(), NEW_YEAR)
        time.sleep(0.01)
        assert service.now()[1] == NEW_YEAR  # frozen: no tick
        assert clock.shift(dt.timedelta(hours=2)) == NEW_YEAR + dt.timedelta(hours=2)
        assert clock.move_to("2026-06-01T00:00Z") == dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
        assert remote.ping() < 5  # the server's loop runs on real time
    assert service.now()[1].year == real_year


def test_clocks_of_several_servers_move_together(remote, own_server: ServerProcess):
    with (
        fire.connect(own_server.path, timeout=10, name="own") as other,
        remote.scope(),
        other.scope(),
    ):
        clocks = freeze_time([remote, other], NEW_YEAR)
        clocks.shift(dt.timedelta(minutes=30))
        clocks.tick()
        expected = NEW_YEAR + dt.timedelta(minutes=30, seconds=1)
        for server in (remote, other):
            assert server.module("control_helpers").now()[1] == expected
        with clocks:
            pass  # its end gives every clock back before the scopes end
        for server in (remote, other):
            assert server.module("control_helpers").now()[1] != expected


def test_the_clock_here_too_and_back_at_the_end(remote):
    before = time.time()
    with remote.scope():
        clocks = freeze_time([remote], "2030-05-05T05:05Z", here=True)
        assert dt.datetime.now(dt.UTC) == dt.datetime(2030, 5, 5, 5, 5, tzinfo=dt.UTC)
        clocks.shift(60)
        assert time.time() == dt.datetime(2030, 5, 5, 5, 6, tzinfo=dt.UTC).timestamp()
        remote.begin_scope("test")  # fire's own deadlines keep real time
        remote.end_scope()
        clocks.stop()
    assert before <= time.time() < before + 3600


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("2026-01-01T12:00", "naive"),
        (dt.datetime(2026, 1, 1), "naive"),
        ("next tuesday", "cannot read 'next tuesday' as a date and time"),
        (20260101, "not int"),
    ],
)
def test_a_naive_or_unreadable_time_is_refused(remote, destination, message):
    with remote.scope(), pytest.raises(fire.FireError, match=message):
        remote.freeze_time(destination)


BLOCKED_TIME_MACHINE = textwrap.dedent(
    """
    import sys
    sys.modules["time_machine"] = None  # as if it were not installed
    from fire.__main__ import main
    sys.exit(main(["serve", sys.argv[1]]))
    """
)


def test_a_server_without_time_machine_names_the_extra(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
):
    server = server_factory(["-c", BLOCKED_TIME_MACHINE, str(tmp_dir / "no-tm.sock")])
    with (
        fire.connect(server.path, timeout=10) as remote,
        remote.scope(),
        pytest.raises(fire.FireError, match=r"pip install 'djfire\[time\]'"),
    ):
        remote.freeze_time(NEW_YEAR)


OLDER_SERVER = textwrap.dedent(
    """
    import sys
    from fire.server import operations
    del operations.OPERATIONS["patch"], operations.OPERATIONS["freeze_time"]  # as before them
    from fire.__main__ import main
    sys.exit(main(["serve", sys.argv[1]]))
    """
)


def test_a_server_older_than_patches_says_to_upgrade(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
):
    server = server_factory(["-c", OLDER_SERVER, str(tmp_dir / "old.sock")])
    with fire.connect(server.path, timeout=10) as remote:
        with pytest.raises(fire.FireError, match="cannot patch: its fire is older"):
            remote.patch("control_helpers.send")
        with pytest.raises(fire.FireError, match="cannot freeze time: its fire is older"):
            remote.freeze_time(NEW_YEAR)
