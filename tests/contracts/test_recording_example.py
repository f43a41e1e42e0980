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
from tests.conftest import require_postgres

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORDERS = "system_tests/test_orders.py::test_a_logged_in_user_orders_and_gets_a_confirmation"
FORGED = "system_tests/test_orders.py::test_a_forged_user_header_from_the_browser_is_ignored"


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
        f"GET /api/session/ ({ORDERS}[v2])",
        f"GET /api/v1/users/{{id}}/ ({ORDERS}[v1])",
        f"GET /api/v2/users/{{id}}/ ({ORDERS}[v2])",
    } <= set(interactions)
    v2 = interactions[f"GET /api/v2/users/{{id}}/ ({ORDERS}[v2])"]
    assert v2["type"] == "Synchronous/HTTP"
    # The same shape from two tests: kept once, both listed.
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
    session = interactions[f"GET /api/session/ ({ORDERS}[v2])"]
    assert session["request"]["headers"]["Cookie"] == [f"accounts_session=fire:session:{ada['id']}"]
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
            states.append((state.name, json.loads(dict(state.parameters())["databases"])))
    assert {str(name) for name, _ in states} == {"fire rows"}
    assert all("auth_user" in rows["default"]["tables"] for _, rows in states)


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
    assert v2.startswith(
        f"accounts GET /api/v2/users/{{id}}/: shop (1 interaction, tests {ORDERS}[v2], "
    )
    assert FORGED in v2
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


def test_a_run_without_traffic_between_services_writes_no_file(tmp_path: Path) -> None:
    # A consumer's URL asked for, never called: nothing to record.
    (tmp_path / "test_quiet.py").write_text(
        "from djfire import DjangoRemote\n\n\n"
        "def test_quiet(fire_remotes):\n"
        '    assert DjangoRemote(fire_remotes["accounts"]).live_url_for("shop")\n'
    )
    directory = tmp_path / "contracts"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--fire-spawn=accounts={EXAMPLES / 'accounts' / 'manage.py'}",
            f"--fire-contracts={directory}",
            "test_quiet.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"fire contracts: nothing recorded, no file written in {directory}" in done.stdout
    assert not directory.exists()
