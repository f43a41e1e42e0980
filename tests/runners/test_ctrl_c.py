"""Ctrl-C in a real terminal: a run ends within seconds, cleanly; a second Ctrl-C at once.

pytest runs under a pseudo-terminal, as its controlling terminal, so ``\\x03`` is
Ctrl-C as a person types it: the terminal sends SIGINT to pytest and to everything in
its process group (a spawned server too, unless it has a session of its own). Each run
spawns the test service on PostgreSQL and interrupts a remote ``time.sleep(60)`` whose
timeout is 60 s: before, pytest waited that out and more (a proxy's repr, the summary's
``info()`` and the supervisor each waited their 30 s) and left the server, its test
databases and its socket.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MANAGE, require_postgres
from tests.runners.leftovers import drop, left_databases, running, wait_gone
from tests.runners.terminal import Terminal as PseudoTerminal

pytestmark = pytest.mark.postgres

#: A test that sleeps on the server, after saying where the server is.
SLEEPING_TEST = """
def test_sleeps(fire_remotes):
    shop = fire_remotes["shop"]
    print("SLEEPING", shop.info()["pid"], shop.address, flush=True)
    shop.module("time").sleep(60)
"""
#: The same under plain unittest: a `FireTestCase` that spawns its server and sleeps on
#: it in its test, or (``SLEEP_IN=tearDownClass``) outside any test.
SLEEPING_TEST_CASE = """
import os

from fire.testing import FireTestCase


class Sleeps(FireTestCase):
    fire_spawn = {{"shop": {spec!r}}}
    fire_timeout = 60

    @classmethod
    def sleep(cls):
        shop = cls.fire_remotes["shop"]
        print("SLEEPING", shop.info()["pid"], shop.address, flush=True)
        shop.module("time").sleep(60)

    def test_sleeps(self):
        if os.environ["SLEEP_IN"] == "test":
            self.sleep()

    @classmethod
    def tearDownClass(cls):
        if os.environ["SLEEP_IN"] == "tearDownClass":
            cls.sleep()
        super().tearDownClass()
"""
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s"]
#: What the runner prints once it is waiting for its servers after a Ctrl-C.
WAITING = "Ctrl-C again to exit at once"
#: Seconds the goal allows (issue 23: "≤ 5 s"); the limit is looser, for a busy machine.
LIMIT = 15.0


def pytest_command(path: Path, spec: str, *options: str) -> list[str]:
    """pytest on `path`'s tests, spawning `spec` with a 60 s timeout."""
    return [*PYTEST, *options, f"--fire-spawn={spec}", "-o", "fire_timeout=60", str(path)]


class Terminal(PseudoTerminal):
    """`command` in `path` under a pseudo-terminal, its service on PostgreSQL."""

    def __init__(self, path: Path, command: list[str], **env: str) -> None:
        environ = {**os.environ, "DJFIRE_TEST_DB": "postgres", "DJFIRE_TEST_DIR": str(path)}
        super().__init__(path, command, {**environ, **env})


class Run:
    """A run of `SLEEPING_TEST` under a terminal (or with `unittest`, of
    `SLEEPING_TEST_CASE`, sleeping in `sleep_in`), and what to clean up after it."""

    def __init__(
        self,
        path: Path,
        how: str = f"python={sys.executable}",
        *,
        unittest: bool = False,
        sleep_in: str = "test",
    ) -> None:
        require_postgres()
        self.suffix = f"ctrlc{os.getpid()}"
        spec = f"{MANAGE}:suffix={self.suffix}:{how}"
        if unittest:
            (path / "test_sleeps.py").write_text(SLEEPING_TEST_CASE.format(spec=spec))
            command = [sys.executable, "-m", "unittest", "test_sleeps"]
            self.terminal = Terminal(path, command, SLEEP_IN=sleep_in)
        else:
            (path / "test_sleeps.py").write_text(SLEEPING_TEST)
            self.terminal = Terminal(path, pytest_command(path, f"shop={spec}"))
        self.pid = 0
        self.socket = Path("/nonexistent")

    def sleeping(self) -> None:
        """Wait until the test sleeps on the server; note the server's pid and socket."""
        said = re.compile(r"SLEEPING (\d+) (\S+)\r?\n")
        assert self.terminal.read_until(lambda out: bool(said.search(out)), 180), (
            self.terminal.output
        )
        found = said.search(self.terminal.output)
        assert found is not None
        self.pid, self.socket = int(found[1]), Path(found[2])
        time.sleep(1)  # the call is on the server now

    def clean(self) -> None:
        self.terminal.close()
        if self.pid and running(self.pid):
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGKILL)
        drop(left_databases(self.suffix))
        if self.socket.parent.name.startswith("fire-") and self.socket.parent.is_dir():
            for child in self.socket.parent.iterdir():
                child.unlink()
            self.socket.parent.rmdir()


