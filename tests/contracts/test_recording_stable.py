"""The same suite records the same contract file, byte for byte: whatever order its
tests ran or its pytest-xdist workers finished in, and whatever values (timestamps,
generated names) its run made, as long as the promises are the same.

Real files written by pact-python's core; the recordings are what a provider's server
hands the runner (`labelled_contract_interactions`), made here without servers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fire.contracts.record import Recording

BASKET = "tests/test_shop.py::test_a_basket"
SESSION = "tests/test_shop.py::test_a_session"
USER_V1 = "tests/test_shop.py::test_a_user[v1]"
USER_V2 = "tests/test_shop.py::test_a_user[v2]"


def recorded(
    path: str, body: dict[str, Any], joined: str = "2026-12-07T04:21:23+00:00", users: int = 1
) -> dict:
    """One request to accounts as its server records it, with the rows the test made."""
    rows = [
        {"id": pk, "username": f"user{pk}", "first_name": "Ada", "date_joined": joined}
        for pk in range(1, users + 1)
    ]
    return {
        "consumer": "shop",
        "request": {"method": "GET", "path": path},
        "response": {
            "status": 200,
            "contentType": "application/json",
            "body": json.dumps(body),
        },
        "state": {
            "databases": {
                "default": {
                    "vendor": "sqlite",
                    "tables": {"auth_user": {"inserted": rows, "updated": [], "deleted": []}},
                }
            }
        },
    }


def run(directory: Path, order: list[tuple[str, dict[str, Any]]], **options: Any) -> bytes:
    """Record `order`'s (test, request) pairs as a run would, write, and read the file."""
    recording = Recording(directory)
    for test, item in order:
        recording.add("accounts", [item], test, **options)
        recording.tests += 1
    recording.write()
    return (directory / "shop-accounts.json").read_bytes()


def test_tests_in_another_order_record_the_same_file(tmp_path: Path) -> None:
    session = recorded("/api/session/", {"id": 1, "username": "ada"})
    user = recorded("/api/v2/users/1/", {"id": 1, "name": "Ada"})
    other_user = recorded("/api/v2/users/7/", {"id": 7, "name": "Bob"})
    v1 = recorded("/api/v1/users/1/", {"id": 1, "username": "ada"})
    order = [(USER_V2, user), (USER_V2, session), (SESSION, session), (SESSION, other_user)]
    order += [(USER_V1, session), (USER_V1, v1)]
    order += [(BASKET, recorded("/api/session/", {"id": 1, "username": "ada"}, users=2))]

    first = run(tmp_path / "first", order)
    # As pytest-randomly would run them, or two xdist workers each half of them.
    again = run(tmp_path / "again", order[::-1])
    workers = Recording(tmp_path / "workers")
    for half in (order[4:], order[:4]):
        worker = Recording(tmp_path / "worker")
        for test, item in half:
            worker.add("accounts", [item], test)
        workers.merge(worker.to_data())
    workers.write()

    assert again == first
    assert (tmp_path / "workers" / "shop-accounts.json").read_bytes() == first
    pact = json.loads(first)
    descriptions = [interaction["description"] for interaction in pact["interactions"]]
    assert descriptions == [
        f"GET /api/session/ ({SESSION})",
        f"GET /api/v1/users/{{id}}/ ({USER_V1})",
        f"GET /api/v2/users/{{id}}/ ({SESSION})",
    ]
    # The recording with the fewest rows, of the test first by name among those.
    assert pact["interactions"][0]["comments"]["text"] == [
        f"recorded by fire from: {test}" for test in (SESSION, BASKET, USER_V1, USER_V2)
    ]
    users = pact["interactions"][2]
    assert users["request"]["path"] == "/api/v2/users/7/"  # the first test's recording
    assert users["comments"]["text"] == [
        f"recorded by fire from: {SESSION}",
        f"recorded by fire from: {USER_V2}",
    ]


def test_recording_the_same_promises_again_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    def suite(name: str, joined: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (SESSION, recorded("/api/session/", {"id": 1, "username": "ada"}, joined)),
            (USER_V2, recorded("/api/v2/users/1/", {"id": 1, "name": name}, joined)),
        ]

    first = run(tmp_path, suite("Ada", "2026-12-07T04:21:23+00:00"))
    again = run(tmp_path, suite("Robin", "2026-12-07T12:15:14.913528+00:00"))
    assert again == first

    # A new field in one response: that interaction changes, the other stays as it was.
    changed = suite("Robin", "2026-12-07T12:15:14+00:00")
    changed[1][1]["response"]["body"] = json.dumps({"id": 1, "name": "Robin", "email": "r@x"})
    session, user = json.loads(run(tmp_path, changed))["interactions"]
    assert session == json.loads(first)["interactions"][0]
    assert user["response"]["body"]["content"] == {"id": 1, "name": "Robin", "email": "r@x"}


def test_a_value_matched_by_equality_is_recorded_again_when_it_changes(tmp_path: Path) -> None:
    def suite(error: str) -> list[tuple[str, dict[str, Any]]]:
        return [(USER_V2, recorded("/api/v2/users/2/", {"error": error}))]

    first = run(tmp_path, suite("no such user"), exact=["$.error"])
    assert run(tmp_path, suite("no such user"), exact=["$.error"]) == first
    again = json.loads(run(tmp_path, suite("unknown user"), exact=["$.error"]))
    assert again["interactions"][0]["response"]["body"]["content"] == {"error": "unknown user"}
