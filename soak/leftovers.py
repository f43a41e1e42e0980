"""What a run's servers leave behind once they should be gone: processes, directories,
test databases.

A server stops after its runner's last test, and under xdist the controller may return
before every worker's servers have finished tearing down (it interrupts a worker still
stopping them after 5 s, and the server finishes alone). So the check waits, up to a
bound, for each to go, and names what is still there then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["leftovers"]


def leftovers(
    pids: Iterable[int], directories: Iterable[str], databases: Iterable[str], wait: float
) -> list[str]:
    """What is still there after up to `wait` seconds: one description per thing."""
    pids, directories, databases = list(pids), list(directories), list(databases)
    deadline = time.monotonic() + wait
    while True:
        left = [f"process {pid} still running" for pid in pids if Path(f"/proc/{pid}").exists()]
        left += [f"directory {path}" for path in directories if Path(path).exists()]
        left += [f"test database {name}" for name in _existing(databases)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def _existing(names: list[str]) -> list[str]:
    """Which of these PostgreSQL databases exist (PGHOST and PGUSER as the services use)."""
    if not names:
        return []
    import psycopg

    host = os.environ.get("PGHOST", "127.0.0.1")
    user = os.environ.get("PGUSER", "postgres")
    with psycopg.connect(host=host, user=user, dbname="postgres") as connection:
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s) ORDER BY datname", [names]
        ).fetchall()
    return [name for (name,) in rows]