@pytest.fixture
def own_session_python(tmp_path: Path) -> str:
    """An interpreter that runs in a session of its own: the terminal's Ctrl-C misses it
    (as a server through a gateway or on another host), only the runner can stop it."""
    python = tmp_path / "python-own-session"
    python.write_text(f'#!/bin/sh\nexec setsid {sys.executable} "$@"\n')
    python.chmod(0o755)
    return str(python)


@pytest.mark.parametrize("session", ["terminal", "own", "gateway"])
def test_ctrl_c_during_a_long_call_ends_the_run_within_seconds_leaving_nothing(
    tmp_path: Path, session: str, request: pytest.FixtureRequest
) -> None:
    how = {
        "terminal": f"python={sys.executable}",  # the server gets the terminal's SIGINT too
        "own": f"python={request.getfixturevalue('own_session_python')}",
        "gateway": f"gateway=popen//python={sys.executable}",  # the gateway gets it too
    }[session]
    project = tmp_path / "project"
    project.mkdir()
    run = Run(project, how)
    try:
        run.sleeping()
        typed = run.terminal.ctrl_c()
        status = run.terminal.wait_exit(150)
        took = time.monotonic() - typed
        print(f"Ctrl-C to exit ({session}): {took:.2f} s")
        assert status == 2, run.terminal.output
        assert took < LIMIT, run.terminal.output
        assert "fire: interrupted: stopping the spawned servers" in run.terminal.output
        assert "may be left" not in run.terminal.output
        assert wait_gone(run.pid), f"the server (pid {run.pid}) still runs"
        assert left_databases(run.suffix) == []
        assert not run.socket.parent.exists()
    finally:
        run.clean()


