"""Write a consumer-provider pair's interactions as a Pact V4 file, with pact-python.

pact-python (the ``contracts`` extra) builds the file through Pact's own Rust core, so
the file is what Pact's tools read and verify, never a hand-made imitation. The format
(states, comments, matching) is docs/contracts.md's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import FireError
from .matching import body_rules
from .rerecord import keep_alike_examples

if TYPE_CHECKING:
    from .record import Interaction

__all__ = ["ROWS_STATE", "write_pact"]

#: The provider state every recorded interaction has: the rows of the test at the time.
ROWS_STATE = "fire rows"


def _pact_module() -> Any:
    try:
        import pact
    except ImportError as exc:
        raise FireError(
            "recording contracts needs pact-python, which is not installed: "
            "`pip install 'djfire[contracts]'` (or `pip install 'pact-python>=4.2,<5'`)"
        ) from exc
    return pact


def write_pact(
    directory: Path, consumer: str, provider: str, interactions: Sequence[Interaction]
) -> Path:
    """Write ``directory/{consumer}-{provider}.json`` (replacing it, but for the
    interactions it held that promise what the new ones do: `fire.contracts.rerecord`);
    returns its path."""
    pact = _pact_module().Pact(consumer, provider)  # Pact V4 by default
    pact.with_metadata("fire", {"recordedBy": f"fire {__version__}"})
    descriptions: set[str] = set()
    for interaction in interactions:
        description = interaction.description
        number = 2
        while description in descriptions:  # one test, one template, two statuses
            description = f"{interaction.description} [{number}]"
            number += 1
        descriptions.add(description)
        _add(pact.upon_receiving(description), interaction)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{consumer}-{provider}.json"
    try:
        previous: str | None = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        previous = None
    pact.write_file(directory, overwrite=True)
    keep_alike_examples(path, previous)
    return path


def _add(built: Any, interaction: Interaction) -> None:
    request, response = interaction.request, interaction.response
    built.given(ROWS_STATE, {"databases": interaction.rows.get("databases", {})})
    if interaction.state:
        built.given(interaction.state)
    built.with_request(request["method"], request["path"])
    for name, values in (request.get("query") or {}).items():
        for value in values:
            built.with_query_parameter(name, value)
    for name, value in (request.get("headers") or {}).items():
        if name.lower() != "content-type":  # with the body
            built.with_header(name, value, part="Request")
    if request.get("body") is not None:
        built.with_body(request["body"], request.get("contentType"), part="Request")
    built.will_respond_with(response["status"])
    content_type = response.get("contentType")
    if content_type:
        built.with_header("Content-Type", content_type, part="Response")
    body = response.get("body")
    if body:
        built.with_body(body, content_type, part="Response")
        parsed = _json(body, content_type)
        if parsed is not None:
            rules = body_rules(parsed[0], interaction.exact)
            built.with_matching_rules({"body": rules}, part="Response")
    built.set_comment("testname", interaction.tests[0])
    for test in interaction.tests:
        built.add_text_comment(f"recorded by fire from: {test}")
    built.test_name(interaction.tests[0])


def _json(body: str, content_type: str | None) -> tuple[Any] | None:
    """(the decoded body,) when it is JSON, else None."""
    if not content_type or "json" not in content_type:
        return None
    try:
        return (json.loads(body),)
    except ValueError:
        return None
