"""Full-system tests: a user logs in at accounts and orders at the shop.

Each test runs inside a transaction on *both* services, rolled back when it ends; the
services' live HTTP servers use the same transaction, so they see what the test made.
"""

from datetime import UTC, datetime, timedelta

import pytest
import requests
from conftest import log_in


# Both versions of accounts' user API, until the shop (the last client) moved to v2.
# Then "v1" goes from this list, and from accounts' USER_API and the shop's READERS.
@pytest.mark.parametrize("api_version", ["v2", "v1"])
def test_a_logged_in_user_orders_and_gets_a_confirmation(accounts, shop, browser, api_version):
    # Arrange, on the accounts service: its own factory, run there, in its test database.
    ada = accounts.remote.module("accounts.factories").UserFactory(
        username="ada", first_name="Ada", last_name="Lovelace", password="correct horse"
    )
    log_in(browser, accounts, "ada", "correct horse")  # real HTTP, a real session

    # Act, over real HTTP: browser -> shop's gateway -> (session?) accounts -> shop's
    # view -> (user API, this version) accounts -> shop's database and mail.
    with shop.settings(ACCOUNTS_API_VERSION=api_version):
        response = browser.post(shop.live_url + "/orders/", json={"item": "lamp", "quantity": 2})

    assert response.status_code == 201, response.text
    # Assert on the shop's side, through its ORM...
    order = shop.remote.module("shop.models").Order.objects.get()  # a proxy of the row
    assert order.id == response.json()["id"]
    assert (order.user_id, order.item, order.quantity) == (ada.id, "lamp", 2)  # local values
    # ...and on the e-mail it sent (captured by the server, returned as plain dicts).
    [mail] = shop.mail_outbox()
    assert mail["to"] == [ada.email]
    assert mail["subject"] == f"Order #{order.id} confirmed"
    assert "Hello Ada Lovelace" in mail["body"]


def test_a_user_accounts_does_not_have_is_nobody_to_the_shop(accounts, shop):
    ada = accounts.remote.module("accounts.factories").UserFactory(username="ada")
    # The shop's own client, run in the shop's server: it asks the accounts server over
    # HTTP (the order view asks it the same, for the user the gateway vouched for).
    accounts_client = shop.remote.module("shop.accounts_client")

    assert accounts_client.get_user(ada.id + 1) is None  # accounts answered 404
    assert accounts_client.get_user(ada.id)["email"] == ada.email


def test_once_the_accounts_session_has_ended_nobody_can_order(accounts, shop, browser):
    accounts.remote.module("accounts.factories").UserFactory(username="ada", password="pw")
    log_in(browser, accounts, "ada", "pw")
    # accounts' clock past the session's age: the session has ended there, though the
    # browser (on the real clock) still sends its cookie, which the shop's gateway asks
    # accounts about.
    age = accounts.remote.module("django.conf").settings.SESSION_COOKIE_AGE
    accounts.freeze_time(datetime.now(UTC) + timedelta(seconds=age + 60))

    response = browser.post(shop.live_url + "/orders/", json={"item": "lamp"})

    assert response.status_code == 401
    assert response.json() == {"error": "log in at accounts first"}
    assert not shop.remote.module("shop.models").Order.objects.exists()


def test_nothing_is_left_from_the_previous_test(accounts, shop):
    assert accounts.remote.module("django.contrib.auth.models").User.objects.count() == 0
    assert shop.remote.module("shop.models").Order.objects.count() == 0
    assert shop.mail_outbox() == []


def test_without_logging_in_nobody_can_order(shop):
    response = requests.post(shop.live_url + "/orders/", json={"item": "lamp"})

    assert response.status_code == 401
    assert response.json() == {"error": "log in at accounts first"}
    assert not shop.remote.module("shop.models").Order.objects.exists()


def test_a_forged_user_header_from_the_browser_is_ignored(accounts, shop, browser):
    factories = accounts.remote.module("accounts.factories")
    victim = factories.UserFactory()
    factories.UserFactory(username="mallory", password="mallory's own")

    # Not logged in: claiming to be the victim gets nowhere.
    forged = {"X-Remote-User": str(victim.id)}
    response = browser.post(shop.live_url + "/orders/", json={"item": "lamp"}, headers=forged)
    assert response.status_code == 401
    # Logged in as herself: the order is hers, whatever the header says.
    log_in(browser, accounts, "mallory", "mallory's own")
    response = browser.post(shop.live_url + "/orders/", json={"item": "lamp"}, headers=forged)
    assert response.status_code == 201, response.text
    assert response.json()["user"] != victim.id
    orders = shop.remote.module("shop.models").Order.objects
    assert not orders.filter(user_id=victim.id).exists()


def test_my_orders_are_listed(accounts, shop, browser):
    ada = accounts.remote.module("accounts.factories").UserFactory(username="ada", password="pw")
    factories = shop.remote.module("shop.factories")
    first = factories.OrderFactory(user_id=ada.id, item="lamp")
    second = factories.OrderFactory(user_id=ada.id, item="desk", quantity=3)
    factories.OrderFactory(user_id=ada.id + 1)  # someone else's
    log_in(browser, accounts, "ada", "pw")

    response = browser.get(shop.live_url + "/orders/")

    assert response.json() == {
        "orders": [
            {"id": first.id, "user": ada.id, "item": "lamp", "quantity": 1},
            {"id": second.id, "user": ada.id, "item": "desk", "quantity": 3},
        ]
    }


def test_the_confirmation_goes_through_the_function_a_test_replaces(accounts, shop, browser):
    ada = accounts.remote.module("accounts.factories").UserFactory(
        username="ada", first_name="Ada", last_name="Lovelace", password="pw"
    )
    # Patched in the running shop, for this test only: the view's call reaches the mock.
    confirm = shop.patch("shop.notifications.send_order_confirmation")
    log_in(browser, accounts, "ada", "pw")

    response = browser.post(shop.live_url + "/orders/", json={"item": "lamp"})

    assert response.status_code == 201, response.text
    confirm.assert_called_once()
    order, user = confirm.call_args.args  # the order: a proxy of the shop's row
    assert order.id == response.json()["id"]
    assert user == {"id": ada.id, "name": "Ada Lovelace", "email": ada.email}
    assert shop.mail_outbox() == []  # the real sending was replaced


def test_an_order_can_be_cancelled_for_30_minutes(fire_remotes, accounts, shop, browser):
    accounts.remote.module("accounts.factories").UserFactory(username="ada", password="pw")
    log_in(browser, accounts, "ada", "pw")
    # One clock for both services, moved together; each gets its own back after the test.
    clock = fire_remotes.freeze_time("2026-03-01T09:00Z")
    first = browser.post(shop.live_url + "/orders/", json={"item": "lamp"}).json()
    second = browser.post(shop.live_url + "/orders/", json={"item": "desk"}).json()

    clock.shift(timedelta(minutes=29))
    in_time = browser.post(f"{shop.live_url}/orders/{first['id']}/cancel/")
    clock.shift(timedelta(minutes=2))
    too_late = browser.post(f"{shop.live_url}/orders/{second['id']}/cancel/")

    assert in_time.json() == {"id": first["id"], "cancelled_at": "2026-03-01T09:29:00+00:00"}
    assert too_late.status_code == 409
    assert "cancelled for 30 minutes" in too_late.json()["error"]
    orders = shop.remote.module("shop.models").Order.objects
    assert orders.get(id=second["id"]).cancelled_at is None
