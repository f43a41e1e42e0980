"""What SQL the server sends, seen by the driver itself (tests call this remotely).

djfire sends its own savepoint statements straight to the driver's connection, past
Django's execute wrappers and query log, so the tests watch below Django: sqlite3's
trace callback, or libpq's protocol trace on PostgreSQL.
"""

from __future__ import annotations

import tempfile
from typing import Any

from django.db import connections

_traces: dict[str, Any] = {}


def start(alias: str = "default") -> None:
    """Record every statement sent on `alias` from now on."""
    connection = connections[alias]
    connection.ensure_connection()
    driver = connection.connection
    if connection.vendor == "sqlite":
        statements: list[str] = []
        driver.set_trace_callback(statements.append)
        _traces[alias] = statements
    else:
        log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        driver.pgconn.trace(log.fileno())
        _traces[alias] = log


def stop(alias: str = "default") -> list[str]:
    """The statements (or protocol lines naming them) sent since `start`."""
    driver = connections[alias].connection
    trace = _traces.pop(alias)
    if isinstance(trace, list):
        driver.set_trace_callback(None)
        return trace
    driver.pgconn.untrace()
    trace.seek(0)
    lines = trace.read().decode(errors="replace").splitlines()
    trace.close()
    return [line for line in lines if "\tF\t" in line or " F " in line]