def test_a_second_ctrl_c_exits_at_once_naming_what_may_be_left(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    run = Run(project)
    try:
        run.sleeping()
        os.kill(run.pid, signal.SIGSTOP)  # a server slow to stop: the runner waits for it
        run.terminal.ctrl_c()
        assert run.terminal.read_until(lambda out: WAITING in out, 60), run.terminal.output
        typed = run.terminal.ctrl_c()
        status = run.terminal.wait_exit(60)
        took = time.monotonic() - typed
        print(f"second Ctrl-C to exit: {took:.2f} s")
        assert status == 2, run.terminal.output
        assert took < LIMIT / 3, run.terminal.output
        databases = ", ".join(f"test_djfire_shop{alias}_{run.suffix}" for alias in ("", "_other"))
        assert (
            "fire: interrupted again: exiting now, not waiting for the servers; may be left, "
            f"if their teardown does not finish: server 'shop' (pid {run.pid}) with test "
            f"databases {databases} and socket directory {run.socket.parent}"
        ) in run.terminal.output.replace("\r\n", "\n")
        # Left to itself, the server still tears down once it runs again.
        os.kill(run.pid, signal.SIGCONT)
        assert wait_gone(run.pid), f"the server (pid {run.pid}) still runs"
        assert left_databases(run.suffix) == []
        assert not run.socket.parent.exists()
    finally:
        run.clean()


def test_ctrl_c_under_unittest_during_a_long_call_ends_the_run_leaving_nothing(
    tmp_path: Path, own_session_python: str
) -> None:
    """``python -m unittest``: a `FireTestCase`'s run is interrupted as pytest's is. The
    server is in a session of its own: only the runner stops it."""
    project = tmp_path / "project"
    project.mkdir()
    run = Run(project, f"python={own_session_python}", unittest=True)
    try:
        run.sleeping()
        typed = run.terminal.ctrl_c()
        status = run.terminal.wait_exit(150)
        print(f"Ctrl-C to exit (unittest): {time.monotonic() - typed:.2f} s")
        assert status == -signal.SIGINT, run.terminal.output  # Python's exit on Ctrl-C
        assert "fire: interrupted: stopping the spawned servers" in run.terminal.output
        assert "may be left" not in run.terminal.output
        assert wait_gone(run.pid), f"the server (pid {run.pid}) still runs"
        assert left_databases(run.suffix) == []
        assert not run.socket.parent.exists()
    finally:
        run.clean()


def test_a_second_ctrl_c_under_unittest_exits_at_once_naming_what_may_be_left(
    tmp_path: Path,
) -> None:
    """Ctrl-C outside any test (in ``tearDownClass``): the runner hears of it as the
    process exits on it."""
    project = tmp_path / "project"
    project.mkdir()
    run = Run(project, unittest=True, sleep_in="tearDownClass")
    try:
        run.sleeping()
        os.kill(run.pid, signal.SIGSTOP)  # a server slow to stop: the runner waits for it
        run.terminal.ctrl_c()
        assert run.terminal.read_until(lambda out: WAITING in out, 60), run.terminal.output
        typed = run.terminal.ctrl_c()
        status = run.terminal.wait_exit(60)
        print(f"second Ctrl-C to exit (unittest): {time.monotonic() - typed:.2f} s")
        assert status == 2, run.terminal.output
        databases = ", ".join(f"test_djfire_shop{alias}_{run.suffix}" for alias in ("", "_other"))
        assert (
            "fire: interrupted again: exiting now, not waiting for the servers; may be left, "
            f"if their teardown does not finish: server 'shop' (pid {run.pid}) with test "
            f"databases {databases} and socket directory {run.socket.parent}"
        ) in run.terminal.output.replace("\r\n", "\n")
        os.kill(run.pid, signal.SIGCONT)
        assert wait_gone(run.pid), f"the server (pid {run.pid}) still runs"
        assert left_databases(run.suffix) == []
        assert not run.socket.parent.exists()
    finally:
        run.clean()


#: Under pytest-xdist a worker's output is not the terminal's: the test says it sleeps
#: in a file, with its server's pid and socket.
XDIST_TEST = """
import os
from pathlib import Path

def test_sleeps_{n}(fire_remotes):
    shop = fire_remotes["shop"]
    said = f"{{shop.info()['pid']}} {{shop.address}}"
    Path(__file__).with_name("sleeping-" + os.environ["PYTEST_XDIST_WORKER"]).write_text(said)
    shop.module("time").sleep(60)
"""
#: Each worker says that its session's fixtures were torn down (as pytest-django's
#: test database is, dropped by its session fixture), and whether it made its own
#: summary: an interrupted worker does the first, not the second, which nobody sees.
XDIST_CONFTEST = """
import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def session_resource():
    yield
    (HERE / ("torn-down-" + os.environ["PYTEST_XDIST_WORKER"])).write_text("")


def pytest_terminal_summary(config):
    if "PYTEST_XDIST_WORKER" in os.environ:
        (HERE / ("summary-" + os.environ["PYTEST_XDIST_WORKER"])).write_text("")
"""


class XdistRun:
    """`XDIST_TEST` twice under ``pytest -n 2`` in a terminal: each worker spawns its
    server and sleeps on it; and what to clean up after it."""

    def __init__(self, tmp_path: Path) -> None:
        require_postgres()
        self.project = tmp_path / "project"
        self.project.mkdir()
        (self.project / "conftest.py").write_text(XDIST_CONFTEST)
        for n in (1, 2):
            (self.project / f"test_sleeps_{n}.py").write_text(XDIST_TEST.format(n=n))
        self.suffix = f"ctrlc{os.getpid()}"
        spec = f"shop={MANAGE}:suffix={self.suffix}"
        self.terminal = Terminal(self.project, pytest_command(self.project, spec, "-n", "2"))
        #: Each worker's server: pid and socket, by worker id.
        self.servers: dict[str, tuple[int, Path]] = {}

    def sleeping(self) -> None:
        """Wait until both tests sleep on their servers; note the servers."""
        flags = {worker: self.project / f"sleeping-{worker}" for worker in ("gw0", "gw1")}
        done = lambda _: all(flag.exists() for flag in flags.values())  # noqa: E731
        assert self.terminal.read_until(done, 240), self.terminal.output
        time.sleep(1)  # the calls are on the servers now
        for worker, flag in flags.items():
            pid_text, address = flag.read_text().split()
            self.servers[worker] = (int(pid_text), Path(address))

    def clean(self) -> None:
        self.terminal.close()
        for pid, socket in self.servers.values():
            if running(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            if socket.parent.name.startswith("fire-") and socket.parent.is_dir():
                for child in socket.parent.iterdir():
                    child.unlink()
                socket.parent.rmdir()
        drop(left_databases(self.suffix))


def test_ctrl_c_under_xdist_stops_every_worker_s_server(tmp_path: Path) -> None:
    run = XdistRun(tmp_path)
    terminal, project = run.terminal, run.project
    try:
        run.sleeping()
        typed = terminal.ctrl_c()
        status = terminal.wait_exit(150)
        took = time.monotonic() - typed
        print(f"Ctrl-C to exit (xdist -n 2): {took:.2f} s")
        assert status == 2, terminal.output
        assert took < 2 * LIMIT, terminal.output  # two servers, four databases
        # One Ctrl-C: execnet's own SIGINT to the workers as they end is no second one.
        assert "interrupted again" not in terminal.output
        # Each worker stopped its servers at once, tore its session's fixtures down and
        # exited, without the summary nobody sees (the controller waited for it).
        assert terminal.output.count("fire: interrupted: stopping the spawned servers") == 2
        for worker in ("gw0", "gw1"):
            assert (project / f"torn-down-{worker}").exists(), terminal.output
            assert not (project / f"summary-{worker}").exists(), terminal.output
        for pid, socket in run.servers.values():  # each worker's, on its own if killed
            assert wait_gone(pid), f"the server (pid {pid}) still runs"
            assert not socket.parent.exists()
        assert left_databases(run.suffix) == []
    finally:
        run.clean()


def test_a_second_ctrl_c_under_xdist_names_every_worker_s_server(tmp_path: Path) -> None:
    """The controller spawned no server: its line names those its workers reported."""
    run = XdistRun(tmp_path)
    terminal = run.terminal
    try:
        run.sleeping()
        for pid, _ in run.servers.values():  # servers slow to stop: the workers wait
            os.kill(pid, signal.SIGSTOP)
        terminal.ctrl_c()
        waiting = lambda out: out.count(WAITING) == 2  # noqa: E731  (each worker's)
        assert terminal.read_until(waiting, 60), terminal.output
        terminal.ctrl_c()
        assert terminal.wait_exit(60) == 2, terminal.output
        named = []
        for worker, (pid, socket) in sorted(run.servers.items()):
            databases = ", ".join(
                f"test_djfire_shop{alias}_{run.suffix}_{worker}" for alias in ("", "_other")
            )
            named.append(
                f"[{worker}] server 'shop' (pid {pid}) with test databases {databases} "
                f"and socket directory {socket.parent}"
            )
        assert (
            "fire: interrupted again: exiting now, not waiting for the servers; may be left, "
            f"if their teardown does not finish: {'; '.join(named)}\n"
        ) in terminal.output.replace("\r\n", "\n")
        # Left to themselves, the servers still tear down once they run again.
        for pid, _ in run.servers.values():
            os.kill(pid, signal.SIGCONT)
        for pid, socket in run.servers.values():
            assert wait_gone(pid), f"the server (pid {pid}) still runs"
            assert not socket.parent.exists()
        assert left_databases(run.suffix) == []
    finally:
        run.clean()
