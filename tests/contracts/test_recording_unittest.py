"""Recording under unittest: `FireTestCase.fire_contracts`, written as the process exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fire.contracts.files import read_pact

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MODULE = """
import requests

from djfire import DjangoRemote
from fire.testing import FireTestCase

FAST = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class OrderTest(FireTestCase):
    fire_spawn = {{
        "accounts": "{examples}/accounts/manage.py",
        "shop": "{examples}/shop/manage.py",
    }}
    fire_contracts = "{directory}"
    fire_contract_state = "user ada exists"

    def test_order(self):
        accounts = DjangoRemote(self.fire_remotes["accounts"])
        shop = DjangoRemote(self.fire_remotes["shop"])
        with accounts.settings(PASSWORD_HASHERS=FAST), shop.settings(
            ACCOUNTS_URL=accounts.live_url_for("shop")
        ):
            accounts.remote.module("accounts.factories").UserFactory(username="ada", password="pw")
            with requests.Session() as browser:
                login = {{"username": "ada", "password": "pw"}}
                browser.post(accounts.live_url + "/api/login/", json=login, timeout=10)
                order = {{"item": "lamp"}}
                response = browser.post(shop.live_url + "/orders/", json=order, timeout=10)
        self.assertEqual(response.status_code, 201, response.text)
"""


def test_a_fire_testcase_records_with_its_named_state(tmp_path: Path) -> None:
    directory = tmp_path / "contracts"
    (tmp_path / "test_recorded.py").write_text(
        MODULE.format(examples=EXAMPLES, directory=directory)
    )
    done = subprocess.run(
        [sys.executable, "-m", "unittest", "test_recorded"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    path = directory / "shop-accounts.json"
    assert f"fire contracts: wrote {path} (2 interactions) from 1 test" in done.stderr
    interactions = read_pact(path)["interactions"]
    test = "test_recorded.OrderTest.test_order"
    assert sorted(i["description"] for i in interactions) == [
        f"GET /api/session/ ({test})",
        f"GET /api/v2/users/{{id}}/ ({test})",
    ]
    for interaction in interactions:
        rows, named = interaction["providerStates"]
        assert rows["name"] == "fire rows"
        assert named == {"name": "user ada exists"}
        assert json.dumps(rows["params"]).count('"username": "ada"') == 1
