"""Replay a recorded contract as a client's test double: `stub`.

A client's isolated tests point the client at ``stub(...).url`` instead of the real
provider. Each request the contract holds is answered with its recorded response; any
other is answered ``500`` with a message naming the nearest interaction and how the
two differ, and fails the block (`ContractMismatch`) even if the client swallowed the
500. The answers are those the full-system run recorded and the provider verifies, so
no test of the client keeps answers typed by hand.

A request matches an interaction when the method, the path, the query and the
recorded headers are the same (a recorded session cookie, ``fire:session:<pk>``, must
be sent as it is: `ReplayedContract.session` gives it), and the body is, if one was
recorded (JSON compared as data). A path whose numeric or UUID segments differ matches
an interaction by its template (``/api/v2/users/8/`` is ``/api/v2/users/{id}/``) when
no interaction has the very path and every one of that template answers alike.

Standard library only: this runs in client test suites without Django or Pact.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .files import (
    SESSION_MARKER,
    ContractInteraction,
    header_value,
    parse_cookies,
    read_contract,
)
from .shapes import path_template

__all__ = ["ContractMismatch", "ReplayedContract", "stub"]


class ContractMismatch(AssertionError):
    """Requests the contract does not hold were made to its stub."""


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, vs in self.query.items() for v in vs)
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


@dataclass
class ReplayedContract:
    """A contract served on a local port: its `url`, its interactions, what it answered."""

    path: Path
    interactions: list[ContractInteraction]
    url: str = ""
    #: One line per request answered: ``GET /api/session/ -> 200 (description)``.
    answered: list[str] = field(default_factory=list)
    #: Why each request the contract does not hold was refused.
    refused: list[str] = field(default_factory=list)

    def find(self, method: str, template: str, status: int | None = None) -> ContractInteraction:
        """The interaction of `method` and path `template` (``/api/v2/users/{id}/``), and
        `status` if given; the client test reads its recorded path, body or session."""
        found = [
            i
            for i in self.interactions
            if i.method == method.upper()
            and path_template(i.path) == template
            and (status is None or i.status == status)
        ]
        if len(found) != 1:
            shown = ", ".join(f"{i.method} {i.path} -> {i.status}" for i in self.interactions)
            raise LookupError(
                f"{len(found)} interactions of {self.path} are {method} {template}"
                f"{f' answered {status}' if status is not None else ''} (it holds: {shown})"
            )
        return found[0]

    @staticmethod
    def session(interaction: ContractInteraction) -> str:
        """The session cookie value `interaction` was recorded with (``fire:session:7``)."""
        markers = interaction.session_markers
        if not markers:
            raise LookupError(f"{interaction.description} was recorded without a session")
        return markers[0]

    def answer(self, request: _Request) -> tuple[int, dict[str, str], bytes]:
        """The recorded response to `request`, or a 500 that names the nearest."""
        exact, by_template = [], []
        for interaction in self.interactions:
            differences = _differences(interaction, request)
            if not differences:
                exact.append(interaction)
            elif differences == ["path"]:
                by_template.append(interaction)
        chosen = exact[0] if exact else None
        if chosen is None and by_template:
            if len({(i.status, json.dumps(i.body, sort_keys=True)) for i in by_template}) == 1:
                chosen = by_template[0]
            else:
                paths = ", ".join(f"{i.path} ({i.status})" for i in by_template)
                return self._refuse(
                    f"{request.describe()} matches {len(by_template)} interactions of "
                    f"{self.path} by its path's template, which answer differently: ask for "
                    f"one of their recorded paths: {paths}"
                )
        if chosen is None:
            return self._refuse(self._nearest(request))
        self.answered.append(f"{request.describe()} -> {chosen.status} ({chosen.description})")
        return _response(chosen)

    def _nearest(self, request: _Request) -> str:
        said = f"{self.path} holds no interaction for {request.describe()}"
        if not self.interactions:
            return said
        scored = [(_distance(i, request), i) for i in self.interactions]
        _, nearest = min(scored, key=lambda pair: pair[0])
        how = "; ".join(_explained(nearest, request))
        return f"{said}; the nearest is {nearest.description!r}: {how}"

    def _refuse(self, message: str) -> tuple[int, dict[str, str], bytes]:
        self.refused.append(message)
        body = json.dumps({"error": message}).encode()
        return 500, {"Content-Type": "application/json"}, body

    def check(self) -> None:
        """Raise `ContractMismatch` listing the refused requests, if there were any."""
        if self.refused:
            raise ContractMismatch(
                "requests the contract does not hold:\n" + "\n".join(f"- {r}" for r in self.refused)
            )


def _differences(interaction: ContractInteraction, request: _Request) -> list[str]:
    """What of `request` differs from `interaction` ("path" alone: by template it matches)."""
    differences = []
    if interaction.method != request.method:
        differences.append("method")
    if interaction.path != request.path:
        same_shape = path_template(interaction.path) == path_template(request.path)
        differences.append("path" if same_shape else "path template")
    if _query(interaction) != request.query:
        differences.append("query")
    for name, value in (interaction.request.get("headers") or {}).items():
        expected = ", ".join(value) if isinstance(value, list) else str(value)
        sent = request.headers.get(name.lower())
        if name.lower() == "cookie":
            cookies = parse_cookies(sent or "")
            wanted = parse_cookies(expected)
            if any(cookies.get(k) != v for k, v in wanted.items()):
                differences.append("cookie")
        elif sent != expected:
            differences.append(f"header {name}")
    if _body_differs(interaction, request):
        differences.append("body")
    return differences


def _distance(interaction: ContractInteraction, request: _Request) -> int:
    """How far `request` is from `interaction`: the method counts most, then each
    path segment that differs, then anything else."""
    weights = {"method": 20, "path template": 0, "path": 0}
    distance = sum(weights.get(d, 2) for d in _differences(interaction, request))
    mine, theirs = request.path.split("/"), interaction.path.split("/")
    distance += 3 * abs(len(mine) - len(theirs))
    for a, b in zip(mine, theirs, strict=False):
        if a != b:
            distance += 1 if path_template(a) == path_template(b) else 3
    return distance


def _explained(interaction: ContractInteraction, request: _Request) -> list[str]:
    explained = []
    for difference in _differences(interaction, request):
        if difference == "method":
            explained.append(f"method {request.method}, the contract's {interaction.method}")
        elif difference.startswith("path"):
            explained.append(f"path {request.path}, the contract's {interaction.path}")
        elif difference == "query":
            explained.append(f"query {request.query}, the contract's {_query(interaction)}")
        elif difference == "cookie":
            wanted = header_value(interaction.request.get("headers"), "Cookie")
            sent = request.headers.get("cookie")
            hint = ""
            if wanted and SESSION_MARKER in wanted:
                hint = " (send the recorded session: ReplayedContract.session(interaction))"
            explained.append(f"cookies {sent!r}, the contract's {wanted!r}{hint}")
        elif difference == "body":
            explained.append(
                f"body {request.body.decode(errors='replace')!r}, the contract's "
                f"{_request_body(interaction)!r}"
            )
        else:
            name = difference.removeprefix("header ")
            expected = header_value(interaction.request.get("headers"), name)
            explained.append(
                f"header {name} {request.headers.get(name.lower())!r}, the contract's {expected!r}"
            )
    return explained


def _query(interaction: ContractInteraction) -> dict[str, list[str]]:
    query = interaction.request.get("query") or {}
    if isinstance(query, str):
        return parse_qs(query, keep_blank_values=True)
    return {k: v if isinstance(v, list) else [str(v)] for k, v in query.items()}


def _request_body(interaction: ContractInteraction) -> Any:
    body = interaction.request.get("body")
    return body.get("content") if isinstance(body, dict) else body


def _body_differs(interaction: ContractInteraction, request: _Request) -> bool:
    expected = _request_body(interaction)
    if expected is None:
        return False
    if isinstance(expected, dict | list):
        try:
            return bool(json.loads(request.body or b"null") != expected)
        except ValueError:
            return True
    return request.body.decode(errors="replace") != str(expected)


def _response(interaction: ContractInteraction) -> tuple[int, dict[str, str], bytes]:
    response = interaction.response
    headers = {
        name: ", ".join(v) if isinstance(v, list) else str(v)
        for name, v in (response.get("headers") or {}).items()
    }
    content = interaction.body
    if content is None:
        body = b""
    elif isinstance(content, str):
        body = content.encode()
    else:
        body = json.dumps(content).encode()
        headers.setdefault("Content-Type", "application/json")
    return interaction.status, headers, body


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = _Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        with self.server.lock:
            status, headers, body = self.server.contract.answer(request)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # what it answered is in ReplayedContract.answered


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, contract: ReplayedContract) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.contract = contract
        self.lock = threading.Lock()


class stub:  # used as a function: `with stub(path) as accounts:`
    """Serve the contract in `path` on a local port, for the block.

    ``with stub("contracts/shop-accounts.json") as accounts:`` — ``accounts.url`` is
    the provider's base URL; at the end of the block, a request the contract did not
    hold fails it (`ContractMismatch`), unless the block failed already.
    """

    def __init__(self, path: str | Path) -> None:
        contract = read_contract(path)
        self.contract = ReplayedContract(Path(path), contract.interactions)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ReplayedContract:
        self._server = _Server(self.contract)
        self.contract.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.01,),  # how long `shutdown` waits, at most
            name=f"fire stub {self.contract.path.name}",
        )
        self._thread.daemon = True
        self._thread.start()
        return self.contract

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        if error is None:
            self.contract.check()
        elif self.contract.refused:
            error.add_note("fire stub: " + "; ".join(self.contract.refused))

    def __iter__(self) -> Iterator[ReplayedContract]:
        """As a pytest fixture's body: ``yield from stub(path)``."""
        with self as contract:
            yield contract
