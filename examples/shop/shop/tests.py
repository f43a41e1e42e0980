"""Isolated tests of the shop: accounts' API is the contract the full-system run recorded.

`fire.contracts.stub` serves ../contracts/shop-accounts.json (written by `pytest
--fire-contracts contracts` in examples/, verified by accounts with `manage.py
verifyfirecontracts`) on a local port, and the shop's client calls it there. No answer
of accounts is typed here: each is what accounts really said, and still says. A request
the contract does not hold is answered 500 and fails the test, naming the nearest
interaction. Run with `python manage.py test` in this directory.
"""

from pathlib import Path

from django.conf import settings
from django.core import mail
from django.test import SimpleTestCase, TestCase, override_settings

from fire.contracts import stub
from fire.contracts.replay import ContractMismatch
from shop import accounts_client
from shop.gateway import AccountsGateway
from shop.models import Order

CONTRACT = Path(settings.BASE_DIR).parent / "contracts" / "shop-accounts.json"


class WithAccountsContract:
    """Each test talks to the recorded contract instead of accounts."""

    def setUp(self):
        super().setUp()
        self.accounts = self.enterContext(stub(CONTRACT))
        self.enterContext(override_settings(ACCOUNTS_URL=self.accounts.url))

    def user(self, version, status=200):
        """(id asked for, the answer) of the recorded GET /api/<version>/users/<id>/
        that accounts answered with `status` (404: a user it does not have)."""
        interaction = self.accounts.find("GET", f"/api/{version}/users/{{id}}/", status=status)
        return int(interaction.path.strip("/").split("/")[-1]), interaction.body

    def session(self):
        """(the recorded session cookie's value, the user id accounts said it is)."""
        interaction = self.accounts.find("GET", "/api/session/", status=200)
        return self.accounts.session(interaction), interaction.body["id"]

    def ended_session(self):
        """The recorded value of a session cookie accounts no longer knows (a 401)."""
        return self.accounts.session(self.accounts.find("GET", "/api/session/", status=401))


class AccountsClientTest(WithAccountsContract, SimpleTestCase):
    def test_v2_is_the_default(self):
        user_id, answer = self.user("v2")

        user = accounts_client.get_user(user_id)

        self.assertEqual(
            {"id": answer["id"], "name": answer["display_name"], "email": answer["emails"][0]},
            user,
        )
        self.assertEqual(1, len(self.accounts.answered), self.accounts.answered)

    @override_settings(ACCOUNTS_API_VERSION="v1")
    def test_v1_until_every_client_moved_to_v2(self):
        user_id, answer = self.user("v1")

        self.assertEqual(answer, accounts_client.get_user(user_id))  # v1 is the shop's shape

    def test_an_unknown_user_is_none(self):
        user_id, _ = self.user("v2", status=404)

        self.assertIsNone(accounts_client.get_user(user_id))
        self.assertEqual(1, len(self.accounts.answered), self.accounts.answered)

    def test_an_unexpected_answer_is_an_error_that_shows_it(self):
        # accounts was never asked this: the contract's stub refuses it (500, and the test
        # fails naming the nearest interaction), and the client says what it got.
        unexpected = self.assertRaisesMessage(accounts_client.AccountsError, "GET user x (v2): 500")
        with (
            self.assertRaises(ContractMismatch) as refused,
            stub(CONTRACT) as accounts,
            override_settings(ACCOUNTS_URL=accounts.url),
            unexpected,
        ):
            accounts_client.get_user("x")
        self.assertIn("the nearest is 'GET /api/v2/users/{id}/", str(refused.exception))

    def test_a_session_is_asked_for_with_the_accounts_cookie(self):
        session, user_id = self.session()

        self.assertEqual(user_id, accounts_client.session_user_id(session))

    def test_a_session_accounts_does_not_know_is_nobody(self):
        self.assertIsNone(accounts_client.session_user_id(self.ended_session()))
        self.assertEqual(1, len(self.accounts.answered), self.accounts.answered)

    def test_without_a_cookie_accounts_is_not_asked(self):
        self.assertIsNone(accounts_client.session_user_id(None))

        self.assertEqual([], self.accounts.answered)


