"""Fixtures shared by the system tests: one `DjangoRemote` per service, and a browser."""

import pytest
import requests

from djfire import DjangoRemote

# FireTestCase tests attach to servers you start yourself (see README.md), not to the
# ones this pytest run spawns: run them with `python -m unittest` instead.
collect_ignore = ["test_orders_unittest.py"]


# Slow password hashing defends production and only delays tests (as Django's docs say).
FAST_HASHING = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def accounts(fire_remotes):
    """The accounts service, inside this test's scope (all its data rolled back after)."""
    accounts = DjangoRemote(fire_remotes["accounts"])
    with accounts.settings(PASSWORD_HASHERS=FAST_HASHING):
        yield accounts


@pytest.fixture
def shop(fire_remotes, accounts):
    """The shop service, talking to *this* accounts server for the test's duration.

    The accounts server's HTTP port is chosen when it starts, so the shop learns it
    through a settings override, undone when the test's scope ends. `live_url_for`
    names the shop as the caller: a run with --fire-contracts DIR records what the
    shop asks accounts as the contract DIR/shop-accounts.json (else it is `live_url`).
    """
    shop = DjangoRemote(fire_remotes["shop"])
    with shop.settings(ACCOUNTS_URL=accounts.live_url_for("shop")):
        yield shop


@pytest.fixture
def browser():
    """A browser's cookie jar: what accounts sets on login, it sends to the shop too."""
    with requests.Session() as session:
        yield session


def log_in(browser, accounts, username, password):
    """Log in at accounts over HTTP, as a user would; the browser keeps the session."""
    response = browser.post(
        accounts.live_url + "/api/login/", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
