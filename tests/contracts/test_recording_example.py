"""Recording the example system's contracts: its full-system suite, run with
--fire-contracts, on SQLite and PostgreSQL; the versions report on what it wrote.

Real services (both example projects' runfireserver), real HTTP between them, real
files, read back by Pact's own core (pact-python's pact_ffi).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pact_ffi
import pytest

from fire.contracts.files import read_pact
from fire.runners.spawn import SpawnedServer
from tests.conftest import require_postgres

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORDERS = "system_tests/test_orders.py::test_a_logged_in_user_orders_and_gets_a_confirmation"
FORGED = "system_tests/test_orders.py::test_a_forged_user_header_from_the_browser_is_ignored"

#: The fire marker's contract options, in a test run beside the example's in the SQLite
#: recording (one pair of servers for both): the only test there that asks accounts for
#: a user it does not have, so that interaction (a 404) is its own.
MARKED = """
import pytest
import requests

from djfire import DjangoRemote

FAST = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.fire(
    contract_state="user ada exists",
    contract_exact=["$.error"],
    exclude_changes=["django_session", "auth_user.password"],
)
def test_marked(fire_remotes):
    accounts = DjangoRemote(fire_remotes["accounts"])
    shop = DjangoRemote(fire_remotes["shop"])
    with accounts.settings(PASSWORD_HASHERS=FAST), shop.settings(
        ACCOUNTS_URL=accounts.live_url_for("shop")
    ):
        ada = accounts.remote.module("accounts.factories").UserFactory(
            username="ada", password="pw"
        )
        with requests.Session() as browser:  # a session row, which the state leaves out
            login = {"username": "ada", "password": "pw"}
            assert browser.post(accounts.live_url + "/api/login/", json=login, timeout=10).ok
        assert shop.remote.module("shop.accounts_client").get_user(ada.id + 1) is None
"""


def run_example(
    directory: Path, *args: str, backend: str = "sqlite", env: dict[str, str] | None = None
) -> str:
    """The example's full-system suite, recording into `directory`; its output."""
    env = {**os.environ, "CI": os.environ.get("CI", ""), **(env or {})}
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-q"]
    command += [f"--fire-contracts={directory}", *args]  # one word: not a path to collect
    if backend == "postgres":
        require_postgres()
        env["EXAMPLE_DB"] = "postgres"
        suffix = f"run{os.getpid()}"  # test databases of this run's own on the shared server
        for name in ("accounts", "shop"):
            command += ["--fire-spawn", f"{name}={name}/manage.py:suffix={suffix}"]
    done = subprocess.run(
        command, cwd=EXAMPLES, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def recorded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, str]:
    """(backend, contracts directory, the run's output) of one recording run."""
    directory = tmp_path_factory.mktemp(f"contracts-{request.param}")
    # The tests whose calls the assertions name (the suite's others only add time).
    selected = ["system_tests/test_orders.py", "-k", "confirmation or forged"]
    if request.param == "sqlite":
        marked = tmp_path_factory.mktemp("marked") / "test_marked.py"
        marked.write_text(MARKED)
        selected = [selected[0], str(marked), "-k", "confirmation or forged or marked"]
        # With --cov, as the example's `make test`: the servers stop inside the test loop
        # to write their coverage data, and what they recorded must be taken before.
        selected += ["--cov=accounts", "--cov=shop", "--cov-report="]
        coverage = {"COVERAGE_FILE": str(tmp_path_factory.mktemp("coverage") / ".coverage")}
    else:
        coverage = {}
    output = run_example(directory, *selected, backend=request.param, env=coverage)
    return request.param, directory, output


