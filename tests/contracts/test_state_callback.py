"""The endpoint Pact's verifier posts state changes to: silent about those it answers,
never about those that fail. Real HTTP on a real socket."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from fire.contracts.state_callback import state_callback


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_state_change_calls_the_handler_and_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    calls: list[tuple[str, str, Any]] = []
    with state_callback(lambda *change: calls.append(change)) as url:
        change = {"state": "fire rows", "action": "setup", "params": {"fire_interaction": 1}}
        assert post(url, json.dumps(change).encode()) == 200
        assert post(url, json.dumps({**change, "action": "teardown"}).encode()) == 200

    assert calls == [
        ("fire rows", "setup", {"fire_interaction": 1}),
        ("fire rows", "teardown", {"fire_interaction": 1}),
    ]
    assert capfd.readouterr() == ("", "")


def test_what_goes_wrong_is_answered_with_an_error_and_printed(
    capfd: pytest.CaptureFixture[str],
) -> None:
    def handler(state: str, action: str, params: dict[str, Any] | None) -> None:
        raise LookupError("no such user")

    with state_callback(handler) as url:
        assert post(url, b"not json") == 400
        assert post(url, json.dumps({"state": "s", "action": "setup"}).encode()) == 500

    err = capfd.readouterr().err
    assert "code 400, message not a provider state change (JSONDecodeError" in err
    assert "code 500, message the state handler of 's' raised LookupError('no such user')" in err
