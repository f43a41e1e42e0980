"""The live HTTP server: the project's WSGI app, threaded, on the shared connections.

Each request holds the shared lock from the app call to the end of the response (when
`request_finished` fires) and runs inside its own savepoint when a test scope is open,
so a failing view rolls back only its own work. Responses, streaming ones included, are
read whole inside the lock for that reason, and sent after it is released. A request
that cannot get the connections in time is answered 503 with the reason.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger("djfire.http")


class _Handler(WSGIRequestHandler):
    # Without this a keep-alive request waits ~40 ms for a delayed ACK (Nagle).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class _Server(ThreadedWSGIServer):
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
        self._httpd = _Server((host, port), _Handler, connections_override=shared.by_alias)
        self._httpd.set_app(self._app)
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="djfire-http", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status: list[str] = []

        def record_status(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return (
                start_response(code, headers, exc_info)
                if exc_info
                else start_response(code, headers)
            )

        def respond() -> list[bytes]:
            response = self._application(environ, record_status)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()  # fires request_finished, inside the lock

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
