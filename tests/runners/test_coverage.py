"""Coverage of the services from the full-system run: real servers, real coverage.py.

A pytest run with pytest-cov's ``--cov`` spawns the test service's server, which runs
under ``coverage run``; the run's combined data must hold the lines of a view that only
the live HTTP server ran (the test process never imports the service). Also: a server
killed during the run (its data lost, said once), a service elsewhere (a copy reached
through a popen gateway, its paths mapped back by the run's ``[paths]``), a service
directory that cannot be written (one warning, the run passes), and ``runfireserver
--coverage`` for a server started by hand.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from coverage import CoverageData

from fire.runners import supervise

from ..conftest import MANAGE

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

VIEWS = MANAGE.parent / "shop" / "views.py"

#: The system tests of the run: the shop's live HTTP server asked for its greeting (a
#: view the test process never runs), a read-only copy's too, a copy elsewhere for its
#: products (a view no other server runs), and a server killed (a second of the shop).
SYSTEM_TESTS = """
import os
import signal

import requests
from djfire import DjangoRemote
from pytest_fire.activate import active_runner


def test_views(fire_remotes) -> None:
    for name in ("shop", "locked"):
        url = DjangoRemote(fire_remotes[name]).live_url
        assert requests.get(url + "/settings/greeting/").json() == {"greeting": "hello"}
    url = DjangoRemote(fire_remotes["far"]).live_url
    assert requests.get(url + "/products/").json() == {"products": []}


def test_kills_a_server(request, fire_remotes) -> None:
    fire_remotes["doomed"].module("os").getpid()
    os.kill(active_runner(request.config).spawned["doomed"].pid, signal.SIGKILL)
"""


def line_of(path: Path, text: str) -> int:
    """The number of the line of `path` that holds `text`."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _measured(data_file: Path, source: Path) -> set[int]:
    data = CoverageData(str(data_file))
    data.read()
    return set(data.lines(str(source)) or ())


