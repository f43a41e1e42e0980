"""``manage.py runfireserver`` as a process: start-up checks, --keepdb, clean shutdown."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fire
from fire.errors import FireError

from ..conftest import MANAGE, REINSTALL, TESTS, spawn_shop


def run_manage(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        cwd=MANAGE.parent,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "backend", ["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_keepdb_reuses_the_test_databases(backend: str, tmp_path: Path) -> None:
    first = spawn_shop(backend, "--keepdb", "--db-suffix", "keepdb", data_dir=str(tmp_path))
    assert first.stop() == 0
    assert not any("Destroying test database" in line for line in first.output)
    if backend == "sqlite-file":
        assert (tmp_path / "test_shop.sqlite3_keepdb").exists()

    again = spawn_shop(backend, "--keepdb", "--db-suffix", "keepdb", data_dir=str(tmp_path))
    try:
        assert any(
            "Using existing test database for alias 'default'" in line for line in again.output
        )
        with fire.connect(again.address) as shop, shop.scope():
            shop.module("shop.factories").CategoryFactory(name="works")
            assert shop.module("shop.models").Category.objects.count() == 1
    finally:
        again.stop()
    # Without --keepdb the databases go at exit.
    last = spawn_shop(backend, "--db-suffix", "keepdb", data_dir=str(tmp_path))
    assert last.stop() == 0
    assert any("Destroying test database for alias 'default'" in line for line in last.output)
    assert not (tmp_path / "test_shop.sqlite3_keepdb").exists()


def test_refuses_a_database_that_is_not_a_test_database(tmp_path: Path) -> None:
    real = tmp_path / "shop.sqlite3"
    real.write_bytes(b"")  # the 'production' database: must stay untouched
    with pytest.raises(FireError) as raised:
        spawn_shop("misconfigured", data_dir=str(tmp_path))
    assert "its test database name" in str(raised.value)
    assert "runfireserver never serves a non-test database" in str(raised.value)
    assert real.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.sqlite3"]


def test_a_test_database_name_that_is_another_alias_s_real_database_is_refused(
    tmp_path: Path,
) -> None:
    real = tmp_path / "other.sqlite3"
    real.write_bytes(b"")  # alias 'other''s real database: default's test name points at it
    with pytest.raises(FireError) as raised:
        spawn_shop("crossed", data_dir=str(tmp_path))
    assert "the NAME of alias 'other'" in str(raised.value)
    assert "runfireserver never serves a non-test database" in str(raised.value)
    assert real.read_bytes() == b""


@pytest.mark.parametrize(
    "backend", ["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_second_server_on_the_same_test_databases_is_refused_and_harms_nothing(
    backend: str, tmp_path: Path
) -> None:
    first = spawn_shop(backend, data_dir=str(tmp_path), suffix="claimed")
    try:
        with pytest.raises(FireError) as raised:
            spawn_shop(backend, data_dir=str(tmp_path), suffix="claimed")
        message = str(raised.value)
        assert "is in use by another fire server (" in message
        assert f"runfireserver pid {first.pid} on " in message
        assert "--db-suffix NAME" in message and ":suffix=NAME" in message
        with fire.connect(first.address, timeout=20) as remote, remote.scope():
            factories = remote.module("shop.factories")
            models = remote.module("shop.models")
            factories.ProductFactory(name="still here")  # the first's databases are intact
            assert models.Product.objects.count() == 1
        second = spawn_shop(backend, data_dir=str(tmp_path), suffix="second")
        assert second.stop() == 0
    finally:
        assert first.stop() == 0
    assert sorted(p.name for p in tmp_path.iterdir() if "claim" in p.name) == []


def test_sigterm_tears_the_test_databases_down_and_removes_the_socket(tmp_path: Path) -> None:
    server = spawn_shop("sqlite-file", data_dir=str(tmp_path))
    assert (tmp_path / "test_shop.sqlite3").exists()
    assert (Path(server.address).stat().st_mode & 0o777) == 0o600
    assert server.stop() == 0
    assert not os.path.exists(server.address)
    assert not (tmp_path / "test_shop.sqlite3").exists()
    assert not (tmp_path / "test_other.sqlite3").exists()
    assert any("Destroying test database for alias 'other'" in line for line in server.output)


def test_a_second_server_on_a_live_address_refuses_before_touching_databases(
    sqlite_shop, tmp_path: Path
) -> None:
    result = run_manage(
        "runfireserver",
        sqlite_shop.address,
        env={"DJFIRE_TEST_DB": "sqlite-file", "DJFIRE_TEST_DIR": str(tmp_path)},
    )
    assert result.returncode == 1
    assert (
        "another server is running there" in result.stderr and sqlite_shop.address in result.stderr
    )
    assert "Creating test database" not in result.stdout + result.stderr
    with fire.connect(sqlite_shop.address) as shop:  # the first one still serves
        assert shop.ping() is not None


def test_bad_http_option_is_a_usage_error() -> None:
    result = run_manage("runfireserver", "/tmp/unused-fire.sock", "--http", "localhost")
    assert result.returncode == 1
    assert "--http takes HOST:PORT" in result.stderr


def test_a_non_loopback_http_address_needs_allow_remote(tmp_path: Path) -> None:
    result = run_manage("runfireserver", str(tmp_path / "f.sock"), "--http", "0.0.0.0:0")
    assert result.returncode != 0
    assert "refusing to serve HTTP on 0.0.0.0" in result.stderr
    assert "--allow-remote" in result.stderr


def test_a_tcp_address_without_keys_names_the_fix() -> None:
    result = run_manage("runfireserver", "tcp://127.0.0.1:0")
    assert result.returncode != 0
    assert "a TCP server needs CURVE keys" in result.stderr
    assert "python -m fire keys" in result.stderr


def test_max_message_size_bounds_requests_and_a_too_small_one_is_refused(
    tmp_path: Path,
) -> None:
    result = run_manage("runfireserver", str(tmp_path / "f.sock"), "--max-message-size", "1000")
    assert result.returncode != 0
    assert "max_message_size must be at least 65536 bytes (one frame), not 1000" in result.stderr
    assert "Creating test database" not in result.stdout + result.stderr
    server = spawn_shop("sqlite-file", "--max-message-size", str(2**20), data_dir=str(tmp_path))
    try:
        with fire.connect(server.address) as shop:
            echo = shop.module("builtins").str
            with pytest.raises(fire.ProtocolError, match="max_message_size of 1,048,576 bytes"):
                echo("x" * 2**21)
            assert echo("y" * 2**19) == "y" * 2**19  # in chunks, within the bound
    finally:
        assert server.stop() == 0


def test_runfireserver_stops_on_a_foreign_fire_package(foreign_fire: Path) -> None:
    result = run_manage(
        "runfireserver", "/tmp/unused-fire.sock", env={"PYTHONPATH": str(foreign_fire)}
    )
    assert result.returncode == 1
    assert "is not fire from djfire" in result.stderr
    assert "pip uninstall fire" in result.stderr
    assert REINSTALL in result.stderr  # from where this djfire came, not the package index


def test_python_m_fire_stops_on_a_half_overwritten_package(foreign_fire: Path) -> None:
    # pip writes python-fire's fire/__init__.py over ours and leaves our __main__.py.
    shutil.copy(TESTS.parent / "fire" / "__main__.py", foreign_fire / "fire" / "__main__.py")
    result = subprocess.run(
        [sys.executable, "-m", "fire", "serve", "/tmp/unused-fire.sock"],
        cwd=foreign_fire,
        env={**os.environ, "PYTHONPATH": str(foreign_fire)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "is not fire from djfire" in result.stderr


def test_a_server_starts_without_jinja2_and_imports_it_when_asked() -> None:
    # django.test.utils imports jinja2 for nothing a server uses: 25-40 ms of each start.
    server = spawn_shop("sqlite")
    try:
        with fire.connect(server.address, timeout=20) as remote:
            assert "jinja2" not in remote.module("sys").modules
            assert remote.module("jinja2").Template("{{ 6 * 7 }}").render() == "42"
            assert "jinja2" in remote.module("sys").modules
    finally:
        server.stop()


def test_a_server_freezes_what_its_start_made_and_runs_with_the_collector_on() -> None:
    # djfire.startup_gc: start-up runs without the collector's passes (about 0.1 s of a
    # start on 300 models); afterwards, the collector is on for the server's life.
    server = spawn_shop("sqlite")
    try:
        with fire.connect(server.address, timeout=20) as remote:
            gc = remote.module("gc")
            assert gc.isenabled()
            assert gc.get_freeze_count() > 10_000  # Django's and the project's objects
    finally:
        server.stop()


def test_other_commands_leave_the_collector_alone() -> None:
    # Not paused (runfireserver resumes it; no other command would). What is frozen is
    # not djfire's to say here: Django 6.0's shell on Python 3.12 has some.
    done = run_manage("shell", "-c", "import gc; print('collector on:', gc.isenabled())")
    assert done.returncode == 0, done.stderr
    assert "collector on: True\n" in done.stdout
