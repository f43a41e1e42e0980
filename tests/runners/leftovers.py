"""What a run may leave behind, looked at from outside: processes still running, and
test databases on the shared PostgreSQL (the tests of killed servers, dying parents
and Ctrl-C check both, and clean up after themselves with the same calls)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

#: Seconds to wait for a process that should end at all (a bound, not a measure).
GONE_WITHIN = 60.0


def _pg() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped yet has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, seconds: float = GONE_WITHIN) -> bool:
    """Whether `pid` has ended within `seconds`."""
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not running(pid)


def database_names() -> set[str]:
    """Every database's name on the shared PostgreSQL."""
    with _pg() as pg:
        return {str(row[0]) for row in pg.execute("SELECT datname FROM pg_database")}


def left_databases(suffix: str) -> list[str]:
    """The databases whose names hold `suffix` (a run's own), sorted."""
    with _pg() as pg:
        rows = pg.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"%{suffix}%"])
        return sorted(str(row[0]) for row in rows)


def drop(names: list[str]) -> None:
    """Drop the databases `names` that exist (a test's clean-up)."""
    if not names:
        return
    with _pg() as pg:
        for name in names:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
