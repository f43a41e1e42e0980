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
        # Point the shop at this accounts server for the whole class.
        cls.enterClassContext(cls.shop.settings(ACCOUNTS_URL=cls.accounts.live_url))

    def test_an_order_is_stored_and_confirmed_by_mail(self):
        user = self.accounts.remote.module("accounts.factories").UserFactory()

        response = requests.post(
            self.shop.live_url + "/orders/", json={"user": user.id, "item": "lamp"}
        )

        self.assertEqual(201, response.status_code, response.text)
        order = self.shop.remote.module("shop.models").Order.objects.get()
        self.assertEqual((user.id, "lamp", 1), (order.user_id, order.item, order.quantity))
        [mail] = self.shop.mail_outbox()
        self.assertEqual([user.email], mail["to"])

    def test_an_unknown_user_cannot_order(self):
        response = requests.post(
            self.shop.live_url + "/orders/", json={"user": 999, "item": "lamp"}
        )

        self.assertEqual(400, response.status_code)
        self.assertEqual(0, self.shop.remote.module("shop.models").Order.objects.count())
        self.assertEqual([], self.shop.mail_outbox())