class GatewayTest(WithAccountsContract, SimpleTestCase):
    """The gateway as WSGI middleware, in front of an app that records what it gets."""

    def through_gateway(self, **environ):
        seen = {}

        def app(environ, start_response):
            seen.update(environ)
            return []

        AccountsGateway(app)(environ, lambda *args: None)
        return seen

    def test_a_logged_in_user_is_passed_on(self):
        session, user_id = self.session()

        seen = self.through_gateway(HTTP_COOKIE=f"shop_session=x; accounts_session={session}")

        self.assertEqual(str(user_id), seen["HTTP_X_REMOTE_USER"])

    def test_a_header_from_the_browser_is_removed(self):
        seen = self.through_gateway(HTTP_X_REMOTE_USER="7")

        self.assertNotIn("HTTP_X_REMOTE_USER", seen)
        self.assertEqual([], self.accounts.answered)

    def test_a_header_from_the_browser_does_not_change_who_is_logged_in(self):
        session, user_id = self.session()

        seen = self.through_gateway(
            HTTP_COOKIE=f"accounts_session={session}", HTTP_X_REMOTE_USER=str(user_id + 1)
        )

        self.assertEqual(str(user_id), seen["HTTP_X_REMOTE_USER"])

    def test_an_ended_session_passes_nobody_on(self):
        seen = self.through_gateway(HTTP_COOKIE=f"accounts_session={self.ended_session()}")

        self.assertNotIn("HTTP_X_REMOTE_USER", seen)
        self.assertEqual(1, len(self.accounts.answered), self.accounts.answered)


class OrderViewTest(WithAccountsContract, TestCase):
    """The views behind the gateway: the test client sends the header the gateway sets."""

    def test_an_order_is_placed_as_the_logged_in_user_and_confirmed(self):
        user_id, answer = self.user("v2")
        order = {"item": "lamp", "quantity": 2}
        # The mail goes out on commit: run those callbacks as a commit would.
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                "/orders/", order, "application/json", HTTP_X_REMOTE_USER=str(user_id)
            )

        self.assertEqual(201, response.status_code, response.content)
        order = Order.objects.get()
        self.assertEqual((user_id, "lamp", 2), (order.user_id, order.item, order.quantity))
        [confirmation] = mail.outbox
        self.assertEqual(answer["emails"][:1], confirmation.to)
        self.assertIn(f"Hello {answer['display_name']}", confirmation.body)

    def test_nobody_logged_in_cannot_order(self):
        response = self.client.post("/orders/", {"item": "lamp"}, "application/json")

        self.assertEqual(401, response.status_code)
        self.assertEqual({"error": "log in at accounts first"}, response.json())
        self.assertFalse(Order.objects.exists())
        self.assertEqual([], self.accounts.answered)

    def test_a_user_accounts_no_longer_has_cannot_order(self):
        user_id, _ = self.user("v2", status=404)

        response = self.client.post(
            "/orders/", {"item": "lamp"}, "application/json", HTTP_X_REMOTE_USER=str(user_id)
        )

        self.assertEqual(403, response.status_code)
        self.assertEqual({"error": f"accounts has no user {user_id}"}, response.json())
        self.assertFalse(Order.objects.exists())

    def test_only_my_orders_are_listed(self):
        mine = Order.objects.create(user_id=7, item="lamp")
        Order.objects.create(user_id=8, item="desk")

        response = self.client.get("/orders/", HTTP_X_REMOTE_USER="7")

        self.assertEqual(
            {"orders": [{"id": mine.id, "user": 7, "item": "lamp", "quantity": 1}]},
            response.json(),
        )
