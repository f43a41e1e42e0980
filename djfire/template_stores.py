"""Where migrated templates live, and the locks that let one server build while the others wait.

- SQLite: files in the project's template cache directory (`cache_dir`): ``ALIAS-KEY.sqlite3``
  with ``ALIAS-KEY.json`` beside it, written last, holding the file's size and SHA-256. A
  build writes ``….partial`` first and renames it, so a build killed half-way leaves a
  ``.partial`` file or a database without its record: never a template that looks good.
  The lock is an ``flock`` on ``ALIAS-KEY.lock`` (shared to clone, exclusive to build).
- PostgreSQL: a database ``<test database>_tpl_<key>`` (never a real database's name, and
  not a test database's: `TemplateNameClash`), commented ``djfire template …`` once it is
  complete. The lock is a session-level advisory lock on the maintenance database (shared
  to clone, exclusive to build or drop), so an old template is never dropped while a
  server clones it.
  Spares: after a server is ready it copies the template into a spare database
  ``<template>_s<hex>`` (commented ``djfire spare …`` once complete, under the shared
  lock), and the next start takes one by renaming it to its test database, an instant
  ``ALTER DATABASE … RENAME`` instead of copying the template. The rename is atomic: of
  two starts renaming one spare, one gets it, the other finds it gone and takes another
  or clones. A spare's name holds its template's, so the key: a spare of an old key is
  never taken, and goes with its template (`discard`, `prune`).

The operating system or PostgreSQL releases a lock when its process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import socket
import sqlite3
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from .ownership import SQLITE_APPLICATION_ID

__all__ = [
    "CACHE_VARIABLE",
    "KEEP",
    "Cancellation",
    "Found",
    "PostgresTemplate",
    "SqliteTemplate",
    "cache_dir",
    "drop_unfinished_spares",
]

#: The environment variable (and Django setting) naming the template cache directory.
CACHE_VARIABLE = "DJFIRE_TEMPLATE_DIR"
#: How many templates of one alias (one test database) are kept: the newest.
KEEP = 3
#: SQLite templates unused for this long are removed by the next build.
MAX_UNUSED_SECONDS = 14 * 24 * 3600
#: The start of a PostgreSQL template's comment, once it is complete.
PG_MARK = "djfire template"
#: The start of a PostgreSQL spare's comment, once it is complete.
SPARE_MARK = "djfire spare"
#: At most this many spares of one template are kept ready (one per xdist worker of
#: ``-n 4``); the environment variable (then setting) ``DJFIRE_TEMPLATE_SPARES`` sets it,
#: 0 makes none (those there are still taken).
SPARES = 4
SPARES_VARIABLE = "DJFIRE_TEMPLATE_SPARES"
#: The SQLSTATEs of a spare taken meanwhile by another start (gone) or connected to.
_SPARE_GONE = {"3D000", "55006"}
#: The first key of the templates' advisory locks ("dt"), apart from the claims' ("df").
_LOCK_NAMESPACE = 0x6474


def cache_dir() -> Path:
    """The template cache directory: ``DJFIRE_TEMPLATE_DIR`` (environment, then setting),
    else ``.djfire_cache/templates`` beside manage.py (the working directory otherwise)."""
    from django.conf import settings

    chosen = os.environ.get(CACHE_VARIABLE) or getattr(settings, CACHE_VARIABLE, None)
    if chosen:
        return Path(chosen).expanduser().resolve()
    script = Path(sys.argv[0])
    base = script.resolve().parent if script.name == "manage.py" else Path.cwd()
    return base / ".djfire_cache" / "templates"


def spares_kept() -> int:
    """How many spares of a template to keep ready: `SPARES_VARIABLE`, else `SPARES`."""
    from django.conf import settings

    chosen = os.environ.get(SPARES_VARIABLE) or getattr(settings, SPARES_VARIABLE, None)
    try:
        return max(0, int(chosen)) if chosen not in (None, "") else SPARES
    except ValueError:
        raise CommandError(
            f"{SPARES_VARIABLE} must be a whole number of spares (0 for none), not {chosen!r}"
        ) from None


@dataclass(frozen=True)
class Found:
    """A template that is there and complete: how old, and its file or database name."""

    built_at: float
    where: str


class SqliteTemplate:
    """One alias's template file for one key."""

    def __init__(self, directory: Path, alias: str, key: str) -> None:
        self.directory = directory
        self.stem = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', alias)}-{key[:16]}"
        self.path = directory / f"{self.stem}.sqlite3"
        self.record = directory / f"{self.stem}.json"
        self.partial = directory / f"{self.stem}.sqlite3.partial"

    @property
    def name(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def locked(self, *, exclusive: bool) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / f"{self.stem}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield  # closing the file releases the lock

    def find(self) -> tuple[Found | None, str | None]:
        """The complete template, or None and why an incomplete one is not used (None: there
        is none)."""
        if self.partial.exists():
            return None, "a build of it was interrupted (a partial file was left)"
        if not self.path.exists():
            return None, ("its file is gone" if self.record.exists() else None)
        try:
            record = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None, "it has no completion record (its build was interrupted)"
        data = self.path.read_bytes()
        if len(data) != record.get("size") or _digest(data) != record.get("sha256"):
            return None, "its checksum does not match (a truncated or corrupt file)"
        return Found(float(record["built_at"]), self.name), None

    def discard(self) -> None:
        for path in (self.record, self.path, self.partial):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def publish(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """Write the template with `write` (a backup into the connection given), then its
        record: the template counts only once both are in place."""
        self.discard()
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(self.partial)) as target:
            write(target)
            target.execute(f"PRAGMA application_id = {SQLITE_APPLICATION_ID}")
            target.commit()
        with open(self.partial, "rb+") as file:
            os.fsync(file.fileno())
        data = self.partial.read_bytes()
        os.replace(self.partial, self.path)
        record = {"size": len(data), "sha256": _digest(data), "built_at": time.time()}
        temporary = self.record.with_suffix(".json.partial")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, self.record)

    def clone_into(self, target: sqlite3.Connection) -> None:
        """Copy the template into `target` (an open test database) with the backup API."""
        os.utime(self.path)  # last used: what the pruning goes by
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as source:
            source.backup(target)

    def prune(self) -> list[str]:
        """Remove this alias's other templates beyond the newest `KEEP`, and those unused
        for `MAX_UNUSED_SECONDS`, skipping any being cloned or built. Returns them."""
        alias = self.stem.rpartition("-")[0]
        others = sorted(
            (p for p in self.directory.glob(f"{alias}-*.sqlite3") if p != self.path),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        removed = []
        now = time.time()
        for rank, path in enumerate(others, start=2):  # this one is the first kept
            if rank <= KEEP and now - path.stat().st_mtime < MAX_UNUSED_SECONDS:
                continue
            other = SqliteTemplate(self.directory, alias, path.stem.rpartition("-")[2])
            lock_path = self.directory / f"{other.stem}.lock"
            with open(lock_path, "a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # in use right now
                other.discard()  # the lock file stays: a server may be waiting on it
            removed.append(path.name)
        return removed


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TemplateNameClash(CommandError):
    """A template's name is a real database's, or a database not made as a template."""


class PostgresTemplate:
    """One alias's template database for one key, on the alias's PostgreSQL server."""

    def __init__(self, connection: Any, base: str, key: str) -> None:
        self.connection = connection
        self.base = base[:40]
        self.name = f"{self.base}_tpl_{key[:12]}"
        #: The connection holding the template's lock, while it is held (`_session`).
        self._holding: Any = None

    def _admin(self) -> Any:
        params = self.connection.get_connection_params()
        params.update(dbname="postgres", application_name=f"djfire template pid {os.getpid()}")
        conn = self.connection.Database.connect(**params)
        conn.autocommit = True
        return conn

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """A connection to the maintenance database: the lock's own while it is held,
        else a new one. A clone asks two questions under the lock, and each connect is
        5-25 ms of a start on this machine's PostgreSQL."""
        if self._holding is not None:
            yield self._holding
            return
        with contextlib.closing(self._admin()) as conn:
            yield conn

    @contextlib.contextmanager
    def _holding_lock(self, conn: Any) -> Iterator[None]:
        self._holding = conn
        try:
            yield
        finally:
            self._holding = None

    @contextlib.contextmanager
    def locked(self, *, exclusive: bool) -> Iterator[None]:
        """Held on a connection of its own: PostgreSQL releases it if this process dies."""
        key = zlib.crc32(self.name.encode()) & 0x7FFFFFFF
        with contextlib.closing(self._admin()) as conn, self._holding_lock(conn):
            function = "pg_advisory_lock" if exclusive else "pg_advisory_lock_shared"
            conn.execute(f"SELECT {function}(%s, %s)", (_LOCK_NAMESPACE, key))
            yield

    @contextlib.contextmanager
    def shared_if_free(self) -> Iterator[bool]:
        """The shared lock if no server builds or drops the template now (True), without
        waiting: a spare is not worth a server's stop waiting for a build."""
        key = zlib.crc32(self.name.encode()) & 0x7FFFFFFF
        with contextlib.closing(self._admin()) as conn, self._holding_lock(conn):
            got = conn.execute(
                "SELECT pg_try_advisory_lock_shared(%s, %s)", (_LOCK_NAMESPACE, key)
            ).fetchone()[0]
            yield bool(got)

    def _comment(self) -> tuple[bool, str | None]:
        with self._session() as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
                "WHERE datname = %s",
                [self.name],
            ).fetchone()
        return (row is not None), (row[0] if row else None)

    def find(self) -> tuple[Found | None, str | None]:
        exists, comment = self._comment()
        if not exists:
            return None, None
        if not (comment or "").startswith(PG_MARK):
            raise TemplateNameClash(
                f"the PostgreSQL database {self.name!r} exists and was not made by a fire "
                "server as a template (it has no 'djfire template' comment); runfireserver "
                "never drops a database it did not make. If it is a leftover, drop it "
                f'yourself (`DROP DATABASE "{self.name}"`)'
            )
        match = re.search(r"built_at=([0-9.]+)", comment or "")
        return Found(float(match.group(1)) if match else time.time(), self.name), None

    def discard(self) -> None:
        """Drop it (only ever one a fire server made: `find` refuses any other), and its
        spares."""
        with self._session() as conn:
            for spare in _spares_of(conn, self.name, complete=False):
                with contextlib.suppress(Exception):  # connected to by hand: left
                    conn.execute(f"DROP DATABASE {self._quoted(spare)}")
            conn.execute(f"DROP DATABASE IF EXISTS {self._quoted(self.name)}")

    def spares(self) -> list[str]:
        """This template's complete spares (the key is in their names)."""
        with self._session() as conn:
            return _spares_of(conn, self.name, complete=True)

    def make_spare(self, cancellation: Cancellation) -> str | None:
        """Copy the template into a new spare (called under the shared lock, so the
        template is not dropped meanwhile), unless `SPARES` are ready. Returns its name.

        The copy is written to disk as it is made (PostgreSQL 15's ``STRATEGY =
        FILE_COPY``; the older ones' only way): copied through the shared buffers (15's
        default), the spare's pages were left for the next checkpoint, which the next
        ``DROP DATABASE`` waits for, that of a server stopped by Ctrl-C: 3-5 s of
        ``fsync`` of 4 spares' 1,400 files on a loaded machine. The copy can be cut
        short (`Cancellation`): PostgreSQL then removes what it made; a spare copied
        but not marked complete is dropped.
        """
        with self._session() as conn:
            if len(_spares_of(conn, self.name, complete=False)) >= spares_kept():
                return None
            spare = f"{self.name}_s{secrets.token_hex(2)}"
            strategy = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
            with cancellation.running(conn):
                conn.execute(
                    f"CREATE DATABASE {self._quoted(spare)} TEMPLATE {self._quoted(self.name)}"
                    + strategy
                )
            who = f"runfireserver pid {os.getpid()} on {socket.gethostname()}"
            text = f"{SPARE_MARK} of {self.name}, made by {who}".replace("'", "''")
            try:
                conn.execute(f"COMMENT ON DATABASE {self._quoted(spare)} IS '{text}'")
            except Exception:  # cancelled late: never left unmarked
                with contextlib.suppress(Exception):
                    conn.execute(f"DROP DATABASE {self._quoted(spare)}")
                raise
        return spare

    def take_spare(self, cursor: Any, target: str) -> bool:
        """Rename a complete spare to `target` (quoted) on `cursor`; False: none left.

        Raises what renaming onto an existing `target` raises (Django's set-up then drops
        that old test database and asks again)."""
        for spare in self.spares():
            try:
                cursor.execute(f"ALTER DATABASE {self._quoted(spare)} RENAME TO {target}")
            except Exception as exc:
                if _sqlstate(exc) in _SPARE_GONE:
                    continue  # another start took it first
                raise
            return True
        return False

    def publish(self, source: str) -> None:
        """Copy the migrated test database `source` (no one connected) into the template,
        then mark it complete."""
        self.discard()
        with self._session() as conn:
            conn.execute(
                f"CREATE DATABASE {self._quoted(self.name)} TEMPLATE {self._quoted(source)}"
            )
            text = f"{PG_MARK} of {self.base}, complete, built_at={time.time():.3f}"
            conn.execute(f"COMMENT ON DATABASE {self._quoted(self.name)} IS '{text}'")

    def prune(self) -> list[str]:
        """Drop this base's other complete templates beyond the newest `KEEP`, skipping any
        a server clones now (the exclusive lock is not granted then)."""
        with contextlib.closing(self._admin()) as conn:
            rows = conn.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
                "WHERE datname LIKE %s AND datname <> %s",
                [self.base.replace("_", r"\_") + r"\_tpl\_%", self.name],
            ).fetchall()
        built = []
        for name, comment in rows:
            if not (comment or "").startswith(PG_MARK):
                continue  # not a complete template of ours: never touched here
            match = re.search(r"built_at=([0-9.]+)", comment)
            built.append((float(match.group(1)) if match else 0.0, name))
        removed = []
        for _, name in sorted(built, reverse=True)[KEEP - 1 :]:
            key = zlib.crc32(name.encode()) & 0x7FFFFFFF
            with contextlib.closing(self._admin()) as conn:
                got = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_NAMESPACE, key)
                ).fetchone()[0]
                if not got:
                    continue
                for spare in _spares_of(conn, name, complete=False):
                    with contextlib.suppress(Exception):
                        conn.execute(f"DROP DATABASE {self._quoted(spare)}")
                with contextlib.suppress(Exception):  # connected to by hand: left for later
                    conn.execute(f"DROP DATABASE {self._quoted(name)}")
                    removed.append(name)
        return removed

    def _quoted(self, name: str) -> str:
        return str(self.connection.ops.quote_name(name))


