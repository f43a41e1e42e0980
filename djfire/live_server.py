"""The live HTTP server: the project's WSGI app, threaded, on the shared connections.

Each request holds the shared lock from the app call to the end of the response (when
`request_finished` fires) and runs inside its own savepoint when a test scope is open,
so a failing view rolls back only its own work. Responses, streaming ones included, are
read whole inside the lock for that reason, and sent after it is released. A request
that cannot get the connections in time is answered 503 with the reason.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.core.servers.basehttp import (
    ThreadedWSGIServer,
    WSGIRequestHandler,
    get_internal_wsgi_application,
)

from fire import ServerBusy

from .databases import SharedConnections

__all__ = ["LiveServer"]

#: See `LiveServer.add_listener`.
Observer = Callable[[dict[str, Any]], Callable[[str, list[tuple[str, str]], bytes], None]]

log = logging.getLogger("djfire.http")

#: Seconds between the HTTP thread's looks at whether it must stop (socketserver's
#: default is 0.5): `LiveServer.stop` waits that long at most, and a server stopped by
#: Ctrl-C should not.
_SHUTDOWN_POLL = 0.1


class _Handler(WSGIRequestHandler):
    # Without this a keep-alive request waits ~40 ms for a delayed ACK (Nagle).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class _Server(ThreadedWSGIServer):
    """Django's threaded server, on the shared connections, with its threads reused.

    `ThreadedWSGIServer` starts a thread per connection, and tests open one per request
    (``requests.get``), and starting one costs far more than handing the connection to a
    waiting thread (docs/benchmarks.md, "What changed the figures"). So a connection goes to an
    idle worker when there is one, and to a new worker otherwise: as many threads as
    connections were ever open at once, each a daemon (as Django's are), so a client
    that keeps a connection open never holds up the server's exit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self._idle_workers = 0
        self._workers_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._workers_lock:
            idle = self._idle_workers > 0
            if idle:
                self._idle_workers -= 1
        self._connections.put((request, client_address))
        if not idle:
            threading.Thread(target=self._work, name="djfire-http-worker", daemon=True).start()

    def _work(self) -> None:
        """Serve connections, one at a time, for as long as the process lives."""
        while True:
            request, client_address = self._connections.get()
            try:
                self.process_request_thread(request, client_address)
            finally:
                with self._workers_lock:
                    self._idle_workers += 1

    def _close_connections(self) -> None:
        """Keep the shared connections open: closing them would end the test transaction."""


class LiveServer:
    """Serves the project's WSGI application at host:port in a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        shared: SharedConnections,
        around_request: Callable[[str, Callable[[], list[bytes]], Callable[[], bool]], list[bytes]],
    ) -> None:
        self._shared = shared
        self._around_request = around_request
        application: Any = get_internal_wsgi_application()
        from django.conf import settings

        if "django.contrib.staticfiles" in settings.INSTALLED_APPS:
            from django.contrib.staticfiles.handlers import StaticFilesHandler

            application = StaticFilesHandler(application)
        self._application = application
        self._httpd = _Server((host, port), _Handler, connections_override=shared.every_alias)
        self._httpd.set_app(self._app)
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = _serving(self._httpd, "djfire-http")
        #: The listeners `add_listener` opened, each with its thread.
        self._listeners: list[tuple[_Server, threading.Thread]] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        for httpd, thread in [(self._httpd, self._thread), *self._listeners]:
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)

    def add_listener(self, observer: Observer) -> str:
        """A second listener (a port of its own) serving the same application, whose
        requests `observer` sees (`djfire.contract_recording`); returns its URL.

        `observer` is called with each request's environ under the connections' lock,
        before the application, and what it returns with the response's status,
        headers and body, still under the lock.
        """
        httpd = _Server((self.host, 0), _Handler, connections_override=self._shared.every_alias)
        httpd.set_app(lambda environ, start_response: self._app(environ, start_response, observer))
        thread = _serving(httpd, "djfire-http-recording")
        self._listeners.append((httpd, thread))
        thread.start()
        return f"http://{self.host}:{httpd.server_address[1]}"

    def _app(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        observer: Observer | None = None,
    ) -> Iterable[bytes]:
        status: list[str] = []
        sent_headers: list[Any] = []

        def record_status(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            sent_headers.append(headers)
            return (
                start_response(code, headers, exc_info)
                if exc_info
                else start_response(code, headers)
            )

        def respond() -> list[bytes]:
            finish = _observed(observer, environ) if observer is not None else None
            response = self._application(environ, record_status)
            try:
                body = [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()  # fires request_finished, inside the lock
            if finish is not None and status:
                try:
                    finish(status[-1], list(sent_headers[-1]), body[0])
                except Exception:  # a recording that fails never fails the request
                    log.exception("recording %s failed", what)
            return body

        def failed() -> bool:
            return bool(status) and status[-1][:1] == "5"

        what = f"HTTP {environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '/')}"
        try:
            return self._around_request(what, respond, failed)
        except ServerBusy as exc:
            log.warning("%s answered 503: %s", what, exc)
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")]
            )
            return [f"fire: {exc}\n".encode()]


def _serving(httpd: _Server, name: str) -> threading.Thread:
    """The thread that serves `httpd` until it is shut down."""
    return threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": _SHUTDOWN_POLL},
        name=name,
        daemon=True,
    )


def _observed(observer: Observer, environ: dict[str, Any]) -> Any:
    """What `observer` returns for this request, or None if it failed (logged)."""
    try:
        return observer(environ)
    except Exception:
        log.exception(
            "recording %s %s failed", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        )
        return None
