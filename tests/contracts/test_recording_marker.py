"""The fire marker's contract options, through a real pytest run of the example services:
a named state beside the rows, body paths matched exactly, excluded tables left out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fire.contracts.files import read_pact

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MODULE = """
import pytest
import requests

from djfire import DjangoRemote

FAST = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.fire(
    contract_state="user ada exists",
    contract_exact=["$.display_name"],
    exclude_changes=["django_session", "auth_user.password"],
)
def test_order(fire_remotes):
    accounts = DjangoRemote(fire_remotes["accounts"])
    shop = DjangoRemote(fire_remotes["shop"])
    with accounts.settings(PASSWORD_HASHERS=FAST), shop.settings(
        ACCOUNTS_URL=accounts.live_url_for("shop")
    ):
        accounts.remote.module("accounts.factories").UserFactory(
            username="ada", first_name="Ada", last_name="L", password="pw"
        )
        with requests.Session() as browser:
            login = {"username": "ada", "password": "pw"}
            browser.post(accounts.live_url + "/api/login/", json=login, timeout=10)
            order = {"item": "lamp"}
            response = browser.post(shop.live_url + "/orders/", json=order, timeout=10)
    assert response.status_code == 201, response.text
"""


def test_the_marker_names_the_state_the_exact_paths_and_the_excluded_rows(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_marked.py").write_text(MODULE)
    spawn = [
        f"--fire-spawn={name}={EXAMPLES / name / 'manage.py'}" for name in ("accounts", "shop")
    ]
    directory = tmp_path / "contracts"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "no:randomly", *spawn, f"--fire-contracts={directory}", "test_marked.py"]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [v2] = [
        interaction
        for interaction in read_pact(directory / "shop-accounts.json")["interactions"]
        if interaction["request"]["path"].startswith("/api/v2/")
    ]
    rows, named = v2["providerStates"]
    assert named == {"name": "user ada exists"}
    tables = rows["params"]["databases"]["default"]["tables"]
    assert "django_session" not in tables
    [ada] = tables["auth_user"]["inserted"]
    assert ada["username"] == "ada" and "password" not in ada
    rules = v2["response"]["matchingRules"]["body"]
    assert rules["$.display_name"]["matchers"] == [{"match": "equality"}]
    assert json.dumps(v2).count("md5$") == 0