class Cancellation:
    """Lets a stopping server cut short the spare a thread copies now (`cancel`), and
    any it would copy next: the copy's statement is cancelled from the calling thread
    (the database driver's ``cancel``, on a connection of its own)."""

    def __init__(self) -> None:
        # Re-entrant: a signal handler may cancel while its thread is inside `cancel`.
        self._lock = threading.RLock()
        self._running: Any = None
        self.cancelled = False

    @contextlib.contextmanager
    def running(self, conn: Any) -> Iterator[None]:
        """While `conn` runs the copy, `cancel` cancels it (raises if cancelled already)."""
        with self._lock:
            if self.cancelled:
                raise SpareCancelled("the server stops")
            self._running = conn
        try:
            yield
        finally:
            with self._lock:
                self._running = None

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._running is not None:
                self._running.cancel()


class SpareCancelled(Exception):
    """A spare's copy was not started: its server stops."""


def spare_pattern(template: str) -> str:
    """The LIKE pattern of `template`'s spares' names (also a pattern: ``%``)."""
    return template.replace("_", r"\_") + r"\_s____"


def _spares_of(conn: Any, template: str, *, complete: bool) -> list[str]:
    rows = conn.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
        "WHERE datname LIKE %s ORDER BY datname",
        [spare_pattern(template)],
    ).fetchall()
    return [
        name for name, comment in rows if not complete or (comment or "").startswith(SPARE_MARK)
    ]


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg error, or of the one a Django error wraps."""
    for error in (exc, exc.__cause__):
        code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if code:
            return str(code)
    return None


def drop_unfinished_spares(connection: Any, base: str) -> list[str]:
    """Drop the spares of `base`'s templates that a server died making (no spare mark:
    a ``CREATE DATABASE`` its dead client never commented), and those whose template is
    gone; never while a server holds the template's lock (one may be commenting its
    spare now). Complete spares stay: they are the next start's. Returns those dropped."""
    any_template = PostgresTemplate(connection, base, "")
    pattern = any_template.base.replace("_", r"\_") + r"\_tpl\_%\_s____"
    dropped = []
    with contextlib.closing(any_template._admin()) as conn:
        rows = conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database "
            "WHERE datname LIKE %s",
            [pattern],
        ).fetchall()
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_catalog.pg_database")}
        for name, comment in rows:
            template = name[: -len("_s____")]
            if (comment or "").startswith(SPARE_MARK) and template in existing:
                continue
            key = zlib.crc32(template.encode()) & 0x7FFFFFFF
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_NAMESPACE, key))
            if not got.fetchone()[0]:
                continue
            try:
                conn.execute(f"DROP DATABASE {any_template._quoted(name)}")
                dropped.append(name)
            except Exception:  # connected to by hand: left for later
                pass
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_NAMESPACE, key))
    return dropped
