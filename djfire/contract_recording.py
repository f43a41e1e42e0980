"""The provider's half of contract recording: a live URL per consumer that records.

`DjangoRemote.live_url_for("shop")`, in a run that records contracts, asks the
provider's server for a second listener of its live HTTP server, tagged ``shop``: the
same WSGI application on the same shared connections, on a port of its own. Each
request that comes in there is recorded at the WSGI layer, whatever HTTP library the
consumer uses, with its response, and with the test's data changes on the provider at
the moment it arrived (`djfire.changes`; read under the connections' lock, in the
request's own transaction). At the test's end the runner labels them with the test
(``contract_label``, sent without waiting for its answer, so a test pays no round trip
for it), and takes every labelled one at the end of its run
(``labelled_contract_interactions``; ``contract_interactions`` takes the unlabelled).
Without recording, ``live_url_for`` is the live URL and nothing is recorded: the plain
listener has no recording code in its path.

Secrets are not kept: the session cookie is recorded as ``fire:session:<user pk>`` (or
``fire:session:anonymous``), which the verification recreates by logging that user in;
other cookies, Authorization and the response's headers but Content-Type are left out.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import io
import logging
import threading
import uuid
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from fire.extensions import Session

    from .isolation import DjangoScopes
    from .live_server import LiveServer

__all__ = ["ContractRecorder", "plain"]

log = logging.getLogger("djfire.contracts")

#: Request headers a contract keeps (besides the session cookie and X-… headers): those
#: that say what the consumer sends and wants; transport and client details are left out.
_KEPT_REQUEST_HEADERS = frozenset(("CONTENT_TYPE", "HTTP_ACCEPT"))
#: What the session cookie becomes when the session is no logged-in user's.
ANONYMOUS = "fire:session:anonymous"

#: What a recording listener calls per request: (environ) -> finish(status, headers, body).
Observer = Callable[[dict[str, Any]], Callable[[str, list[tuple[str, str]], bytes], None]]


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: dates and times ISO 8601, Decimal and UUID as text,
    bytes as base64 (the contract file's rule for the rows of a state)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


class ContractRecorder:
    """The ``live_url_for`` and ``contract_interactions`` operations (a server extension)."""

    name = "contracts"

    def __init__(self, scopes: DjangoScopes, live: LiveServer | None) -> None:
        self.scopes = scopes
        self.live = live
        self._urls: dict[str, str] = {}
        self._recorded: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def operations(self) -> dict[str, Callable[..., Any]]:
        return {
            "live_url_for": self.live_url_for,
            "contract_interactions": self.contract_interactions,
            "contract_label": self.contract_label,
            "labelled_contract_interactions": self.labelled_contract_interactions,
        }

    def info(self) -> dict[str, Any]:
        return {"recording_for": sorted(self._urls)}

    def live_url_for(self, session: Session, consumer: str, record: bool = True) -> str | None:
        """The live URL `consumer` calls this service at: one that records, with `record`."""
        if self.live is None:
            return None
        if not record:
            return self.live.url
        if not consumer:
            raise ValueError(f"a consumer is named by a non-empty str, not {consumer!r}")
        with self._lock:
            url = self._urls.get(consumer)
            if url is None:
                url = self._urls[consumer] = self.live.add_listener(self._observer(consumer))
        return url

    def contract_interactions(self, session: Session) -> list[dict[str, Any]]:
        """The requests recorded since the last call (each consumer's), forgotten now."""
        return [self._stated(item) for item in self._take()]

    def contract_label(self, session: Session, test: str, keep: bool) -> int:
        """The requests recorded since the last label or take are `test`'s: kept for
        `session` with that label (`keep`: the test passed) or dropped; returns how many."""
        recorded = self._take()
        if keep and recorded:
            labelled = session.extension_state.setdefault("contracts_labelled", [])
            labelled.extend([test, item] for item in recorded)
        return len(recorded)

    def labelled_contract_interactions(self, session: Session) -> list[list[Any]]:
        """``[test, interaction]`` for each interaction `session` labelled, forgotten now."""
        labelled: list[list[Any]] = session.extension_state.pop("contracts_labelled", [])
        return [[test, self._stated(item)] for test, item in labelled]

    def _take(self) -> list[dict[str, Any]]:
        """The requests recorded since the last take, their states as fetched."""
        with self._lock:
            recorded, self._recorded = self._recorded, []
        return recorded

    def _stated(self, item: dict[str, Any]) -> dict[str, Any]:
        """`item` with its state's rows decoded and netted (`_state` only fetched them:
        a request waits for the query, not for this), as the contract file holds them."""
        state = item["state"]
        if "fetched" not in state:
            return item
        capture = self.scopes.capture
        assert capture is not None
        databases: dict[str, Any] = {}
        try:
            changes = capture.netted(state["fetched"])
        except Exception as exc:  # rows that cannot be read back: a state without them
            log.warning("the rows of a recorded request could not be read", exc_info=True)
            return {**item, "state": {"databases": {}, "off": f"could not be read: {exc}"}}
        for alias, database in changes.items():
            tables = database.get("tables")
            databases[alias] = {"vendor": database.get("vendor"), "tables": plain(tables or {})}
            if tables is None and database.get("off"):
                databases[alias]["off"] = database["off"]
        return {**item, "state": {"databases": databases}}

    def _observer(self, consumer: str) -> Observer:
        def observe(environ: dict[str, Any]) -> Callable[[str, list[tuple[str, str]], bytes], None]:
            # Under the connections' lock, before the application runs: the rows the
            # test had made when the request came, and whose session it carries.
            request = _request(environ)
            state = self._state()

            def finish(status: str, headers: list[tuple[str, str]], body: bytes) -> None:
                content_type = next(
                    (value for name, value in headers if name.lower() == "content-type"), None
                )
                response = {
                    "status": int(status.split(None, 1)[0]),
                    "contentType": content_type,
                    "body": _text(body),
                }
                interaction = {
                    "consumer": consumer,
                    "request": request,
                    "response": response,
                    "state": state,
                }
                with self._lock:
                    self._recorded.append(interaction)

            return finish

        return observe

    def _state(self) -> dict[str, Any]:
        """The test's data changes now, as fetched (``{"fetched": …}``; `_stated` makes
        them ``{"databases": {alias: {"vendor", "tables"}}}`` once taken), or a state
        without rows that says why."""
        holder = self.scopes.holder
        if holder is None:
            return {"databases": {}}
        try:
            return {"fetched": self.scopes.fetched_changes(holder)}
        except Exception as exc:  # no capturing scope: a state without rows, said why
            return {"databases": {}, "off": str(exc)}


def _request(environ: dict[str, Any]) -> dict[str, Any]:
    """The request as the contract keeps it; its body is read and put back for the app."""
    length = environ.get("CONTENT_LENGTH") or "0"
    body = b""
    if length.isdigit() and int(length) > 0:
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key in _KEPT_REQUEST_HEADERS or (key.startswith("HTTP_X_") and value):
            name = key.removeprefix("HTTP_").replace("_", "-").title()
            headers[name] = value
    if headers.get("Accept") == "*/*":
        del headers["Accept"]  # what every client sends unless told: says nothing
    cookie = _session_cookie(environ.get("HTTP_COOKIE", ""))
    if cookie is not None:
        headers["Cookie"] = cookie
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    path = environ.get("PATH_INFO", "/")
    return {
        "method": environ.get("REQUEST_METHOD", "GET"),
        "path": path.encode("latin-1").decode("utf-8", "replace"),  # PEP 3333's str
        "query": query,
        "headers": headers,
        "contentType": environ.get("CONTENT_TYPE") or None,
        "body": _text(body) if body else None,
    }


def _session_cookie(header: str) -> str | None:
    """``NAME=fire:session:<user pk>`` for the request's session cookie, or None."""
    from django.conf import settings

    try:
        cookies = SimpleCookie(header)
    except CookieError:
        return None
    name = settings.SESSION_COOKIE_NAME
    morsel = cookies.get(name)
    if morsel is None:
        return None
    return f"{name}={_session_user(morsel.value)}"


def _session_user(key: str) -> str:
    """``fire:session:<pk>`` of the user logged in with session `key` (its store, read now)."""
    from importlib import import_module

    from django.conf import settings

    try:
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
        user = store.get("_auth_user_id")
    except Exception:  # no sessions app, a session that cannot be read: nobody
        log.debug("session %s… could not be read", key[:4], exc_info=True)
        return ANONYMOUS
    return ANONYMOUS if user is None else f"fire:session:{user}"


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")