def by_description(pact: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {interaction["description"]: interaction for interaction in pact["interactions"]}


def test_the_full_system_run_writes_the_contract_between_shop_and_accounts(
    recorded: tuple[str, Path, str],
) -> None:
    backend, directory, output = recorded
    path = directory / "shop-accounts.json"
    assert re.search(
        rf"fire contracts: wrote {re.escape(str(path))} \(\d+ interactions\) from \d+ tests", output
    )
    assert sorted(p.name for p in directory.iterdir()) == ["shop-accounts.json"]
    pact = read_pact(path)  # Pact V4, and parsed by Pact's own core
    assert pact["metadata"]["pactSpecification"]["version"] == "4.0"
    assert (pact["consumer"]["name"], pact["provider"]["name"]) == ("shop", "accounts")
    interactions = by_description(pact)
    assert {
        f"GET /api/session/ ({ORDERS}[v1])",
        f"GET /api/v1/users/{{id}}/ ({ORDERS}[v1])",
        f"GET /api/v2/users/{{id}}/ ({ORDERS}[v2])",
    } <= set(interactions)
    v2 = interactions[f"GET /api/v2/users/{{id}}/ ({ORDERS}[v2])"]
    assert v2["type"] == "Synchronous/HTTP"
    # The same shape from two tests: kept once, both listed; the recording with the
    # fewest rows stands for it (the forged header's test makes two users).
    assert v2["comments"]["testname"] == f"{ORDERS}[v2]"
    assert v2["comments"]["text"][0] == f"recorded by fire from: {ORDERS}[v2]"
    assert f"recorded by fire from: {FORGED}" in v2["comments"]["text"]
    # The provider's rows when the request came: Ada, with the id the path names.
    [state] = v2["providerStates"]
    assert state["name"] == "fire rows"
    [database] = state["params"]["databases"].values()
    assert database["vendor"] == ("postgresql" if backend == "postgres" else "sqlite")
    [ada] = database["tables"]["auth_user"]["inserted"]
    assert (ada["username"], ada["first_name"]) == ("ada", "Ada")
    assert v2["request"]["path"] == f"/api/v2/users/{ada['id']}/"
    assert isinstance(ada["date_joined"], str)  # datetimes as ISO 8601
    # Matched by type, the array by min, status and Content-Type exactly, no other header.
    response = v2["response"]
    assert response["status"] == 200
    assert response["headers"] == {"Content-Type": ["application/json"]}
    assert response["matchingRules"]["body"]["$.emails"]["matchers"] == [
        {"match": "type", "min": 1}
    ]
    # The session cookie is who it stands for, not the secret.
    session = interactions[f"GET /api/session/ ({ORDERS}[v1])"]
    [session_state] = session["providerStates"]
    [session_database] = session_state["params"]["databases"].values()
    [user] = session_database["tables"]["auth_user"]["inserted"]
    cookie = f"accounts_session=fire:session:{user['id']}"
    assert session["request"]["headers"]["Cookie"] == [cookie]
    assert "accounts_session=" + "fire" in json.dumps(session)
    raw = path.read_text()
    assert '"Set-Cookie"' not in raw and "csrftoken" not in raw


def test_pact_reads_the_states_back(recorded: tuple[str, Path, str]) -> None:
    _, directory, _ = recorded
    text = (directory / "shop-accounts.json").read_text()
    pointer = pact_ffi.lib.pactffi_parse_pact_json(text.encode())
    assert pointer != pact_ffi.ffi.NULL
    states = []
    for interaction in pact_ffi.pact_model_interaction_iterator(pact_ffi.Pact(pointer)):
        http = pact_ffi.pact_interaction_as_synchronous_http(interaction)
        for state in pact_ffi.sync_http_get_provider_state_iter(http):
            states.append((str(state.name), dict(state.parameters())))
    assert {name for name, _ in states} <= {"fire rows", "user ada exists"}  # (the marked)
    rows = [json.loads(params["databases"]) for name, params in states if name == "fire rows"]
    assert rows and all("auth_user" in databases["default"]["tables"] for databases in rows)


def test_the_marker_names_the_state_the_exact_paths_and_the_excluded_rows(
    recorded: tuple[str, Path, str],
) -> None:
    backend, directory, _ = recorded
    if backend != "sqlite":
        pytest.skip("the marked test runs in the SQLite recording")
    [unknown] = [
        interaction
        for interaction in read_pact(directory / "shop-accounts.json")["interactions"]
        if interaction["response"]["status"] == 404
    ]
    assert unknown["comments"]["testname"].endswith("::test_marked")  # (outside the rootdir)
    rows, named = unknown["providerStates"]
    assert named == {"name": "user ada exists"}
    tables = rows["params"]["databases"]["default"]["tables"]
    assert "django_session" not in tables
    [ada] = tables["auth_user"]["inserted"]
    assert ada["username"] == "ada" and "password" not in ada
    assert unknown["request"]["path"] == f"/api/v2/users/{ada['id'] + 1}/"
    rules = unknown["response"]["matchingRules"]["body"]
    assert rules["$.error"]["matchers"] == [{"match": "equality"}]
    assert json.dumps(unknown).count("md5$") == 0


def test_the_versions_report_says_who_still_uses_v1(recorded: tuple[str, Path, str]) -> None:
    backend, directory, _ = recorded
    if backend != "sqlite":
        pytest.skip("the report reads files: once is enough")
    report = subprocess.run(
        [sys.executable, "-m", "fire", "contracts", str(directory)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert f"accounts GET /api/v1/users/{{id}}/: shop (1 interaction, tests {ORDERS}[v1])" in report
    [v2] = [line for line in report if line.startswith("accounts GET /api/v2/users/{id}/: ")]
    # Its 200 and the marked test's 404.
    assert v2.startswith("accounts GET /api/v2/users/{id}/: shop (2 interactions, tests ")
    assert f"{ORDERS}[v2]" in v2 and FORGED in v2 and "::test_marked" in v2
    as_json = json.loads(
        subprocess.run(
            [sys.executable, "-m", "fire", "contracts", str(directory), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    v1 = next(row for row in as_json if row["path"] == "/api/v1/users/{id}/")
    assert v1 == {
        "provider": "accounts",
        "method": "GET",
        "path": "/api/v1/users/{id}/",
        "consumers": [{"name": "shop", "interactions": 1, "tests": [f"{ORDERS}[v1]"]}],
    }


def test_a_run_without_traffic_between_services_writes_no_file(
    pytester: pytest.Pytester, sqlite_shop: SpawnedServer
) -> None:
    # A consumer's URL asked for, never called: nothing to record. (Any djfire server
    # will do: the test suite's, attached, as a running one is.)
    pytester.makepyfile(
        test_quiet="""
        from djfire import DjangoRemote


        def test_quiet(fire_remotes):
            assert DjangoRemote(fire_remotes["shop"]).live_url_for("billing")
        """
    )
    directory = pytester.path / "contracts"
    result = pytester.runpytest_inprocess(
        "-p",
        "no:randomly",
        f"--fire-servers=shop={sqlite_shop.address}",
        f"--fire-contracts={directory}",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"fire contracts: nothing recorded, no file written in {directory}*"]
    )
    assert not directory.exists()
