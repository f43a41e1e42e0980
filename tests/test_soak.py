"""The soak's watcher (soak/watch.py) catches each leak it is there for.

A real soak run (both example services spawned on PostgreSQL), two of its tests, then a
test that leaks on purpose into the shop's server: a row committed around the test's
transaction (straight into its test database), 32 MB of memory and an open file held
through fire references, and a connection to its test database kept open. The run must
fail, naming each, except the connection: the server's drop ends it (``WITH (FORCE)``),
and the test database is gone all the same. What the watcher says of what is left
behind is checked on a real process, directory and database of its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from soak.leftovers import leftovers

from .conftest import require_postgres

SOAK = Path(__file__).resolve().parent.parent / "soak"

LEAK = """
import psycopg

HELD = []  # alive until the run ends: the server's objects, the database connection


def test_leak(fire_remotes):
    shop = fire_remotes["shop"]
    HELD.append(shop.module("array").array("q", shop.module("builtins").range(4_000_000)))
    HELD.append(shop.module("builtins").open("/dev/null"))
    name = shop.module("django.db").connection.settings_dict["NAME"]
    db = psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True)
    HELD.append(db)  # open while the server stops: its drop ends it
    db.execute(
        "INSERT INTO shop_order (user_id, item, quantity, created_at) "
        "VALUES (1, 'leaked', 1, now())"
    )
"""


@pytest.mark.postgres
def test_a_leaking_run_fails_naming_each_leak(tmp_path: Path) -> None:
    require_postgres()
    for path in [SOAK / "pytest.ini", *SOAK.glob("*.py")]:
        (tmp_path / path.name).symlink_to(path)
    (tmp_path / "test_leak.py").write_text(LEAK)
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "FIRE_", "SOAK_"))
    }
    report = tmp_path / "soak.json"
    environ.update(SOAK_TESTS="2", SOAK_REPORT=str(report), SOAK_LEFTOVER_WAIT="2")

    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "test_soak.py", "test_leak.py"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # the run's shop server's test database: its suffix is the run's pid
    database = f"test_fire_example_shop_soak{run.pid}"
    try:
        output = run.communicate(timeout=300)[0]
    finally:
        run.kill()
        run.wait()
        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    assert run.returncode == 1, output
    assert "3 passed" in output
    assert "GOALS MISSED:" in output
    assert "shop (main): committed rows changed over the run: {'shop_order': '0 -> 1'}" in output
    assert re.search(
        r"shop \(main\): RSS grew \+\d+\.\d % \(\d+ -> \d+ KiB\), more than \+5 %", output
    )
    fds = re.search(r"shop \(main\): open file descriptors (\d+) -> (\d+)", output)
    assert fds, output
    before, after = map(int, fds.groups())
    assert after == before + 1
    assert re.search(r"open file descriptors \d+ -> \d+ \(opened \d+ /dev/null\)", output)
    assert "accounts (main):" not in output.split("GOALS MISSED:")[1]
    assert "left behind" not in output  # the held connection did not keep the database
    assert len(json.loads(report.read_text())["goals_missed"]) == 3
    with psycopg.connect(host="127.0.0.1", user="postgres") as db:
        found = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        assert found.fetchone() is None


@pytest.mark.postgres
def test_the_watcher_names_what_is_left_behind(tmp_path: Path) -> None:
    require_postgres()
    database = f"test_fire_soak_left_{os.getpid()}"
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{database}"')
    try:
        left = leftovers([process.pid], [str(tmp_path)], [database, f"{database}_gone"], 0.5)
    finally:
        process.kill()
        process.wait()
        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{database}"')
    assert left == [
        f"process {process.pid} still running",
        f"directory {tmp_path}",
        f"test database {database}",
    ]
    assert leftovers([process.pid], [str(tmp_path / "gone")], [database], 0) == []
