"""Recording a contract again: its file changes where the promises do, not the values.

Each recording holds its run's own values: timestamps, generated names, password hashes
and session keys in the states' rows, primary keys in paths. The same tests run again
promise the same with other values, and a file rewritten with them would show a change
in review where there is none. So when a contract file is recorded again, each new
interaction *alike* the file's interaction of the same description keeps the file's.

Alike: the same description (method, path template, first test), comments (the tests),
states' names, status, headers and matching rules, and request, response and states'
rows of the same structure (keys, list lengths, the type of every value). A response
body not matched by type alone (``contract_exact`` paths, a body that is not JSON) must
be the same to the letter, since Pact verifies its values. The file is written in Pact's
own layout (JSON indented by two spaces, keys as Pact sorted them), so a recording of
unchanged promises leaves the file byte for byte as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["keep_alike_examples"]

#: An interaction's parts whose values are examples, compared by structure.
_EXAMPLES = ("request", "response", "providerStates")


def keep_alike_examples(path: Path, previous: str | None) -> None:
    """Rewrite the contract Pact just wrote at `path` with the interactions of the
    `previous` text of that file (None: there was none) that its new ones are alike."""
    if previous is None:
        return
    try:
        before = json.loads(previous)
        interactions = {item["description"]: item for item in before["interactions"]}
    except (ValueError, TypeError, KeyError):
        return  # not a contract fire wrote: replaced whole
    recorded = json.loads(path.read_text(encoding="utf-8"))
    kept = [_kept(interactions.get(item["description"]), item) for item in recorded["interactions"]]
    if kept != recorded["interactions"]:
        recorded["interactions"] = kept
        text = json.dumps(recorded, indent=2, ensure_ascii=False)
        path.write_text(text, encoding="utf-8")


def _kept(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """`old` if `new` is alike it, else `new`."""
    return old if old is not None and _promise(old) == _promise(new) else new


def _promise(interaction: dict[str, Any]) -> tuple[Any, ...]:
    """What an interaction promises: equal for two recordings of the same promise."""
    request = interaction.get("request") or {}
    response = interaction.get("response") or {}
    states = interaction.get("providerStates") or []
    body_rules = (response.get("matchingRules") or {}).get("body") or {}
    by_type = "$" in body_rules and all(
        matcher.get("match") != "equality"
        for rule in body_rules.values()
        for matcher in rule.get("matchers", [])
    )
    return (
        {key: value for key, value in interaction.items() if key not in _EXAMPLES},
        [state.get("name") for state in states],
        request.get("method"),
        request.get("matchingRules"),
        response.get("status"),
        response.get("headers"),
        response.get("matchingRules"),
        None if by_type else response.get("body"),
        _structure(request),
        _structure(response),
        _structure(states),
    )


def _structure(value: Any) -> Any:
    """`value` with each scalar replaced by its type's name: its keys, lengths and types."""
    if isinstance(value, dict):
        return {key: _structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_structure(item) for item in value]
    return type(value).__name__
