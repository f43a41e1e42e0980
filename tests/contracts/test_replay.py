"""Replaying a recorded contract as a client's test double: real HTTP to `fire.contracts.stub`.

The contract is the example's real recording (tests/contracts/files/shop-accounts.json).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from fire.contracts import stub
from fire.contracts.files import ContractFileError
from fire.contracts.replay import ContractMismatch

CONTRACT = Path(__file__).resolve().parent / "files" / "shop-accounts.json"


def test_recorded_requests_get_their_recorded_answers() -> None:
    with stub(CONTRACT) as accounts:
        session = accounts.find("GET", "/api/session/", status=200)
        v2 = accounts.find("GET", "/api/v2/users/{id}/")

        who = requests.get(
            accounts.url + "/api/session/", cookies={"accounts_session": accounts.session(session)}
        )
        user = requests.get(accounts.url + v2.path)
        # Another id of the same path template: the one interaction there answers.
        other = requests.get(accounts.url + "/api/v2/users/8/")

    assert (who.status_code, who.json()) == (200, {"id": 1, "username": "ada"})
    assert who.headers["Content-Type"] == "application/json"
    assert user.json() == {"id": 1, "display_name": "Ada Lovelace", "emails": ["ada@example.com"]}
    assert other.json() == user.json()
    assert len(accounts.answered) == 3 and accounts.refused == []


def test_a_request_the_contract_does_not_hold_fails_naming_the_nearest() -> None:
    with pytest.raises(ContractMismatch) as raised, stub(CONTRACT) as accounts:
        refused = requests.post(accounts.url + "/api/v2/users/1/", json={})
        no_session = requests.get(accounts.url + "/api/session/")

    assert refused.status_code == 500
    message = str(raised.value)
    assert "holds no interaction for POST /api/v2/users/1/" in message
    assert "the nearest is 'GET /api/v2/users/{id}/ (system_tests/" in message
    assert "method POST, the contract's GET" in message
    assert no_session.status_code == 500
    assert "cookies None, the contract's 'accounts_session=fire:session:1'" in message
    assert "send the recorded session" in message


def test_a_template_whose_interactions_answer_differently_needs_their_paths(
    tmp_path: Path,
) -> None:
    pact = json.loads(CONTRACT.read_text())
    [v2] = [i for i in pact["interactions"] if "/api/v2/" in i["request"]["path"]]
    missing: dict[str, Any] = json.loads(json.dumps(v2))
    missing["description"] = "GET /api/v2/users/{id}/ (a test of an unknown user)"
    missing["request"]["path"] = "/api/v2/users/999/"
    missing["response"].update(status=404, body={"content": {"error": "no user 999"}})
    pact["interactions"].append(missing)
    path = tmp_path / "shop-accounts.json"
    path.write_text(json.dumps(pact))

    refused = pytest.raises(ContractMismatch, match=r"recorded paths: /api/v2/users/1/ \(200\), ")
    with refused, stub(path) as accounts:
        assert requests.get(accounts.url + "/api/v2/users/999/").status_code == 404
        assert requests.get(accounts.url + "/api/v2/users/1/").status_code == 200
        assert requests.get(accounts.url + "/api/v2/users/5/").status_code == 500


def test_a_bad_file_is_refused_before_anything_is_served(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"consumer": {"name": "shop"}}')
    with pytest.raises(ContractFileError, match=r"a\.json: JSON, but not a Pact file"):
        stub(tmp_path / "a.json")
    pact = json.loads(CONTRACT.read_text())
    pact["interactions"][0]["type"] = "Asynchronous/Messages"
    (tmp_path / "b.json").write_text(json.dumps(pact))
    with pytest.raises(ContractFileError, match="'Asynchronous/Messages', which fire does not"):
        stub(tmp_path / "b.json")


def test_the_fixture_fails_the_test_that_asked_for_what_the_contract_lacks(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        f"""
        import requests

        def test_asks(fire_contract_stub):
            accounts = fire_contract_stub({str(CONTRACT)!r})
            assert requests.get(accounts.url + "/api/v1/users/1/").status_code == 200
            requests.get(accounts.url + "/api/v3/users/1/")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*holds no interaction for GET /api/v3/users/1/*"])


def test_fire_contracts_stub_imports_no_django() -> None:
    code = "import sys, fire.contracts; fire.contracts.stub; print('django' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
