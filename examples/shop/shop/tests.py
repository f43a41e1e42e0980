"""Isolated tests of the shop: accounts' API is replaced by a test double.

`accounts_client._get` is the shop's one HTTP call to accounts; here it is patched to
answer as accounts' contract says (see accounts/tests.py), so these tests run without
accounts: `python manage.py test` in this directory.
"""

from unittest import mock

from django.core import mail
from django.test import SimpleTestCase, TestCase, override_settings

from shop import accounts_client
from shop.gateway import AccountsGateway
from shop.models import Order

ADA_V1 = {"id": 7, "name": "Ada Lovelace", "email": "ada@example.com"}
ADA_V2 = {"id": 7, "display_name": "Ada Lovelace", "emails": ["ada@example.com"]}
ADA = {"id": 7, "name": "Ada Lovelace", "email": "ada@example.com"}  # as the shop sees her


def fake_accounts(*answers):
    """Patch the client's HTTP call to answer (status, JSON) pairs, one per call."""
    return mock.patch.object(accounts_client, "_get", side_effect=answers)


class AccountsClientTest(SimpleTestCase):
    def test_v2_is_the_default(self):
        with fake_accounts((200, ADA_V2)) as get:
            self.assertEqual(ADA, accounts_client.get_user(7))

        get.assert_called_once_with("/api/v2/users/7/")

    @override_settings(ACCOUNTS_API_VERSION="v1")
    def test_v1_until_every_client_moved_to_v2(self):
        with fake_accounts((200, ADA_V1)) as get:
            self.assertEqual(ADA, accounts_client.get_user(7))

        get.assert_called_once_with("/api/v1/users/7/")

    def test_an_unknown_user_is_none(self):
        with fake_accounts((404, {"error": "no user 7"})):
            self.assertIsNone(accounts_client.get_user(7))

    def test_an_unexpected_answer_is_an_error_that_shows_it(self):
        with (
            fake_accounts((400, {"error": "a user id is a positive integer, not 'x'"})),
            self.assertRaisesMessage(
                accounts_client.AccountsError,
                "GET user x (v2): 400 {'error': \"a user id is a positive integer, not 'x'\"}",
            ),
        ):
            accounts_client.get_user("x")

    def test_a_session_is_asked_for_with_the_accounts_cookie(self):
        with fake_accounts((200, {"id": 7, "username": "ada"})) as get:
            self.assertEqual(7, accounts_client.session_user_id("s3ss10n"))

        get.assert_called_once_with("/api/session/", cookies={"accounts_session": "s3ss10n"})

    def test_a_session_accounts_does_not_know_is_nobody(self):
        with fake_accounts((401, {"error": "not logged in"})):
            self.assertIsNone(accounts_client.session_user_id("expired"))

    def test_without_a_cookie_accounts_is_not_asked(self):
        with fake_accounts() as get:
            self.assertIsNone(accounts_client.session_user_id(None))

        get.assert_not_called()


class GatewayTest(SimpleTestCase):
    """The gateway as WSGI middleware, in front of an app that records what it gets."""

    def through_gateway(self, **environ):
        seen = {}

        def app(environ, start_response):
            seen.update(environ)
            return []

        AccountsGateway(app)(environ, lambda *args: None)
        return seen

    def test_a_logged_in_user_is_passed_on(self):
        with fake_accounts((200, {"id": 7, "username": "ada"})) as get:
            seen = self.through_gateway(HTTP_COOKIE="shop_session=x; accounts_session=s3ss10n")

        self.assertEqual("7", seen["HTTP_X_REMOTE_USER"])
        get.assert_called_once_with("/api/session/", cookies={"accounts_session": "s3ss10n"})

    def test_a_header_from_the_browser_is_removed(self):
        with fake_accounts():
            seen = self.through_gateway(HTTP_X_REMOTE_USER="7")

        self.assertNotIn("HTTP_X_REMOTE_USER", seen)

    def test_a_header_from_the_browser_does_not_change_who_is_logged_in(self):
        with fake_accounts((200, {"id": 7, "username": "ada"})):
            seen = self.through_gateway(HTTP_COOKIE="accounts_session=s", HTTP_X_REMOTE_USER="8")

        self.assertEqual("7", seen["HTTP_X_REMOTE_USER"])

    def test_an_ended_session_passes_nobody_on(self):
        with fake_accounts((401, {"error": "not logged in"})):
            seen = self.through_gateway(HTTP_COOKIE="accounts_session=old")

        self.assertNotIn("HTTP_X_REMOTE_USER", seen)


class OrderViewTest(TestCase):
    """The views behind the gateway: the test client sends the header the gateway sets."""

    def test_an_order_is_placed_as_the_logged_in_user_and_confirmed(self):
        order = {"item": "lamp", "quantity": 2}
        # The mail goes out on commit: run those callbacks as a commit would.
        with fake_accounts((200, ADA_V2)), self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                "/orders/", order, "application/json", HTTP_X_REMOTE_USER="7"
            )

        self.assertEqual(201, response.status_code, response.content)
        order = Order.objects.get()
        self.assertEqual((7, "lamp", 2), (order.user_id, order.item, order.quantity))
        [confirmation] = mail.outbox
        self.assertEqual(["ada@example.com"], confirmation.to)
        self.assertIn("Hello Ada Lovelace", confirmation.body)

    def test_nobody_logged_in_cannot_order(self):
        with fake_accounts() as get:
            response = self.client.post("/orders/", {"item": "lamp"}, "application/json")

        self.assertEqual(401, response.status_code)
        self.assertEqual({"error": "log in at accounts first"}, response.json())
        self.assertFalse(Order.objects.exists())
        get.assert_not_called()

    def test_a_user_accounts_no_longer_has_cannot_order(self):
        with fake_accounts((404, {"error": "no user 7"})):
            response = self.client.post(
                "/orders/", {"item": "lamp"}, "application/json", HTTP_X_REMOTE_USER="7"
            )

        self.assertEqual(403, response.status_code)
        self.assertFalse(Order.objects.exists())

    def test_only_my_orders_are_listed(self):
        mine = Order.objects.create(user_id=7, item="lamp")
        Order.objects.create(user_id=8, item="desk")

        response = self.client.get("/orders/", HTTP_X_REMOTE_USER="7")

        self.assertEqual(
            {"orders": [{"id": mine.id, "user": 7, "item": "lamp", "quantity": 1}]},
            response.json(),
        )
