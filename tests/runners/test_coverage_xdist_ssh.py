"""Coverage of the services where the tests run spread out: pytest-xdist, ssh gateways.

Real pytest runs with pytest-cov's ``--cov`` over the test service; each asserts that
the run's combined data holds a view's lines that only a spawned server ran (the test
process never imports the service):

- ``pytest -n 2``, and xdist workers reached over ssh (``--tx ssh=…``): each worker
  spawns its own server, which runs a view of its own (chosen by the worker's name), so
  both views in the report means both workers' servers' data reached the controller's
  combine;
- a copy of the service reached through an ssh gateway (this directory's ``sshd``): its
  data comes back as bytes over the gateway, and the run's ``[paths]`` map the copy's
  files to the service's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from coverage import CoverageData

from ..conftest import MANAGE
from .test_coverage import VIEWS, copy_project, line_of

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

GREETING = line_of(VIEWS, 'JsonResponse({"greeting"')
PRODUCTS = line_of(VIEWS, "products = Product.objects")

#: Each worker asks its server for a view of its own: gw0 the greeting, gw1 the products.
WORKERS_TESTS = """
import os

import pytest
import requests
from djfire import DjangoRemote

VIEW_OF = {"gw0": "/settings/greeting/", "gw1": "/products/"}


@pytest.mark.parametrize("n", range(4))
def test_a_view_of_the_worker_s_own(fire_remotes, n) -> None:
    url = DjangoRemote(fire_remotes["shop"]).live_url
    assert requests.get(url + VIEW_OF[os.environ["PYTEST_XDIST_WORKER"]]).status_code == 200
"""

#: The copy reached over ssh asked for its products.
SSH_TESTS = """
import requests
from djfire import DjangoRemote


def test_products_over_ssh(fire_remotes) -> None:
    url = DjangoRemote(fire_remotes["far"]).live_url
    assert requests.get(url + "/products/").json() == {"products": []}
"""


def _run_pytest(folder: Path, tests: str, *options: str) -> subprocess.CompletedProcess[str]:
    """``pytest --cov`` of the shop's code over `tests` in `folder`, its report term-missing."""
    (folder / "test_system.py").write_text(tests)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    command += [f"--cov={VIEWS.parent}", "--cov-report=term-missing", *options]
    environ = {**os.environ, "DJFIRE_TEMPLATE_DIR": str(folder / "templates")}
    return subprocess.run(
        command, cwd=folder, env=environ, capture_output=True, text=True, timeout=300
    )


def _measured(folder: Path) -> dict[str, set[int]]:
    """The lines of each file in the run's combined data file, ``.coverage`` in `folder`."""
    data = CoverageData(str(folder / ".coverage"))
    data.read()
    return {path: set(data.lines(path) or ()) for path in data.measured_files()}


def _assert_each_worker_s_server_is_in_the_report(
    folder: Path, ran: subprocess.CompletedProcess[str]
) -> None:
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for worker in ("gw0", "gw1"):  # each took tests, so each spawned its server
        assert f"[{worker}] [" in ran.stdout, ran.stdout
    measured = _measured(folder)[str(VIEWS)]
    # The run's output says why a server's data is missing (lost, killed, not written).
    assert GREETING in measured, f"gw0's server's data is not in the report:\n{ran.stdout}"
    assert PRODUCTS in measured, f"gw1's server's data is not in the report:\n{ran.stdout}"
    assert any(line.startswith(str(VIEWS)) for line in ran.stdout.splitlines()), "term-missing"
    assert "fire: warning" not in ran.stdout, ran.stdout
    assert not list(MANAGE.parent.glob(".coverage*")), "the servers' files were moved"
    assert not list(folder.glob(".coverage.*")), "and combined by pytest-cov"


def test_each_xdist_worker_s_server_is_in_the_report(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(f"[pytest]\nfire_spawn = shop={MANAGE}\n")
    ran = _run_pytest(tmp_path, WORKERS_TESTS, "-n", "2", "-v")
    _assert_each_worker_s_server_is_in_the_report(tmp_path, ran)


def test_xdist_workers_over_ssh_bring_their_servers_data(tmp_path: Path, ssh_config: Path) -> None:
    """``--tx ssh=…`` workers each in a directory of its own (as on two other hosts, the
    code already there): pytest-cov's worker combines its data with its servers' files,
    which fire wrote beside it, and sends the whole to the controller.

    One directory each, as two hosts would have: two such workers in one directory
    combine each other's files (pytest-cov combines a worker's data where it runs unless
    the worker shares the controller's directory), and one's combine can take a file the
    other is reading: CI lost a server's data that way once."""
    folder = tmp_path / "run"
    places = [tmp_path / "there-0", tmp_path / "there-1"]
    for place in (folder, *places):
        place.mkdir()
        (place / "pytest.ini").write_text(f"[pytest]\nfire_spawn = shop={MANAGE}\n")
        (place / "test_system.py").write_text(WORKERS_TESTS)
    ssh = f"ssh=127.0.0.1//ssh_config={ssh_config}//python={sys.executable}"
    workers = [option for place in places for option in ("--tx", f"{ssh}//chdir={place}")]
    ran = _run_pytest(folder, WORKERS_TESTS, "--dist", "load", *workers, "-v")
    _assert_each_worker_s_server_is_in_the_report(folder, ran)
    for place in places:
        assert not list(place.glob(".coverage.fire-*")), "combined by the workers' pytest-cov"


def test_a_server_through_an_ssh_gateway_is_in_the_report(tmp_path: Path, ssh_config: Path) -> None:
    elsewhere = copy_project(tmp_path / "elsewhere" / "shop")
    folder = tmp_path / "run"
    folder.mkdir()
    gateway = f"ssh=127.0.0.1//ssh_config={ssh_config}//python={sys.executable}"
    (folder / "pytest.ini").write_text(
        f"[pytest]\nfire_spawn = far={elsewhere}:gateway={gateway}\n"
    )
    (folder / ".coveragerc").write_text(
        textwrap.dedent(f"""
        [paths]
        shop =
            {VIEWS.parent}
            {elsewhere.parent / "shop"}
        """)
    )
    ran = _run_pytest(folder, SSH_TESTS, "--cov-config=.coveragerc")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    measured = _measured(folder)
    assert PRODUCTS in measured[str(VIEWS)], "the copy's lines, as the shop's"
    assert line_of(VIEWS, "def greeting") in measured[str(VIEWS)], "measured from its imports"
    assert not [path for path in measured if path.startswith(str(elsewhere.parent))]
    assert "fire: warning" not in ran.stdout, ran.stdout
    assert not list(elsewhere.parent.glob(".coverage*")), "sent back, none left there"