def copy_project(destination: Path) -> Path:
    """A copy of the test service elsewhere: its manage.py."""
    shutil.copytree(
        MANAGE.parent,
        destination,
        ignore=shutil.ignore_patterns("__pycache__", ".djfire_cache", "*.sqlite3", ".coverage*"),
    )
    return destination / "manage.py"


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` cannot be written, by root too (immutable, where chmod does not bind it)."""
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    try:
        if immutable and subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("root here, and chattr +i cannot make a directory read-only")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)])
        folder.chmod(0o755)


class SystemRun:
    """A pytest run with ``--cov`` in `folder` (its data file ``.coverage`` there)."""

    def __init__(
        self, folder: Path, elsewhere: Path, locked: Path, ran: subprocess.CompletedProcess[str]
    ):
        self.folder, self.elsewhere, self.locked = folder, elsewhere, locked
        self.output = ran.stdout
        self.lines = ran.stdout.splitlines()
        self.returncode = ran.returncode

    def measured(self, source: Path) -> set[int]:
        return _measured(self.folder / ".coverage", source)


@pytest.fixture(scope="module")
def system_run(tmp_path_factory: pytest.TempPathFactory) -> SystemRun:
    """One run for the tests below (each server start costs about a second): the shop;
    a copy of it elsewhere through a popen gateway, whose paths the run's ``[paths]``
    maps to the shop's; a copy in a directory nothing can write to; a server killed."""
    folder = tmp_path_factory.mktemp("run")
    elsewhere = copy_project(tmp_path_factory.mktemp("elsewhere") / "shop")
    locked = copy_project(tmp_path_factory.mktemp("locked") / "shop")
    (folder / "test_system.py").write_text(SYSTEM_TESTS)
    (folder / "pytest.ini").write_text(
        textwrap.dedent(f"""
        [pytest]
        addopts = -p no:cacheprovider
        fire_spawn =
            shop={MANAGE}
            doomed={MANAGE}:http=:suffix=doomed
            far={elsewhere}:gateway=popen//python={sys.executable}
            locked={locked}
        """)
    )
    places = (VIEWS.parent, elsewhere.parent / "shop", locked.parent / "shop")
    (folder / ".coveragerc").write_text("[paths]\nshop =" + "".join(f"\n    {p}" for p in places))
    environ = {**os.environ, "DJFIRE_TEMPLATE_DIR": str(folder / "templates")}
    command = [sys.executable, "-m", "pytest", f"--cov={VIEWS.parent}", f"--cov={folder}"]
    command += ["--cov-config=.coveragerc", "--cov-report=term-missing"]
    with read_only(locked.parent):
        ran = subprocess.run(
            command, cwd=folder, env=environ, capture_output=True, text=True, timeout=300
        )
    return SystemRun(folder, elsewhere, locked, ran)


def test_the_run_s_coverage_holds_the_lines_only_a_server_ran(system_run: SystemRun) -> None:
    assert "2 passed, 1 error" in system_run.output, system_run.output  # a killed server
    measured = system_run.measured(VIEWS)
    assert line_of(VIEWS, 'JsonResponse({"greeting"') in measured
    assert line_of(VIEWS, "def greeting") in measured, "measured from the start (imports)"
    test_file = system_run.folder / "test_system.py"  # the test process's data is in it too
    assert line_of(test_file, "requests.get(url") in system_run.measured(test_file)
    assert any(line.startswith(str(VIEWS)) for line in system_run.lines), "term-missing"
    assert not list(MANAGE.parent.glob(".coverage*")), "the servers' files were moved"
    assert not list(system_run.folder.glob(".coverage.*")), "and combined by pytest-cov"


def test_a_service_elsewhere_is_mapped_by_the_run_s_paths(system_run: SystemRun) -> None:
    """The copy measured its own files, reported as the shop's (no copy's path left)."""
    assert line_of(VIEWS, "products = Product.objects") in system_run.measured(VIEWS)
    assert str(system_run.elsewhere.parent) not in "".join(_measured_files(system_run))
    assert str(system_run.locked.parent) not in "".join(_measured_files(system_run))
    assert "fire server 'far'" not in system_run.output


def test_a_killed_server_s_lost_data_is_said_once(system_run: SystemRun) -> None:
    lost = "fire: warning: fire server 'doomed': no coverage data: it was killed (signal 9) "
    lost += "before it could write it"
    assert [line for line in system_run.lines if "'doomed': no coverage" in line] == [lost]


def test_a_read_only_service_runs_without_coverage_said_once(system_run: SystemRun) -> None:
    warning = (
        f"fire: warning: fire server 'locked': no coverage data: its directory "
        f"{system_run.locked.parent} is read-only, so it ran without coverage"
    )
    assert [line for line in system_run.lines if "'locked': no coverage" in line] == [warning]


def _measured_files(system_run: SystemRun) -> list[str]:
    data = CoverageData(str(system_run.folder / ".coverage"))
    data.read()
    return sorted(data.measured_files())


def _start_by_hand(folder: Path, *options: str) -> tuple[subprocess.Popen[bytes], list[str]]:
    """``manage.py runfireserver`` started as a person would; its output up to ready."""
    argv = [sys.executable, str(MANAGE), "runfireserver", str(folder / "s.sock"), *options]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0, cwd=folder
    )
    lines: list[str] = []
    try:
        supervise.wait_ready(process, timeout=60, output=lines.append)
    except supervise.NotReady:
        supervise.stop(process)
        raise AssertionError("".join(lines)) from None
    return process, lines


def _stop(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM, as a person's Ctrl-C or a service manager would; the rest of its output."""
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    rest = process.stdout.read().decode()
    assert process.wait(30) == 0, rest
    return rest


def test_runfireserver_coverage_writes_its_data_as_it_stops(tmp_path: Path) -> None:
    process, lines = _start_by_hand(tmp_path, "--http", "127.0.0.1:0", "--coverage")
    try:
        ready = supervise.parse_ready(lines[-1])
        assert ready is not None and ready[1] is not None
        import requests

        assert requests.get(ready[1] + "/settings/greeting/").status_code == 200
    finally:
        _stop(process)
    (data_file,) = tmp_path.glob(".coverage.*")  # parallel mode: its own name
    measured = _measured(data_file, VIEWS)
    assert line_of(VIEWS, 'JsonResponse({"greeting"') in measured
    assert line_of(VIEWS, "def greeting") in measured, "measured from the start (imports)"


def test_runfireserver_coverage_into_a_read_only_directory_warns_and_serves(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        process, lines = _start_by_hand(
            tmp_path, "--coverage", "--coverage-file", str(locked / ".coverage")
        )
        _stop(process)
    warnings = [line for line in lines if "--coverage" in line]
    assert warnings == [
        f"runfireserver: warning: --coverage: {locked} is read-only, so the server runs "
        "without coverage (its data could not be written): give --coverage-file PATH in a "
        "writable directory\n"
    ]
    assert not list(tmp_path.glob(".coverage*"))


def test_what_each_server_measures() -> None:
    """The options of ``coverage run`` per server, from the run's sources and [paths]."""
    from fire.runners.coverage import CoverageSettings, save_server_data, server_options
    from fire.runners.spawn import ServerSpec, SpawnedServer, parse_spawn_spec

    here = parse_spawn_spec(f"shop={MANAGE}")
    far = parse_spawn_spec("shop=/srv/shop/manage.py:gateway=ssh=ci@build7//python=/srv/py")
    project, shop = MANAGE.parent, MANAGE.parent / "shop"

    def options(spec: ServerSpec, *sources: str, **settings: Any) -> list[str] | None:
        return server_options(CoverageSettings("/run/.coverage", list(sources), **settings), spec)

    assert options(here, str(shop)) == [f"--source={shop}"]  # a source in the service
    assert options(here, str(project.parent)) == [f"--source={project}"]  # one holding it
    assert options(here, "/elsewhere") is None  # another service's: not measured
    assert options(here, "shop.views") == ["--source=shop.views"]  # a module name
    every = server_options(CoverageSettings("/run/.coverage", branch=True), here)
    assert every == [f"--source={project}", "--branch"]
    with_rc = options(here, str(shop), config_file="/run/.coveragerc")
    assert with_rc == [f"--source={shop}", "--rcfile=/run/.coveragerc"]
    paths = {"shop": [str(shop), "/srv/shop/shop/"]}  # the copy on the other host
    remote = options(far, str(shop), config_file="/run/.coveragerc", paths=paths)
    assert remote == ["--source=/srv/shop/shop"], "its own path; no local file goes there"
    assert options(far, str(shop)) is None
    unmeasured = SpawnedServer(far)
    said = save_server_data({"shop": unmeasured}, CoverageSettings("/run/.coverage", [str(shop)]))
    assert said == [
        "fire server 'shop': not measured: none of the run's sources is its directory on its "
        "host (/srv/shop) or holds it: add that directory to the [paths] entry of its source"
    ]


class _Said:
    """The supervisor's end of a channel, keeping what it sends."""

    def __init__(self) -> None:
        self.messages: list[tuple[object, ...]] = []

    def send(self, message: tuple[object, ...]) -> None:
        self.messages.append(message)


def test_a_service_interpreter_without_coverage_runs_its_server_without(tmp_path: Path) -> None:
    """Its supervisor asks the interpreter (a real one, where ``import coverage`` fails)
    and starts the server as it is, saying why and naming the extra to install."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "coverage.py").write_text("raise ImportError('not installed here')\n")
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={blocker} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    request = {"cwd": str(tmp_path), "coverage": {"options": [], "data_file": ".coverage.x"}}
    argv = [str(python), str(MANAGE), "runfireserver"]
    said = _Said()
    assert supervise._under_coverage(said, request, argv, dict(os.environ)) == (argv, None)
    assert said.messages == [
        (
            "coverage-lost",
            f"{python} has no coverage.py, so it ran without coverage: install djfire's "
            "coverage extra in the service's environment (djfire[coverage])",
        )
    ]
    argv[0] = sys.executable  # this one has it: run under coverage, data in its directory
    wrapped, data_file = supervise._under_coverage(said, request, argv, {})
    assert data_file == str(tmp_path / ".coverage.x")
    assert wrapped == [
        sys.executable,
        *("-m", "coverage", "run", "--parallel-mode", f"--data-file={data_file}"),
        *argv[1:],
    ]
