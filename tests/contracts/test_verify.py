"""Verifying a provider against recorded contracts: the example's accounts service, its
fire server spawned for real, Pact replaying each interaction over HTTP.

The contract is a real recording of the example's full-system suite
(tests/contracts/files/shop-accounts.json: `pytest --fire-contracts`); the bad cases are
copies of it changed on disk, and a copy of accounts whose API changed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fire
from fire.contracts.files import ContractFileError
from fire.contracts.verify import Verification, verify_provider
from fire.runners.spawn import SpawnedServer, parse_spawn_spec
from tests.conftest import require_postgres

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONTRACT = Path(__file__).resolve().parent / "files" / "shop-accounts.json"
V2 = "GET /api/v2/users/{id}/"
ORDERS = "system_tests/test_orders.py::test_a_logged_in_user_orders_and_gets_a_confirmation"


def spawn_accounts(manage: Path, backend: str) -> SpawnedServer:
    spec = parse_spawn_spec(f"accounts={manage}")
    if backend == "postgres":
        require_postgres()
        spec.env = {"EXAMPLE_DB": "postgres"}
        spec.suffix = f"verify{os.getpid()}"
    return SpawnedServer(spec).start()


@pytest.fixture(scope="module")
def accounts_server() -> Iterator[SpawnedServer]:
    """The example's accounts service on SQLite, for the module's tests (and the pytest
    run that attaches to it)."""
    server = spawn_accounts(EXAMPLES / "accounts" / "manage.py", "sqlite")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def accounts(accounts_server: SpawnedServer) -> Iterator[tuple[fire.Remote, str]]:
    """That service: (its fire connection, its live URL)."""
    with fire.connect(accounts_server.address, name="accounts", timeout=20) as remote:
        assert accounts_server.url is not None
        yield remote, accounts_server.url


def served(manage: Path, backend: str) -> Iterator[tuple[fire.Remote, str]]:
    server = spawn_accounts(manage, backend)
    try:
        with fire.connect(server.address, name="accounts", timeout=20) as remote:
            assert server.url is not None
            yield remote, server.url
    finally:
        server.stop()


def verify(accounts: tuple[fire.Remote, str], *sources: Path) -> tuple[Verification, str]:
    out = io.StringIO()
    remote, url = accounts
    return verify_provider(remote, url, sources, provider="accounts", out=out), out.getvalue()


def changed_contract(tmp_path: Path, change: Any) -> Path:
    """A copy of the recorded contract, `change(pact)` applied."""
    pact = json.loads(CONTRACT.read_text())
    change(pact)
    path = tmp_path / "shop-accounts.json"
    path.write_text(json.dumps(pact))
    return path


def test_the_provider_verifies_the_recorded_contract(
    accounts: tuple[fire.Remote, str], capfd: pytest.CaptureFixture[str]
) -> None:
    verification, report = verify(accounts, CONTRACT)

    assert verification.passed, report + capfd.readouterr().out
    assert verification.verified == 3  # the session, v1 and v2: both API versions
    assert "fire: accounts verified 3 interactions of 1 contract (shop): 3 passed" in report
    printed = capfd.readouterr()
    pact_output = printed.out  # Pact's own, as it verifies
    assert "GET /api/v1/users/{id}/" in pact_output and "has a matching body (OK)" in pact_output
    assert "/_pact/state" not in printed.err  # no line per state change
    # Nothing is left behind: every interaction ran in a scope, rolled back.
    remote, _ = accounts
    with remote.scope():
        users = remote.module("django.contrib.auth.models").User.objects
        assert users.count() == 0


@pytest.mark.postgres
def test_the_provider_verifies_on_postgresql(capfd: pytest.CaptureFixture[str]) -> None:
    """Same primary keys, sequences moved past them (setval), all rolled back."""
    for accounts in served(EXAMPLES / "accounts" / "manage.py", "postgres"):
        verification, report = verify(accounts, CONTRACT)
        assert verification.passed, report + capfd.readouterr().out
        remote, _ = accounts
        with remote.scope():
            users = remote.module("django.contrib.auth.models").User.objects
            assert users.count() == 0
            assert users.create(username="new").pk > 1  # past the recreated user's key


def test_a_row_that_no_longer_fits_fails_its_interaction_naming_table_and_column(
    accounts: tuple[fire.Remote, str], tmp_path: Path
) -> None:
    def add_a_dropped_column(pact: dict[str, Any]) -> None:
        for interaction in pact["interactions"]:
            if interaction["description"].startswith(V2):
                rows = interaction["providerStates"][0]["params"]["databases"]["default"]
                rows["tables"]["auth_user"]["inserted"][0]["nickname"] = "ada"

    verification, report = verify(accounts, changed_contract(tmp_path, add_a_dropped_column))

    assert verification.verified == 3
    [failure] = verification.failures
    assert failure.interaction.description.startswith(V2)
    assert "table auth_user has no column 'nickname'" in report
    assert f"recorded by: {ORDERS}[v2]" in report
    assert "2 passed, 1 failed" in report  # the others still ran


def test_a_row_the_database_refuses_fails_its_interaction_with_the_database_s_message(
    accounts: tuple[fire.Remote, str], tmp_path: Path
) -> None:
    def null_username(pact: dict[str, Any]) -> None:
        for interaction in pact["interactions"]:
            if interaction["description"].startswith(V2):
                rows = interaction["providerStates"][0]["params"]["databases"]["default"]
                rows["tables"]["auth_user"]["inserted"][0]["username"] = None

    verification, report = verify(accounts, changed_contract(tmp_path, null_username))

    [failure] = verification.failures
    assert failure.interaction.description.startswith(V2)
    assert "its state could not be recreated: state 'fire rows': " in report
    assert "auth_user.username" in report  # SQLite: NOT NULL constraint failed: auth_user.…
    assert "2 passed, 1 failed" in report


def test_a_file_that_is_not_a_v4_contract_is_one_error_and_nothing_is_verified(
    accounts: tuple[fire.Remote, str], tmp_path: Path
) -> None:
    shutil.copy(CONTRACT, tmp_path / "shop-accounts.json")
    (tmp_path / "notes.json").write_text("{not json")
    with pytest.raises(ContractFileError, match=r"notes\.json: not JSON .*expected Pact V4"):
        verify(accounts, tmp_path)

    old = changed_contract(
        tmp_path, lambda pact: pact["metadata"].update(pactSpecification={"version": "3.0.0"})
    )
    with pytest.raises(ContractFileError, match=r"shop-accounts\.json: .*3\.0\.0, not 4\.x"):
        verify(accounts, old)

    with pytest.raises(ContractFileError, match="'billing'; its contracts name 'accounts'"):
        remote, url = accounts
        verify_provider(remote, url, [CONTRACT], provider="billing", out=io.StringIO())


@pytest.fixture(scope="module")
def changed_accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[fire.Remote, str]]:
    """accounts after a change its consumer was not told of: v2's display_name renamed,
    and the v2 view now also writes (so a failure shows the replay's data changes)."""
    root = tmp_path_factory.mktemp("changed") / "accounts"
    shutil.copytree(EXAMPLES / "accounts", root, ignore=shutil.ignore_patterns("*.sqlite3", ".*"))
    views = root / "accounts" / "views.py"
    text = views.read_text().replace('"display_name"', '"name_to_display"')
    text = text.replace(
        "    return JsonResponse(USER_API[version](user))",
        "    User.objects.filter(pk=user.pk).update(last_name=user.last_name.upper())\n"
        "    return JsonResponse(USER_API[version](user))",
    )
    views.write_text(text)
    (root / "accounts" / "contract_states.py").write_text(
        "from django.contrib.auth.models import User\n"
        "from djfire.contracts import state\n\n\n"
        '@state("the user has left")\n'
        "def left(params):\n"
        '    User.objects.filter(username=params["username"]).update(is_active=False)\n'
    )
    yield from served(root / "manage.py", "sqlite")


def test_a_changed_provider_fails_naming_the_field_the_tests_and_its_data_changes(
    changed_accounts: tuple[fire.Remote, str], capfd: pytest.CaptureFixture[str]
) -> None:
    verification, report = verify(changed_accounts, CONTRACT)

    assert not verification.passed
    failed = {f.interaction.description.split(" (")[0] for f in verification.failures}
    assert failed == {V2}  # v1 wrote too, but still answers as its contract says
    v2 = next(f for f in verification.failures if f.interaction.description.startswith(V2))
    assert any("display_name" in reason for reason in v2.reasons), report
    assert f"recorded by: {ORDERS}[v2]" in report
    assert "the provider's data changes during the replay:" in report
    assert "last_name: 'Lovelace' -> 'LOVELACE'" in report
    assert "missing the following keys: display_name" in capfd.readouterr().out  # Pact's


def test_manage_py_verifyfirecontracts(tmp_path: Path) -> None:
    command = [sys.executable, "manage.py", "verifyfirecontracts", str(CONTRACT)]
    done = subprocess.run(
        command, cwd=EXAMPLES / "accounts", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fire: accounts verified 3 interactions of 1 contract (shop): 3 passed" in done.stdout

    (tmp_path / "bad.json").write_text("[]")
    command[-1] = str(tmp_path)
    done = subprocess.run(
        command, cwd=EXAMPLES / "accounts", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "bad.json: JSON, but not a Pact file" in done.stderr


def test_named_states_run_the_handlers_the_provider_registered(
    changed_accounts: tuple[fire.Remote, str], tmp_path: Path
) -> None:
    def name_states(pact: dict[str, Any]) -> None:
        for interaction in pact["interactions"]:
            states = interaction["providerStates"]
            if "/api/v1/" in interaction["request"]["path"]:  # after the rows, ada leaves
                states.append({"name": "the user has left", "params": {"username": "ada"}})
            elif interaction["request"]["path"] == "/api/session/":
                states.append({"name": "a state nobody wrote a handler for"})

    verification, report = verify(changed_accounts, changed_contract(tmp_path, name_states))

    v1 = next(f for f in verification.failures if "/api/v1/" in f.interaction.path)
    assert "expected 200 but was 404" in " ".join(v1.reasons)  # the handler ran
    assert "no handler for the state 'a state nobody wrote a handler for'" in report
    session = [f for f in verification.failures if f.interaction.path == "/api/session/"]
    assert session == []  # its rows and login still recreated


def test_pytest_fire_verify_is_a_test_item_per_option(
    pytester: pytest.Pytester, tmp_path: Path, accounts_server: SpawnedServer
) -> None:
    def add_a_dropped_column(pact: dict[str, Any]) -> None:
        rows = pact["interactions"][0]["providerStates"][0]["params"]["databases"]["default"]
        rows["tables"]["auth_user"]["inserted"][0]["nickname"] = "ada"

    broken = tmp_path / "broken"
    broken.mkdir()
    changed_contract(broken, add_a_dropped_column)
    result = pytester.runpytest_inprocess(
        "-p",
        "no:randomly",
        "--fire-servers",  # the module's server, attached as a running one is
        f"accounts={accounts_server.address}",
        "--fire-verify",
        f"accounts={CONTRACT}",
        "--fire-verify",
        f"accounts={broken}",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*fire verify accounts=*broken*",
            "FAILED shop -> accounts: GET /api/session/ *",
            "*its state does not fit: table auth_user has no column 'nickname'*",
            "fire: accounts verified 3 interactions of 1 contract (shop): 2 passed, 1 failed*",
        ]
    )
