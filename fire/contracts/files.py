"""Reading contract files: Pact V4 JSON, or one error naming the file and what was expected.

Every reader of contracts goes through this module, so a file that is not Pact JSON, or
of another specification version, is refused the same way everywhere (one
`ContractFileError`), and never taken for a contract with nothing in it:

- `read_pact` checks a file is Pact V4 JSON and, where pact-python is installed, that
  Pact's own core parses it (`pact_ffi`), so what fire accepts Pact's tools accept; the
  versions report (`fire.contracts.versions`) reads its files this way.
- `read_contract` and `contracts_of` read what the verification (`fire.contracts.verify`)
  and the replay (`fire.contracts.replay`) use: a `Contract` whose interactions are all
  ``Synchronous/HTTP``. A file half understood is refused before anything is verified or
  served: it must not pass as verified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

from ..errors import FireError

__all__ = [
    "SESSION_MARKER",
    "Contract",
    "ContractFileError",
    "ContractInteraction",
    "contract_files",
    "contracts_of",
    "read_contract",
    "read_pact",
]

#: The prefix of a session cookie's recorded value: ``fire:session:<user pk>``.
SESSION_MARKER = "fire:session:"
_HTTP = "Synchronous/HTTP"
#: What a contract file must be, as every refusal says.
EXPECTED = (
    'Pact V4 JSON (an object with "consumer", "provider", "interactions" and '
    '"metadata": {"pactSpecification": {"version": "4.0"}})'
)
#: What the verification and the replay read besides: named parties, HTTP interactions.
_EXPECTED_HTTP = (
    "a Pact V4 contract (JSON with consumer, provider, interactions of type "
    f"{_HTTP!r} and metadata.pactSpecification.version 4.x), as `--fire-contracts` writes"
)


class ContractFileError(FireError):
    """A contract file that is not Pact V4 JSON (or not what fire verifies or replays),
    or a directory of contracts that is not there."""


def contract_files(directory: str | Path) -> list[Path]:
    """The ``*.json`` files of `directory`, sorted; an error if it is not a directory."""
    path = Path(directory)
    if not path.is_dir():
        raise ContractFileError(f"{path}: no such directory of contracts (expected DIR/*.json)")
    return sorted(path.glob("*.json"))


def read_pact(path: str | Path) -> dict[str, Any]:
    """The contract in `path`, checked to be Pact V4; `ContractFileError` otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        pact = json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractFileError(f"{path}: cannot be read ({exc}); expected {EXPECTED}") from None
    except ValueError as exc:
        raise ContractFileError(f"{path}: not JSON ({exc}); expected {EXPECTED}") from None
    if not isinstance(pact, dict) or not all(
        key in pact for key in ("consumer", "provider", "interactions")
    ):
        raise ContractFileError(f"{path}: JSON, but not a Pact file; expected {EXPECTED}")
    metadata = pact.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    specification = metadata.get("pactSpecification") or metadata.get("pact-specification")
    version = specification.get("version") if isinstance(specification, dict) else None
    if not isinstance(version, str) or version.split(".")[0] != "4":
        found = f"version {version}" if version else "no specification version"
        raise ContractFileError(
            f"{path}: a Pact file of {found}, not 4.x; expected {EXPECTED} (record it again "
            "with --fire-contracts, or convert it with Pact's tools)"
        )
    if not isinstance(pact["interactions"], list):
        raise ContractFileError(f"{path}: its interactions are not a list; expected {EXPECTED}")
    _parsed_by_pact(path, text)
    return pact


def _parsed_by_pact(path: Path, text: str) -> None:
    """Pact's own core parses `text` too, where pact-python is installed."""
    try:
        from pact_ffi import ffi, lib
    except ImportError:
        return
    pointer = lib.pactffi_parse_pact_json(text.encode("utf-8"))
    if pointer == ffi.NULL:
        raise ContractFileError(f"{path}: Pact's core cannot parse it; expected {EXPECTED}")
    lib.pactffi_pact_model_delete(pointer)


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
        return ContractFileError(f"{path}: {problem}; expected {_EXPECTED_HTTP}")

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
        files = contract_files(source)
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
