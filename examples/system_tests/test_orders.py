"""Full-system tests: a customer orders from the shop, which asks accounts who they are.

Each test runs inside a transaction on *both* services, rolled back when it ends; the
services' live HTTP servers use the same transaction, so they see what the test made.
"""

import requests


def test_an_order_is_stored_and_confirmed_by_mail(accounts, shop):
    # Arrange, on the accounts service: its own factory, run there, in its test database.
    user = accounts.remote.module("accounts.factories").UserFactory(name="Ada Lovelace")

    # Act, over real HTTP: shop -> (HTTP) -> accounts -> shop's database and mail.
    response = requests.post(
        shop.live_url + "/orders/", json={"user": user.id, "item": "lamp", "quantity": 2}
    )

    assert response.status_code == 201, response.text
    # Assert on the shop's side, through its ORM...
    order = shop.remote.module("shop.models").Order.objects.get()  # a proxy of the row
    assert order.id == response.json()["id"]
    assert (order.user_id, order.item, order.quantity) == (user.id, "lamp", 2)  # local values
    # ...and on the e-mail it sent (captured by the server, returned as plain dicts).
    [mail] = shop.mail_outbox()
    assert mail["to"] == [user.email]
    assert mail["subject"] == f"Order #{order.id} confirmed"
    assert "Hello Ada Lovelace" in mail["body"]


def test_nothing_is_left_from_the_previous_test(accounts, shop):
    assert accounts.remote.module("accounts.models").User.objects.count() == 0
    assert shop.remote.module("shop.models").Order.objects.count() == 0
    assert shop.mail_outbox() == []


def test_an_unknown_user_cannot_order(accounts, shop):
    response = requests.post(shop.live_url + "/orders/", json={"user": 999, "item": "lamp"})

    assert response.status_code == 400
    assert response.json() == {"error": "unknown user 999"}
    assert not shop.remote.module("shop.models").Order.objects.exists()
    assert shop.mail_outbox() == []


def test_a_users_orders_are_listed(shop):
    factories = shop.remote.module("shop.factories")
    first = factories.OrderFactory(user_id=7, item="lamp")
    second = factories.OrderFactory(user_id=7, item="desk", quantity=3)
    factories.OrderFactory(user_id=8)  # someone else's

    response = requests.get(shop.live_url + "/orders/", params={"user": 7})

    assert response.json() == {
        "orders": [
            {"id": first.id, "user": 7, "item": "lamp", "quantity": 1},
            {"id": second.id, "user": 7, "item": "desk", "quantity": 3},
        ]
    }
