"""The test-suite's Django service (tests/djproject, the shop app), served for the djfire rows.

It runs as ``manage.py runfireserver --http 127.0.0.1:0`` in a subprocess, as the test
suite starts it (tests/conftest.py), so the bench imports nothing from tests/. One
server per database backend is shared by the rows that compare isolation strategies on
it (`Env.shared`). On PostgreSQL the test databases get a per-run suffix, so a bench run
never touches (or drops) the databases of a test run going on at the same time.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

from .registry import REPO_ROOT, Env

__all__ = ["BACKENDS", "Shop", "postgres_available", "shop"]

MANAGE = REPO_ROOT / "tests" / "djproject" / "manage.py"
POSTGRES = ("127.0.0.1", 5432)

#: DJFIRE_TEST_DB value -> how the rows name it.
BACKENDS = {"sqlite": "SQLite (in-memory)", "postgres": "PostgreSQL"}


def postgres_available() -> bool:
    """Whether PostgreSQL listens where tests/djproject expects it (checked as the tests do)."""
    try:
        with socket.create_connection(POSTGRES, timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Shop:
    """A connected shop server: its address, remote, live URL, and the modules a test uses."""

    address: str
    remote: Any
    live_url: str
    factories: Any
    models: Any


def _start(env: Env, backend: str) -> Shop:
    import fire
    from djfire import DjangoRemote

    if not MANAGE.is_file():
        raise FileNotFoundError(f"{MANAGE} not found: the djfire rows serve the tests' project")
    data_dir = env.tmpdir / f"shop-{backend}"
    data_dir.mkdir()
    address = env.tmpdir / f"shop-{backend}.sock"
    argv = [sys.executable, str(MANAGE), "runfireserver", str(address)]
    argv += ["--http", "127.0.0.1:0", "--verbosity", "0", "--db-suffix", f"bench{os.getpid()}"]
    env.spawn(
        argv,
        cwd=MANAGE.parent,
        environ={
            "DJANGO_SETTINGS_MODULE": "djproject.settings",
            "DJFIRE_TEST_DB": backend,
            "DJFIRE_TEST_DIR": str(data_dir),
        },
        timeout=120.0,
    )
    # Closed before the server stops (the run's ExitStack unwinds in reverse).
    remote = env.stack.enter_context(fire.connect(address, name=f"shop-{backend}"))
    return Shop(
        address=str(address),
        remote=remote,
        live_url=DjangoRemote(remote).live_url,
        factories=remote.module("shop.factories"),
        models=remote.module("shop.models"),
    )


def shop(env: Env, backend: str) -> Shop:
    """The shop server on `backend` ("sqlite" or "postgres"), started on first use."""
    return env.shared(f"shop-{backend}", lambda: _start(env, backend))
