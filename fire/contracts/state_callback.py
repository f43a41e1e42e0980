"""The HTTP endpoint Pact's verifier calls to set up and tear down each interaction's state.

pact-python serves one itself for a handler function, an `http.server` that writes every
request it answers to stderr (``"POST /_pact/state HTTP/1.1" 200 -``): two lines per
interaction in the middle of Pact's output and fire's report. This is the same endpoint
(Pact's core posts JSON ``state``, ``action`` and ``params``, as pact-python's own asks
it to), silent about the requests it answers; what goes wrong (a request that is not a
state change, a handler that raised) is still written to stderr, and answered with an
error status, which Pact reports.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["StateHandler", "state_callback"]

#: Called with the state's name, ``"setup"`` or ``"teardown"``, and its params.
StateHandler = Callable[[str, str, dict[str, Any] | None], None]
#: Pact's verifier runs in this process: the endpoint listens on loopback only.
_HOST = "127.0.0.1"


@contextmanager
def state_callback(handler: StateHandler) -> Iterator[str]:
    """The URL of an endpoint calling `handler` for each state change, while in the block."""
    server = _StateServer(handler)
    thread = threading.Thread(target=server.serve_forever, name="fire-pact-states", daemon=True)
    thread.start()
    try:
        yield f"http://{_HOST}:{server.server_port}/_pact/state"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


class _StateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: StateHandler) -> None:
        super().__init__((_HOST, 0), _StateRequest)
        self.handler = handler


class _StateRequest(BaseHTTPRequestHandler):
    server: _StateServer

    def do_POST(self) -> None:
        self.close_connection = True
        try:
            change = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            state, action, params = change["state"], change["action"], change.get("params")
        except (ValueError, TypeError, KeyError) as exc:
            self.send_error(400, f"not a provider state change ({type(exc).__name__}: {exc})")
            return
        try:
            self.server.handler(state, action, params)
        except Exception as exc:
            self.send_error(500, f"the state handler of {state!r} raised {exc!r}")
            return
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing for a request answered: `send_error` still logs what went wrong."""
