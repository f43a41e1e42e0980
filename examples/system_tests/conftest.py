"""Fixtures shared by the system tests: one `DjangoRemote` per service."""

import pytest

from djfire import DjangoRemote

# FireTestCase tests attach to servers you start yourself (see README.md), not to the
# ones this pytest run spawns: run them with `python -m unittest` instead.
collect_ignore = ["test_orders_unittest.py"]


@pytest.fixture
def accounts(fire_remotes):
    """The accounts service, inside this test's scope (all its data rolled back after)."""
    return DjangoRemote(fire_remotes["accounts"])


@pytest.fixture
def shop(fire_remotes, accounts):
    """The shop service, talking to *this* accounts server for the test's duration.

    The accounts server's HTTP port is chosen when it starts, so the shop learns it
    through a settings override, undone when the test's scope ends.
    """
    shop = DjangoRemote(fire_remotes["shop"])
    with shop.settings(ACCOUNTS_URL=accounts.live_url):
        yield shop
