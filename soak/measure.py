"""What the soak measures of a server: its memory, its open files, the rows it keeps.

Memory and files are read from /proc (Linux), as the kernel counts them, so nothing in
fire can hide a leak from the figures. Rows are counted by one SQL statement sent through
the server *outside* any test scope: there each call runs in its own transaction, which
sees only what was committed, exactly what a leaked test would have left.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["committed_rows", "database_name", "open_files", "resident_kib", "settled_open_files"]

#: Every table of the test database's public schema with its row count, in one statement
#: (query_to_xml runs a count per table without a round trip each).
_COUNT_ROWS = """
SELECT table_name,
       (xpath('/row/n/text()', query_to_xml(
           format('SELECT count(*) AS n FROM %I.%I', table_schema, table_name),
           false, true, '')))[1]::text::bigint
FROM information_schema.tables
WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
ORDER BY table_name
"""


def resident_kib(pid: int) -> int:
    """The process's resident set size (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"/proc/{pid}/status has no VmRSS line (a zombie?)")


def open_files(pid: int) -> dict[str, str]:
    """The process's open file descriptors (sockets, pipes, files): number -> what it is."""
    files = {}
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            files[entry.name] = os.readlink(entry)
        except FileNotFoundError:  # closed while listed
            continue
    return files


def settled_open_files(
    pid: int, like: dict[str, str] | None = None, wait: float = 5.0
) -> dict[str, str]:
    """`open_files` once they settle: read again every 0.1 s, for up to `wait` seconds,
    until two reads show the same descriptors (or, given `like`, those of `like`).

    A server closes a connection its client just closed a moment later, in the thread
    that served it: a single read right after a test may still see it.
    """
    deadline = time.monotonic() + wait
    files = open_files(pid)
    while time.monotonic() < deadline:
        if like is not None and files.keys() == like.keys():
            return files
        time.sleep(0.1)
        previous, files = files, open_files(pid)
        if like is None and files.keys() == previous.keys():
            return files
    return files


def committed_rows(remote: Any) -> dict[str, int]:
    """Table -> rows committed in the server's test database (PostgreSQL).

    `remote` must hold no scope: a call outside any scope runs in a transaction of its
    own, so what it counts is what every other connection would see.
    """
    cursor = remote.module("django.db").connection.cursor()
    try:
        cursor.execute(_COUNT_ROWS)
        return dict(cursor.fetchall())
    finally:
        cursor.close()


def database_name(remote: Any) -> str:
    """The name of the server's test database (its default alias)."""
    return str(remote.module("django.db").connection.settings_dict["NAME"])
