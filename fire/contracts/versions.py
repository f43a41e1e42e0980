"""``python -m fire contracts DIR``: which consumers still use which paths of a provider.

Per provider, method and path template (``/api/v1/users/{id}/``), the consumers whose
contracts hold it, with how many interactions and from which tests: how a team sees
that ``v1`` can go. ``--json`` says the same for machines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import contract_files, read_pact
from .shapes import path_template

__all__ = ["Use", "format_uses", "uses", "uses_json"]

_RECORDED_BY = "recorded by fire from: "


@dataclass
class Use:
    """One consumer's use of one provider path."""

    provider: str
    method: str
    path: str
    consumer: str
    interactions: int = 0
    tests: list[str] = field(default_factory=list)


def uses(directory: str | Path) -> list[Use]:
    """Every use in `directory`'s contracts, sorted by provider, path, method, consumer."""
    found: dict[tuple[str, str, str, str], Use] = {}
    for path in contract_files(directory):
        pact = read_pact(path)
        consumer = str(pact["consumer"].get("name"))
        provider = str(pact["provider"].get("name"))
        for interaction in pact["interactions"]:
            request = interaction.get("request") or {}
            method = str(request.get("method", "GET")).upper()
            template = path_template(str(request.get("path", "/")))
            key = (provider, template, method, consumer)
            use = found.setdefault(key, Use(provider, method, template, consumer))
            use.interactions += 1
            for test in _tests(interaction):
                if test not in use.tests:
                    use.tests.append(test)
    return [found[key] for key in sorted(found)]


def _tests(interaction: dict[str, Any]) -> list[str]:
    """The tests that recorded `interaction` (its comments), or its test name."""
    comments = interaction.get("comments") or {}
    texts = [str(text) for text in comments.get("text") or []]
    tests = [text.removeprefix(_RECORDED_BY) for text in texts if text.startswith(_RECORDED_BY)]
    if not tests and comments.get("testname"):
        tests = [str(comments["testname"])]
    return tests


def format_uses(found: list[Use]) -> str:
    """A line per provider path: ``accounts GET /api/v1/users/{id}/: shop (2 interactions,
    tests a, b)``, several consumers separated by ``;``."""
    lines: dict[tuple[str, str, str], list[str]] = {}
    for use in found:
        count = f"{use.interactions} interaction{'s' if use.interactions != 1 else ''}"
        tests = f", tests {', '.join(use.tests)}" if use.tests else ""
        lines.setdefault((use.provider, use.method, use.path), []).append(
            f"{use.consumer} ({count}{tests})"
        )
    return "\n".join(
        f"{provider} {method} {path}: {'; '.join(consumers)}"
        for (provider, method, path), consumers in lines.items()
    )


def uses_json(found: list[Use]) -> str:
    """The uses as JSON: a list of {provider, method, path, consumers: [{name,
    interactions, tests}]}."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for use in found:
        row = rows.setdefault(
            (use.provider, use.method, use.path),
            {"provider": use.provider, "method": use.method, "path": use.path, "consumers": []},
        )
        row["consumers"].append(
            {"name": use.consumer, "interactions": use.interactions, "tests": use.tests}
        )
    return json.dumps(list(rows.values()), indent=2)
