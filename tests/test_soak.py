"""The soak's watcher (soak/watch.py) catches each leak it is there for.

A real soak run (both example services spawned on PostgreSQL), two of its tests, then a
test that leaks on purpose into the shop's server: a row committed around the test's
transaction (straight into its test database), 32 MB of memory and an open file held
through fire references. The run must fail, naming each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import require_postgres

SOAK = Path(__file__).resolve().parent.parent / "soak"

LEAK = """
import psycopg

HELD = []  # the references keep their objects alive in the server until the run ends


def test_leak(fire_remotes):
    shop = fire_remotes["shop"]
    HELD.append(shop.module("array").array("q", shop.module("builtins").range(4_000_000)))
    HELD.append(shop.module("builtins").open("/dev/null"))
    name = shop.module("django.db").connection.settings_dict["NAME"]
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True) as db:
        db.execute(
            "INSERT INTO shop_order (user_id, item, quantity, created_at) "
            "VALUES (1, 'leaked', 1, now())"
        )
"""


@pytest.mark.postgres
def test_a_leaking_run_fails_naming_the_row_the_memory_and_the_file(tmp_path: Path) -> None:
    require_postgres()
    for name in ("pytest.ini", "conftest.py", "measure.py", "settings.py", "watch.py"):
        (tmp_path / name).symlink_to(SOAK / name)
    (tmp_path / "test_soak.py").symlink_to(SOAK / "test_soak.py")
    (tmp_path / "test_leak.py").write_text(LEAK)
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "FIRE_", "SOAK_"))
    }
    report = tmp_path / "soak.json"
    environ.update(SOAK_TESTS="2", SOAK_REPORT=str(report))

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "test_soak.py", "test_leak.py"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "3 passed" in output
    assert "GOALS MISSED:" in output
    assert "shop (main): rows survived the tests: {'shop_order': '0 -> 1'}" in output
    assert re.search(
        r"shop \(main\): RSS grew \+\d+\.\d % \(\d+ -> \d+ KiB\), more than \+5 %", output
    )
    fds = re.search(r"shop \(main\): open file descriptors (\d+) -> (\d+)", output)
    assert fds, output
    before, after = map(int, fds.groups())
    assert after == before + 1
    assert "accounts (main):" not in output.split("GOALS MISSED:")[1]
    assert len(json.loads(report.read_text())["goals_missed"]) == 3
