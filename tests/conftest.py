"""Shared test helpers: PostgreSQL availability, spawning the test service's fire server."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from djfire.launch import RUNFIRESERVER
from fire.runners.spawn import ServerSpec, SpawnedServer

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
MANAGE = TESTS / "djproject" / "manage.py"

#: The advice for a foreign fire package, in this checkout's editable install (`make install`).
REINSTALL = f"pip install --force-reinstall --no-deps -e {TESTS.parent}"

FOREIGN_FIRE = """\"Stands for Google's python-fire, which installs a package named fire.\"

def Fire(component=None):
    return component
"""


@pytest.fixture
def foreign_fire(tmp_path: Path) -> Path:
    """A directory whose ``fire`` package is not ours, to put first on PYTHONPATH."""
    package = tmp_path / "foreign" / "fire"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FOREIGN_FIRE)
    return package.parent


# Deprecations are errors, here and in every process the tests start (fire servers,
# unittest and pytest runs): a Django or Python release that deprecates something fire,
# djfire or the test project uses fails the suite instead of scrolling past unseen in a
# server's output.
DEPRECATIONS_ARE_ERRORS = ("error::DeprecationWarning", "error::PendingDeprecationWarning")


def pytest_configure(config: pytest.Config) -> None:
    for rule in DEPRECATIONS_ARE_ERRORS:
        config.addinivalue_line("filterwarnings", rule)
    os.environ["PYTHONWARNINGS"] = ",".join(DEPRECATIONS_ARE_ERRORS)


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    """Skip (fail on CI) when PostgreSQL does not listen at 127.0.0.1:5432."""
    if postgres_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but PostgreSQL does not listen at 127.0.0.1:5432")
    pytest.skip("PostgreSQL does not listen at 127.0.0.1:5432: PostgreSQL tests skipped")


def spawn_shop(
    backend: str,
    *args: str,
    socket_dir: str | None = None,
    data_dir: str | None = None,
    suffix: str | None = None,
    gateway: str | None = None,
) -> SpawnedServer:
    """Start the test service (tests/djproject) on `backend`, through the execnet
    `gateway` if given (``popen//python=…``); the caller stops it."""
    if backend == "postgres":
        require_postgres()
    spec = ServerSpec(
        name="shop",
        program=MANAGE,
        launcher=RUNFIRESERVER,
        # Test databases of this run's own on a shared PostgreSQL (another run may be on it).
        suffix=f"run{os.getpid()}" if backend == "postgres" else None,
        args=list(args),
        env={
            "DJFIRE_TEST_DB": backend,
            "DJFIRE_TEST_DIR": data_dir or scratch_dir("fire-db-"),
        },
        gateway=gateway,
    )
    return SpawnedServer(spec, socket_dir=socket_dir, suffix=suffix).start()


#: The settings of a test-suite project that uses Django itself (pytest-django, TestCase).
CLIENT_SETTINGS = """
SECRET_KEY = "client"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
"""

BACKENDS = ["sqlite", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def shop_server(request: pytest.FixtureRequest) -> Iterator[SpawnedServer]:
    """The test service served by runfireserver --http, once per database backend."""
    server = spawn_shop(request.param)
    server.backend = request.param  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_shop() -> Iterator[SpawnedServer]:
    """The test service on in-memory SQLite, shared by the runner tests."""
    server = spawn_shop("sqlite")
    yield server
    server.stop()


def make_venv(root: Path, pth_name: str, pth_text: str) -> Path:
    """A virtualenv at `root` without pip, whose site-packages holds `pth_name` with
    `pth_text` (what it sees of this environment's packages); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site_dir, pth_name).write_text(pth_text)
    return python


def scratch_dir(prefix: str) -> str:
    """A new directory under /tmp for a test server's files, removed when the test run
    (the process) ends: the servers that used it have stopped by then."""
    directory = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    atexit.register(shutil.rmtree, directory, True)
    return directory
