"""A server killed by a signal leaves no test database: its supervisor runs
``runfireserver --drop-left-databases`` with the server's own options.

Real servers on real PostgreSQL and SQLite files, in a test scope with a row written,
killed with SIGKILL: what the clean-up dropped is gone, what it kept (``--keepdb``, a
database without fire's mark) stays, and the server's output says which and why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import fire
from fire.runners.spawn import SpawnedServer

from ..conftest import MANAGE, spawn_shop
from .leftovers import database_names, drop

#: Long enough for a loaded machine: the point is that it ends at all.
WAIT = 90.0


def kill_in_a_test(server: SpawnedServer) -> list[str]:
    """Open a scope, write a row, SIGKILL the server; its test databases' names, once
    the server (and the clean-up after it) ended."""
    remote = fire.connect(server.address, name="shop", timeout=60)
    try:
        remote.begin_scope()
        remote.module("shop.models").Product.objects.create(name="tea", price="2.50")
        connections = remote.module("django.db").connections
        names = [str(connections[alias].settings_dict["NAME"]) for alias in ("default", "other")]
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        assert server.exited(WAIT), f"the server (pid {server.pid}) still runs after SIGKILL"
    finally:
        remote.close()
    assert server.returncode == -signal.SIGKILL
    return names


def output(server: SpawnedServer) -> list[str]:
    return [line.rstrip("\n") for line in server.output]


def killed(
    server: SpawnedServer, before: Callable[[], None] | None = None
) -> tuple[list[str], set[str], list[str]]:
    """`server` killed in a test (`kill_in_a_test`), after `before()`: its test
    databases' names, those still there and its output lines. The server is stopped and
    what it left on PostgreSQL dropped afterwards, whatever happened; a SQLite test
    database (a file's absolute path) is still there while its file is."""
    names: list[str] = []
    try:
        if before is not None:
            before()
        names = kill_in_a_test(server)
        files = [name for name in names if name.startswith("/")]
        left = {name for name in files if Path(name).exists()}
        if len(files) < len(names):
            left |= set(names) & database_names()
        return names, left, output(server)
    finally:
        server.stop()
        drop([name for name in names if not name.startswith("/")])


@pytest.mark.postgres
def test_a_killed_server_s_test_databases_are_dropped() -> None:
    server = spawn_shop("postgres", suffix=f"killed{os.getpid()}")
    names, left, lines = killed(server)
    assert not left, f"test databases left behind: {sorted(left)}"
    for alias, name in zip(("default", "other"), names, strict=True):
        assert (
            f"dropped test database {name!r} (alias {alias!r}), left by a server that died "
            "without its teardown"
        ) in lines


@pytest.mark.postgres
def test_through_a_gateway_too() -> None:
    """The supervisor in a gateway's interpreter (stdlib only) runs the clean-up too."""
    gateway = f"popen//python={sys.executable}"
    server = spawn_shop("postgres", suffix=f"gwkilled{os.getpid()}", gateway=gateway)
    names, left, lines = killed(server)
    assert not left, f"test databases left behind: {sorted(left)}"
    assert any(line.startswith(f"dropped test database {names[0]!r}") for line in lines)


@pytest.mark.postgres
def test_with_keepdb_a_killed_server_s_test_databases_are_kept() -> None:
    server = spawn_shop("postgres", "--keepdb", suffix=f"keptkilled{os.getpid()}")
    names, kept, lines = killed(server)
    assert kept == set(names)
    for alias, name in zip(("default", "other"), names, strict=True):
        assert f"kept test database {name!r} (alias {alias!r}): the server ran with --keepdb" in (
            lines
        )


@pytest.mark.postgres
def test_a_test_database_without_fire_s_mark_is_kept() -> None:
    """'default''s mark is taken off while the server runs (as if someone made it by
    hand): only 'other' is dropped."""
    server = spawn_shop("postgres", suffix=f"unmarked{os.getpid()}")

    def unmark_default() -> None:
        remote = fire.connect(server.address, name="shop", timeout=60)
        default = str(remote.module("django.db").connections["default"].settings_dict["NAME"])
        remote.close()
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as pg:
            pg.execute(f'COMMENT ON DATABASE "{default}" IS NULL')

    names, left, lines = killed(server, unmark_default)
    assert left == {names[0]}
    assert (
        f"kept test database {names[0]!r} (alias 'default'): no fire server made it (it "
        "carries no djfire mark)"
    ) in lines
    assert any(line.startswith(f"dropped test database {names[1]!r}") for line in lines)


def test_a_killed_server_s_sqlite_files_are_removed(tmp_path: Path) -> None:
    server = spawn_shop("sqlite-file", data_dir=str(tmp_path))
    names, left_files, lines = killed(server)
    assert not left_files
    assert names == [str(tmp_path / "test_shop.sqlite3"), str(tmp_path / "test_other.sqlite3")]
    left = sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("test_"))
    assert not left, f"left behind: {left}"
    for alias, name in zip(("default", "other"), names, strict=True):
        assert any(
            line.startswith(f"dropped test database {name!r} (alias {alias!r})") for line in lines
        )


