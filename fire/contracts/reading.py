"""Read a contract file, and refuse at once one that is not what fire verifies or replays.

Both the verification (`fire.contracts.verify`) and the replay (`fire.contracts.replay`)
read Pact **V4** JSON files of ``Synchronous/HTTP`` interactions (docs/contracts.md).
Anything else is one `ContractFileError` naming the file and what was expected, raised
before anything is verified or served: a file half understood must not pass as verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

from .files import ContractFileError, read_pact

__all__ = [
    "SESSION_MARKER",
    "Contract",
    "ContractFileError",
    "ContractInteraction",
    "contracts_of",
    "read_contract",
]

#: The prefix of a session cookie's recorded value: ``fire:session:<user pk>``.
SESSION_MARKER = "fire:session:"
#: The provider state every recorded interaction carries (`fire.contracts.pact_files`).
ROWS_STATE = "fire rows"
_HTTP = "Synchronous/HTTP"
_EXPECTED = (
    "a Pact V4 contract (JSON with consumer, provider, interactions of type "
    f"{_HTTP!r} and metadata.pactSpecification.version 4.x), as `--fire-contracts` writes"
)


@dataclass
class ContractInteraction:
    """One interaction of a contract, as read from its file."""

    #: Its position in the file's ``interactions``.
    index: int
    description: str
    request: dict[str, Any]
    response: dict[str, Any]
    #: ``[{"name": …, "params": {…}}, …]``
    states: list[dict[str, Any]] = field(default_factory=list)
    #: The tests that recorded it (the comments fire writes), first the one it names.
    tests: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        return str(self.request.get("method", "GET")).upper()

    @property
    def path(self) -> str:
        return str(self.request.get("path", "/"))

    @property
    def status(self) -> int:
        return int(self.response.get("status", 200))

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies, by name (a session's is ``fire:session:<pk>``)."""
        header = header_value(self.request.get("headers"), "Cookie")
        return parse_cookies(header) if header else {}

    @property
    def session_markers(self) -> list[str]:
        """The ``fire:session:…`` values among the request's cookies."""
        return [v for v in self.cookies.values() if v.startswith(SESSION_MARKER)]

    @property
    def body(self) -> Any:
        """The response body's content (decoded JSON for JSON), or None."""
        body = self.response.get("body")
        return body.get("content") if isinstance(body, dict) else body


@dataclass
class Contract:
    """A contract file: its consumer, provider and interactions."""

    path: Path
    consumer: str
    provider: str
    interactions: list[ContractInteraction]
    #: The file's JSON, as read (the verification hands Pact a copy of it).
    data: dict[str, Any]


def read_contract(path: str | Path) -> Contract:
    """The contract in `path`; raises `ContractFileError` naming the file and the fault."""
    path = Path(path)
    data = read_pact(path)  # Pact V4 JSON, parsed by Pact's core too

    def refuse(problem: str) -> ContractFileError:
        return ContractFileError(f"{path}: {problem}; expected {_EXPECTED}")

    names = []
    for role in ("consumer", "provider"):
        party = data.get(role)
        if not isinstance(party, dict) or not isinstance(party.get("name"), str):
            raise refuse(f"no {role} name")
        names.append(party["name"])
    interactions = []
    for index, raw in enumerate(data["interactions"]):
        where = f"interaction {index + 1}"
        if not isinstance(raw, dict):
            raise refuse(f"{where} is not an object")
        kind = raw.get("type", _HTTP)
        if kind != _HTTP:
            raise refuse(f"{where} is of type {kind!r}, which fire does not verify or replay")
        request, response = raw.get("request"), raw.get("response")
        if not isinstance(request, dict) or not isinstance(request.get("path"), str):
            raise refuse(f"{where} has no request path")
        if not isinstance(response, dict) or not isinstance(response.get("status"), int):
            raise refuse(f"{where} has no response status")
        states = raw.get("providerStates") or []
        if not isinstance(states, list) or not all(
            isinstance(s, dict) and isinstance(s.get("name"), str) for s in states
        ):
            raise refuse(f"{where}'s providerStates is not a list of named states")
        interactions.append(
            ContractInteraction(
                index=index,
                description=str(raw.get("description", f"interaction {index + 1}")),
                request=request,
                response=response,
                states=states,
                tests=_tests(raw.get("comments")),
            )
        )
    return Contract(path, names[0], names[1], interactions, data)


def contracts_of(source: str | Path, provider: str) -> list[Contract]:
    """The contracts in `source` (a file, or a directory's ``*.json``) whose provider is
    `provider`. Every file is read, so a bad one is refused even if it names another."""
    source = Path(source)
    if source.is_dir():
        files = sorted(source.glob("*.json"))
    elif source.exists():
        files = [source]
    else:
        raise ContractFileError(f"{source}: no such file or directory of contracts")
    contracts = [read_contract(file) for file in files]
    mine = [contract for contract in contracts if contract.provider == provider]
    if not mine:
        others = sorted({contract.provider for contract in contracts})
        named = f"; its contracts name {', '.join(map(repr, others))}" if others else ""
        raise ContractFileError(
            f"{source}: no contract names the provider {provider!r}{named} (the provider's "
            "name is its fire server's name in the run that recorded them)"
        )
    return mine


def _tests(comments: Any) -> list[str]:
    """The recording tests named by fire's comments (``testname`` first)."""
    if not isinstance(comments, dict):
        return []
    tests = []
    if isinstance(comments.get("testname"), str):
        tests.append(comments["testname"])
    for text in comments.get("text") or []:
        if isinstance(text, str) and text.startswith("recorded by fire from: "):
            test = text.removeprefix("recorded by fire from: ")
            if test not in tests:
                tests.append(test)
    return tests


def header_value(headers: Any, name: str) -> str | None:
    """A Pact header's value (a string, or V4's list of strings), names in any case."""
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return None


def parse_cookies(header: str) -> dict[str, str]:
    """A Cookie header's values by name (an unparsable one: by splitting on ``;``)."""
    try:
        cookie = SimpleCookie(header)
    except CookieError:
        cookie = None
    if cookie:
        return {name: morsel.value for name, morsel in cookie.items()}
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return {name: value for name, _, value in pairs if name}
