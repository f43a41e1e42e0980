"""How a recorded response body is matched: by type, so it is a contract, not a snapshot.

Pact V4 matching rules for a JSON body: ``$`` by type (it cascades to every value), each
non-empty array by type with ``min: 1`` (each item like the first; the consumer may read
the first), strings that are ISO 8601 dates or times and UUIDs by a regular expression,
and the paths a test asked for (``contract_exact``) by equality.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["body_rules", "json_path"]

#: Regular expressions of the string formats recognised, checked in this order.
FORMATS = {
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "datetime": (r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$"),
    "date": r"^\d{4}-\d{2}-\d{2}$",
    "time": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _rule(*matchers: dict[str, Any]) -> dict[str, Any]:
    return {"combine": "AND", "matchers": list(matchers)}


def json_path(parent: str, key: str | int | None) -> str:
    """The Pact path of `key` under `parent` (``$.emails``, ``$['a b']``, ``$.orders[*]``)."""
    if key is None:
        return f"{parent}[*]"
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}"
    return f"{parent}['{key}']"


def body_rules(body: Any, exact: Iterable[str] = ()) -> dict[str, Any]:
    """The matching rules of a JSON `body` (the ``body`` category's paths)."""
    rules: dict[str, Any] = {"$": _rule({"match": "type"})}
    _walk(body, "$", rules)
    for path in exact:
        rules[path] = _rule({"match": "equality"})
    return rules


def _walk(value: Any, path: str, rules: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(item, json_path(path, str(key)), rules)
    elif isinstance(value, list):
        if value:
            rules[path] = _rule({"match": "type", "min": 1})
            # Each item is matched against the first: its shape is the array's.
            _walk(value[0], json_path(path, None), rules)
    elif isinstance(value, str):
        for expression in FORMATS.values():
            if re.match(expression, value):
                rules[path] = _rule({"match": "regex", "regex": expression})
                break
