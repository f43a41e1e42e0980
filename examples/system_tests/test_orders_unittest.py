"""The same system, tested with plain unittest and `FireTestCase`.

FireTestCase attaches to fire servers that are already running. Start them first, each
from its service (the socket defaults to fire.sock beside manage.py):

    python accounts/manage.py runfireserver --http 127.0.0.1:0
    python shop/manage.py runfireserver --http 127.0.0.1:0
    python -m unittest -v system_tests/test_orders_unittest.py

(`make unittest` does all three.)
"""

import requests

from djfire import DjangoRemote
from fire.testing import FireTestCase


class OrderTest(FireTestCase):
    # Relative to this file's directory, so the tests run the same from anywhere.
    fire_servers = {"accounts": "../accounts/fire.sock", "shop": "../shop/fire.sock"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # connects, and opens a class scope on each server
        cls.accounts = DjangoRemote(cls.fire_remotes["accounts"])
        cls.shop = DjangoRemote(cls.fire_remotes["shop"])
        # For the whole class: the shop talks to this accounts server, and accounts
        # hashes passwords fast (slow hashing only delays tests).
        cls.enterClassContext(cls.shop.settings(ACCOUNTS_URL=cls.accounts.live_url_for("shop")))
        cls.enterClassContext(
            cls.accounts.settings(
                PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
            )
        )

    def setUp(self):
        self.browser = self.enterContext(requests.Session())

    def log_in(self, username, password):
        response = self.browser.post(
            self.accounts.live_url + "/api/login/",
            json={"username": username, "password": password},
        )
        self.assertEqual(200, response.status_code, response.text)

    def test_a_logged_in_user_orders(self):
        factories = self.accounts.remote.module("accounts.factories")
        user = factories.UserFactory(username="ada", password="correct horse")
        self.log_in("ada", "correct horse")

        response = self.browser.post(self.shop.live_url + "/orders/", json={"item": "lamp"})

        self.assertEqual(201, response.status_code, response.text)
        order = self.shop.remote.module("shop.models").Order.objects.get()
        self.assertEqual((user.id, "lamp", 1), (order.user_id, order.item, order.quantity))
        [mail] = self.shop.mail_outbox()
        self.assertEqual([user.email], mail["to"])

    def test_a_forged_user_header_from_the_browser_is_ignored(self):
        user = self.accounts.remote.module("accounts.factories").UserFactory()

        response = self.browser.post(
            self.shop.live_url + "/orders/",
            json={"item": "lamp"},
            headers={"X-Remote-User": str(user.id)},
        )

        self.assertEqual(401, response.status_code)
        self.assertEqual(0, self.shop.remote.module("shop.models").Order.objects.count())
        self.assertEqual([], self.shop.mail_outbox())
