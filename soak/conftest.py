"""The soak's set-up: both example services on PostgreSQL, spawned per worker, and watched.

Each xdist worker spawns its own accounts and shop servers (`runfireserver`), their test
databases named after the run (``test_fire_example_shop_soak4242_gw0``: 4242 is the pid
of the pytest process that started the run), dropped when the servers stop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from settings import SoakSettings
from watch import SoakWatch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SERVICES = ("accounts", "shop")
# Slow password hashing only delays tests (as Django's docs say).
FAST_HASHING = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The soak is the PostgreSQL case: the spawned servers inherit this.
os.environ["EXAMPLE_DB"] = "postgres"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Spawn both services unless the command line says otherwise; watch the run."""
    if not config.getoption("fire_spawn"):
        suffix = getattr(config, "workerinput", {}).get("soak_suffix", f"soak{os.getpid()}")
        config.option.fire_spawn = [
            f"{name}={EXAMPLES / name / 'manage.py'}:suffix={suffix}" for name in SERVICES
        ]
    config.pluginmanager.register(SoakWatch(config, SoakSettings.from_environ()), "soak-watch")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist's controller: every worker's databases carry the run's pid, not its own."""
    node.workerinput["soak_suffix"] = f"soak{os.getpid()}"


@pytest.fixture
def accounts(fire_remotes: dict[str, Any]) -> Iterator[Any]:
    """The accounts service, inside this test's scope (all its data rolled back after)."""
    from djfire import DjangoRemote

    accounts = DjangoRemote(fire_remotes["accounts"])
    with accounts.settings(PASSWORD_HASHERS=FAST_HASHING):
        yield accounts


@pytest.fixture
def shop(fire_remotes: dict[str, Any], accounts: Any) -> Iterator[Any]:
    """The shop service, calling *this* worker's accounts server over HTTP."""
    from djfire import DjangoRemote

    shop = DjangoRemote(fire_remotes["shop"])
    with shop.settings(ACCOUNTS_URL=accounts.live_url):
        yield shop


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    """A browser's cookie jar: what accounts sets on login, it sends to the shop too."""
    with requests.Session() as session:
        yield session
