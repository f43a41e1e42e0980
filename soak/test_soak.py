"""SOAK_TESTS full-system tests, each a user ordering at the shop as in real use.

Each test makes rows on both services through their factories, run remotely; logs in at
accounts over HTTP; orders at the shop over HTTP, whose gateway and view call accounts
over HTTP in turn; and checks both sides. Every test's data comes from its own
`random.Random` seeded with SOAK_SEED and its index: a run is reproducible.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from settings import SoakSettings

SETTINGS = SoakSettings.from_environ()
ITEMS = ("lamp", "desk", "chair", "shelf", "rug", "clock", "mirror", "vase")
NAMES = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken")


@pytest.mark.parametrize("index", range(SETTINGS.tests))
def test_order(index: int, accounts: Any, shop: Any, browser: Any) -> None:
    rng = random.Random(f"{SETTINGS.seed}:{index}")
    first, last = rng.choice(NAMES), rng.choice(NAMES)
    item, quantity = rng.choice(ITEMS), rng.randint(1, 9)
    username, password = f"u{index}", f"pw-{rng.getrandbits(32):08x}"
    user = accounts.remote.module("accounts.factories").UserFactory(
        username=username, first_name=first, last_name=last, password=password
    )
    earlier = shop.remote.module("shop.factories").OrderFactory(
        user_id=user.id, item=rng.choice(ITEMS), quantity=rng.randint(1, 9)
    )
    login = browser.post(
        accounts.live_url + "/api/login/", json={"username": username, "password": password}
    )
    assert login.status_code == 200, login.text

    # shop's gateway asks accounts whose session this is, its view asks for the user
    response = browser.post(shop.live_url + "/orders/", json={"item": item, "quantity": quantity})

    assert response.status_code == 201, response.text
    orders = shop.remote.module("shop.models").Order.objects
    assert list(
        orders.filter(user_id=user.id).order_by("id").values_list("id", "item", "quantity")
    ) == [
        (earlier.id, earlier.item, earlier.quantity),
        (response.json()["id"], item, quantity),
    ]
    [mail] = shop.mail_outbox()
    assert mail["to"] == [f"{username}@example.com"]
    assert f"Hello {first} {last}" in mail["body"]
    users = accounts.remote.module("django.contrib.auth.models").User.objects
    assert users.get(username=username).last_login is not None  # the login, seen by accounts
    assert users.count() == 1
