"""The talk's example test, verbatim but for the module names and the socket path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fire import testing as fire_tests

from ..conftest import spawn_shop

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def remote_sock() -> Iterator[None]:
    """Serve the shop at ./remote.sock beside this file, where the test class looks."""
    socket_dir = str(HERE) if len(str(HERE)) < 90 else None
    server = spawn_shop("sqlite", socket_dir=socket_dir)
    previous = os.environ.pop("FIRE_SERVERS", None)
    if socket_dir is None:  # a very deep checkout: point the class at the real socket
        os.environ["FIRE_SERVERS"] = f"proj={server.address}"
    else:
        os.replace(server.address, HERE / "remote.sock")
        server.address = str(HERE / "remote.sock")
    yield
    server.stop()
    os.environ.pop("FIRE_SERVERS", None)
    if previous is not None:
        os.environ["FIRE_SERVERS"] = previous


class MyRemoteTest(fire_tests.FireTestCase):
    fire_servers = {"proj": "remote.sock"}

    def test_user_factory(self):
        proj = self.fire_remotes["proj"]
        auth_factories = proj.module("shop.factories")
        auth_models = proj.module("django.contrib.auth.models")
        user = auth_factories.UserFactory()
        user2 = auth_models.User.objects.get()
        self.assertEqual(user, user2)
        self.assertEqual(0, user2.groups.count())

    def test_data_from_the_previous_test_is_gone(self):
        proj = self.fire_remotes["proj"]
        self.assertEqual(0, proj.module("django.contrib.auth.models").User.objects.count())
