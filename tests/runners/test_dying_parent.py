"""A runner killed outright (SIGKILL) never leaves its server's test databases behind.

A real parent process spawns the test service on PostgreSQL, opens a test scope on it
(the server holds an open transaction), says where it is, and is killed. The server,
whose output was a pipe to the dead parent, must still roll back, drop its test
databases (or keep them with --keepdb) and remove its socket and the directory made
for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TESTS, require_postgres
from tests.runners.leftovers import database_names, drop, wait_gone

pytestmark = pytest.mark.postgres

#: The parent: spawns the shop (through a gateway, or with the supervisor in a thread),
#: opens a test scope, prints the server's pid, address and databases, then waits.
PARENT = """
import sys, time
sys.path.insert(0, {root!r})
import fire
from tests.conftest import spawn_shop

gateway, suffix, data_dir, *args = sys.argv[1:]
server = spawn_shop(
    "postgres", *args, suffix=suffix, data_dir=data_dir,
    gateway=None if gateway == "none" else gateway,
)
remote = fire.connect(server.address, name="shop", timeout=60)
remote.begin_scope()
names = [remote.module("django.db").connections[a].settings_dict["NAME"]
         for a in ("default", "other")]
print(server.pid, server.address, *names, flush=True)
time.sleep(600)
"""


def kill_parent_of_a_server(
    gateway: str, data_dir: Path, *args: str
) -> tuple[int, Path, list[str]]:
    """Start the parent, kill it once its server is in a test; the server's pid, socket
    and test databases. Waits (bounded) for the server to end."""
    suffix = f"parent{os.getpid()}"
    script = PARENT.format(root=str(TESTS.parent))
    parent = subprocess.Popen(
        [sys.executable, "-c", script, gateway, suffix, str(data_dir), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, "the parent ended before its server was in a test"
        pid_text, address, *names = line.split()
        pid, socket = int(pid_text), Path(address)
        assert set(names) <= database_names()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    if not wait_gone(pid):  # "it ends at all": a generous bound
        os.kill(pid, signal.SIGKILL)
        drop(names)
        pytest.fail(f"the server (pid {pid}) still runs 60 s after its parent was killed")
    return pid, socket, names


@pytest.mark.parametrize("gateway", ["none", f"popen//python={sys.executable}"])
def test_a_server_whose_parent_is_killed_drops_its_test_databases_and_socket(
    gateway: str, tmp_path: Path
) -> None:
    require_postgres()
    _, socket, names = kill_parent_of_a_server(gateway, tmp_path)
    left = set(names) & database_names()
    drop(names)
    assert not left, f"test databases left behind: {sorted(left)}"
    assert not socket.exists()
    assert not socket.parent.exists(), f"the socket's directory {socket.parent} is left"


def test_with_keepdb_a_server_whose_parent_is_killed_keeps_its_test_databases(
    tmp_path: Path,
) -> None:
    require_postgres()
    _, socket, names = kill_parent_of_a_server("none", tmp_path, "--keepdb")
    kept = set(names) & database_names()
    drop(names)
    assert kept == set(names)
    assert not socket.parent.exists(), f"the socket's directory {socket.parent} is left"
