"""Spawn specs: ``NAME=PROGRAM[:key=value…]`` as the runners read them, and launchers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fire.errors import FireError
from fire.runners.spawn import (
    Launcher,
    ServerSpec,
    SpawnedServer,
    installed_launchers,
    parse_spawn_spec,
)

#: A service kind fire knows nothing about: its command has no HTTP or suffix options.
PLAIN = Launcher(
    name="plain",
    command=("{program}", "--serve-at", "{address}"),
    settings_variable="PLAIN_SETTINGS",
    hints={"no such service": "the program is not a service: check {settings}"},
)


@pytest.fixture
def manage(tmp_path: Path) -> Path:
    path = tmp_path / "shop" / "manage.py"
    path.parent.mkdir()
    path.write_text("")
    return path


def test_defaults_and_a_path_relative_to_the_base(manage: Path, tmp_path: Path) -> None:
    spec = parse_spawn_spec("shop=shop/manage.py", base=tmp_path)
    assert (spec.name, spec.program) == ("shop", manage)
    assert spec.python == sys.executable
    assert spec.settings is None
    assert spec.http == "127.0.0.1:0"


def test_every_option(manage: Path) -> None:
    spec = parse_spawn_spec(
        f"shop={manage}:python=/venv/bin/python:http=127.0.0.1:8123:settings=shop.settings"
    )
    assert spec.python == "/venv/bin/python"
    assert spec.http == "127.0.0.1:8123"
    assert spec.settings == "shop.settings"
    assert SpawnedServer(spec, socket_dir=str(manage.parent)).command()[-2:] == [
        "--http",
        "127.0.0.1:8123",
    ]


def test_an_empty_http_starts_no_live_server(manage: Path) -> None:
    spec = parse_spawn_spec(f"shop={manage}:http=:settings=shop.settings")
    assert spec.http is None
    assert spec.settings == "shop.settings"  # the next option is not taken for a port
    assert "--http" not in SpawnedServer(spec, socket_dir=str(manage.parent)).command()


def test_a_suffix_names_the_test_databases_and_comes_before_the_worker_s(manage: Path) -> None:
    spec = parse_spawn_spec(f"shop={manage}:suffix=second")
    assert spec.suffix == "second"
    alone = SpawnedServer(spec, socket_dir=str(manage.parent))
    assert alone.command()[-2:] == ["--db-suffix", "second"]
    assert alone.address.endswith("shop-second.sock")
    worker = SpawnedServer(spec, suffix="gw1", socket_dir=str(manage.parent))
    assert worker.command()[-2:] == ["--db-suffix", "second_gw1"]


def test_gateway_comes_last_and_keeps_its_colons_and_equal_signs(manage: Path) -> None:
    spec = parse_spawn_spec(
        f"shop={manage}:settings=shop.settings:gateway=popen//python=/srv/venv/bin/python"
    )
    assert spec.gateway == "popen//python=/srv/venv/bin/python"
    assert spec.settings == "shop.settings"
    assert not spec.is_remote
    remote = parse_spawn_spec(
        "shop=/srv/shop/manage.py:http=:gateway=ssh=-p 2222 ci@build-7//python=/srv/v/bin/python"
    )
    assert remote.gateway == "ssh=-p 2222 ci@build-7//python=/srv/v/bin/python"
    assert remote.is_remote
    assert str(remote.program) == "/srv/shop/manage.py"  # a path there: not checked here
    assert remote.listen_host() == "build-7"
    server = SpawnedServer(remote)
    assert server.address == "tcp://build-7:0"
    assert "--allow-remote" in server.command()  # build-7 is not loopback; CURVE guards it


def test_a_remote_server_s_host_may_be_given(manage: Path) -> None:
    spec = parse_spawn_spec("shop=/srv/manage.py:host=[::1]:gateway=ssh=alias//python=py")
    server = SpawnedServer(spec)
    assert server.address == "tcp://[::1]:0"
    assert "--allow-remote" not in server.command()
    assert server.command()[3:5] == ["--http", "::1:0"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shop", "expected NAME=PROGRAM"),
        ("shop={manage}:launcher=flask", "no launcher 'flask' is installed"),
        ("shop={manage}:colour=red", "unknown spawn option 'colour'"),
        ("shop={missing}", "does not exist"),
        ("shop={manage}:python=/x/python:gateway=popen", "inside the gateway spec, not both"),
    ],
)
def test_bad_specs_say_what_is_wrong(manage: Path, text: str, message: str) -> None:
    text = text.format(manage=manage, missing=manage.parent / "nope.py")
    with pytest.raises(FireError, match=message):
        parse_spawn_spec(text)


def test_the_installed_launcher_starts_runfireserver(manage: Path) -> None:
    # djfire provides it through the fire.launchers entry point; fire itself names none.
    assert list(installed_launchers()) == ["django"]
    spec = parse_spawn_spec(f"shop={manage}:launcher=django")
    assert spec.launcher is parse_spawn_spec(f"shop={manage}").launcher
    server = SpawnedServer(spec, socket_dir=str(manage.parent))
    assert server.command()[:3] == [str(manage), "runfireserver", server.address]


def test_a_launcher_gives_the_command_and_leaves_out_options_it_has_not(manage: Path) -> None:
    spec = ServerSpec(name="shop", program=manage, launcher=PLAIN, suffix="second")
    server = SpawnedServer(spec, socket_dir=str(manage.parent))
    assert server.command() == [str(manage), "--serve-at", server.address]


def test_a_launcher_s_hint_names_the_fix_of_a_failed_start(manage: Path) -> None:
    manage.write_text("import sys\nsys.exit('no such service here')\n")
    spec = ServerSpec(name="shop", program=manage, launcher=PLAIN, settings="shop.conf")
    with pytest.raises(FireError) as raised:
        SpawnedServer(spec, socket_dir=str(manage.parent)).start(timeout=60)
    message = str(raised.value)
    assert "fire server 'shop' exited" in message and "no such service here" in message
    assert message.endswith("fire: the program is not a service: check shop.conf")


def test_data_changes_off_starts_the_server_without_its_capture(manage: Path) -> None:
    spec = parse_spawn_spec(f"shop={manage}:data_changes=off:suffix=x")
    assert spec.data_changes is False and spec.suffix == "x"
    command = SpawnedServer(spec, socket_dir=str(manage.parent)).command()
    assert command[-1] == "--no-data-changes"
    assert parse_spawn_spec(f"shop={manage}:data_changes=on").data_changes is True
    assert parse_spawn_spec(f"shop={manage}").data_changes is True
    with pytest.raises(FireError, match="data_changes takes on or off, not 'no'"):
        parse_spawn_spec(f"shop={manage}:data_changes=no")
    plain = ServerSpec("plain", manage, PLAIN, data_changes=False)
    assert "--no-data-changes" not in SpawnedServer(plain, socket_dir=str(manage.parent)).command()


def test_rebuild_db_on_starts_the_server_with_its_rebuild_option(manage: Path) -> None:
    spec = parse_spawn_spec(f"shop={manage}:rebuild_db=on")
    assert spec.rebuild_db is True
    assert SpawnedServer(spec, socket_dir=str(manage.parent)).command()[-1] == "--rebuild-db"
    assert parse_spawn_spec(f"shop={manage}").rebuild_db is False
    with pytest.raises(FireError, match="rebuild_db takes on or off, not 'yes'"):
        parse_spawn_spec(f"shop={manage}:rebuild_db=yes")
    plain = ServerSpec("plain", manage, PLAIN, rebuild_db=True)
    assert "--rebuild-db" not in SpawnedServer(plain, socket_dir=str(manage.parent)).command()


def test_a_directory_given_for_the_program_says_what_is_there(manage: Path) -> None:
    """Issue 23: not "does not exist" for a directory, but its manage.py, or what it holds."""
    with pytest.raises(FireError) as raised:
        parse_spawn_spec(f"shop={manage.parent}")
    assert str(raised.value) == (
        f"fire server 'shop': {manage.parent} is a directory; its manage.py is {manage}: give that"
    )
    manage.unlink()
    (manage.parent / "settings.py").write_text("")
    (manage.parent / "shop").mkdir()
    with pytest.raises(FireError) as raised:
        parse_spawn_spec(f"shop={manage.parent}")
    assert str(raised.value) == (
        f"fire server 'shop': {manage.parent} is a directory, not the manage.py to run; "
        "it holds settings.py, shop/"
    )
    with pytest.raises(FireError, match=r"manage.py does not exist$"):
        parse_spawn_spec(f"shop={manage}")


def test_a_popen_gateway_s_relative_python_is_the_project_s(
    manage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: not the runner's current directory's (another interpreter, silently)."""
    python = manage.parent / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)  # as in a virtualenv: the link is kept, not followed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = parse_spawn_spec(f"shop={manage}:gateway=popen//python=.venv/bin/python//id=x")
    assert spec.gateway == f"popen//python={python}//id=x"
    named = parse_spawn_spec(f"shop={manage}:gateway=popen//python=python3.12")
    assert named.gateway == "popen//python=python3.12"  # a name: looked up on PATH
    with pytest.raises(FireError) as raised:
        parse_spawn_spec(f"shop={manage}:gateway=popen//python=../venv/bin/python")
    assert str(raised.value) == (
        f"spawn spec 'shop={manage}:gateway=popen//python=../venv/bin/python': the gateway's "
        f"python=../venv/bin/python is relative, so it is taken from the directory of "
        f"{manage} (where the server starts): {tmp_path}/venv/bin/python does not exist; "
        "give the interpreter's absolute path"
    )
