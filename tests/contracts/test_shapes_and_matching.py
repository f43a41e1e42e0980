"""Request shapes and the response's matching rules: plain data in, plain data out."""

from __future__ import annotations

from fire.contracts.matching import body_rules
from fire.contracts.shapes import path_template


def test_ids_and_uuids_in_a_path_stand_for_any() -> None:
    assert path_template("/api/v1/users/12/") == "/api/v1/users/{id}/"
    assert (
        path_template("/orders/0b6a3a4e-8d2c-4a57-9a43-3f1b2c4d5e6f/items/3")
        == "/orders/{id}/items/{id}"
    )
    assert path_template("/api/v2/users/me/") == "/api/v2/users/me/"


def test_a_body_is_matched_by_type_arrays_by_min_and_formats_by_regex() -> None:
    body = {
        "id": 1,
        "emails": ["ada@example.com"],
        "joined": "2026-12-07T03:40:00.972940+00:00",
        "token": "0b6a3a4e-8d2c-4a57-9a43-3f1b2c4d5e6f",
        "orders": [{"placed": "2026-12-07"}],
        "tags": [],
    }
    rules = body_rules(body, exact=["$.id"])
    assert rules["$"]["matchers"] == [{"match": "type"}]
    assert rules["$.emails"]["matchers"] == [{"match": "type", "min": 1}]
    assert rules["$.joined"]["matchers"][0]["match"] == "regex"
    assert rules["$.token"]["matchers"][0]["match"] == "regex"
    assert rules["$.orders[*].placed"]["matchers"][0]["match"] == "regex"
    assert "$.tags" not in rules  # an empty array promises no item's shape
    assert rules["$.id"]["matchers"] == [{"match": "equality"}]