#: A run whose second test kills its server (SQLite files, from the environment).
SUITE = """
import os
import signal
import subprocess

from pytest_fire.activate import active_runner

def test_checkout(request, fire_remotes):
    shop = fire_remotes["shop"]
    shop.module("shop.models").Product.objects.create(name="tea", price="2.50")
    os.kill(active_runner(request.config).spawned["shop"].pid, signal.SIGKILL)
    shop.module("shop.models").Product.objects.count()
"""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_runner_s_message_names_what_was_dropped(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("DJFIRE_TEST_DB", "sqlite-file")
    monkeypatch.setenv("DJFIRE_TEST_DIR", str(data))
    pytester.makepyfile(test_shop=SUITE)
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *fire server 'shop' died (signal 9) during test_checkout; its last output:",
            f"E *    dropped test database '{data}/test_shop.sqlite3' (alias 'default'), left "
            "by a server that died without its teardown",
        ]
    )
    assert not [path.name for path in data.iterdir() if path.name.startswith("test_")]


def drop_left(suffix: str | None, backend: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``runfireserver --drop-left-databases`` run by hand, as the supervisor runs it."""
    return subprocess.run(
        [sys.executable, str(MANAGE), "runfireserver", "--drop-left-databases"]
        + (["--db-suffix", suffix] if suffix else []),
        env={**os.environ, "DJFIRE_TEST_DB": backend, "DJFIRE_TEST_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


@pytest.mark.postgres
def test_the_test_databases_of_a_live_server_are_kept(tmp_path: Path) -> None:
    """Its claim says it lives: the clean-up drops nothing, the server serves on."""
    server = spawn_shop("postgres", suffix=f"held{os.getpid()}")
    try:
        remote = fire.connect(server.address, name="shop", timeout=60)
        connections = remote.module("django.db").connections
        names = [str(connections[alias].settings_dict["NAME"]) for alias in ("default", "other")]
        done = drop_left(server.suffix, "postgres", tmp_path)
        assert remote.module("shop.models").Product.objects.count() == 0
        remote.close()
        kept = set(names) & database_names()
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert kept == set(names)
    # The template's spares are shared with every shop server of the suite: what earlier
    # tests' killed servers left half-made is dropped here too, one line each.
    lines = [
        line
        for line in done.stdout.splitlines()
        if not line.startswith("dropped the template spare ")
    ]
    assert len(lines) == 2, done.stdout
    for line, (alias, name) in zip(
        lines, zip(("default", "other"), names, strict=True), strict=True
    ):
        assert line.startswith(
            f"kept test database {name!r} (alias {alias!r}): a live fire server holds it "
            f"(djfire runfireserver pid {server.pid} on "
        ), line


def test_a_test_database_name_that_is_a_real_database_s_is_refused(tmp_path: Path) -> None:
    """The start's guard: with TEST NAME == NAME, nothing is dropped, and it says why."""
    (tmp_path / "shop.sqlite3").write_bytes(b"")
    done = drop_left(None, "misconfigured", tmp_path)
    assert done.returncode == 1
    assert (
        "CommandError: database alias 'default': its test database name "
        f"'{tmp_path}/shop.sqlite3' is the same as its NAME; runfireserver never serves a "
        "non-test database."
    ) in done.stderr
    assert (tmp_path / "shop.sqlite3").exists()
