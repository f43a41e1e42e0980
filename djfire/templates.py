"""Migrate once, clone everywhere: test databases made from a migrated template.

Django's ``migrate`` of a large project takes seconds to minutes, nearly all of it the
executor rendering model states, and every server paid it at every start: each xdist
worker, each ``:suffix=`` job, each run. Here the first server to need a schema migrates
its test database as Django does, then saves a copy as a template; every later server of
that schema clones the template instead of migrating (Django's ``--parallel`` runner
clones the same way):

- SQLite: a file in the template cache directory, loaded into the in-memory test
  database with SQLite's backup API, or copied into a file test database by it;
- PostgreSQL: a template database, cloned with ``CREATE DATABASE … TEMPLATE``;
- other backends, and a database kept by ``--keepdb`` that exists: as before.

A template is keyed by what shapes the schema (`djfire.template_key`), so a changed
migration, model, Django or PostgreSQL builds a new one: never a stale schema. The
clone holds everything the migrations made, data migrations' rows, content types and
permissions among them, since the template *is* a migrated test database.

Four servers starting at once build one template: each takes the template's lock
(`djfire.template_stores`: shared to clone, exclusive to build), and the ones that find
no template wait for the builder, then clone. ``--rebuild-db`` rebuilds a template built
before this server started (a sibling's fresh rebuild is cloned), and drops its spares.

PostgreSQL's ``CREATE DATABASE … TEMPLATE`` copies the whole template (1.4-1.9 s for the
18 MB of a 300-model project): so once a server is ready it copies the template into a
spare in the background (`make_spares`), and the next start with the same key renames a
spare to its test database instead (`djfire.template_stores`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections

from .template_key import template_key
from .template_stores import (
    CACHE_VARIABLE,
    Cancellation,
    Found,
    PostgresTemplate,
    SqliteTemplate,
    cache_dir,
)

__all__ = ["Spares", "TemplateUse", "Templates", "ages"]


@dataclass(frozen=True)
class TemplateUse:
    """How one alias's test database was made: ``cloned``, ``spare`` (a PostgreSQL
    template's spare copy renamed), ``built`` (and saved as a template) or ``migrated``
    (no template: its directory is not writable), in `seconds`;
    `age`: how old the cloned template was (seconds)."""

    alias: str
    how: str
    seconds: float
    age: float | None = None

    def describe(self) -> str:
        if self.how == "cloned":
            age = ages(self.age or 0.0)
            return f"{self.alias} cloned ({age} old template) in {self.seconds:.2f} s"
        if self.how == "spare":
            age = ages(self.age or 0.0)
            return f"{self.alias} taken from a spare ({age} old template) in {self.seconds:.2f} s"
        if self.how == "migrated":
            return f"{self.alias} migrated in {self.seconds:.1f} s (no template)"
        return f"{self.alias} migrated in {self.seconds:.1f} s and saved as a template"


def ages(seconds: float) -> str:
    """A template's age for people: 12 s, 5 min, 3 h, 2 days."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


class Templates:
    """While Django's ``setup_databases`` runs (`installed`), make each of `aliases`' test
    databases from its template, building the template first where there is none.

    `bases` is each alias's test database name without the worker's suffix (a PostgreSQL
    template is named after it, so all workers share it); `say` gets one line for each
    template that is there but cannot be used (interrupted build, corrupt), and for each
    old one removed.
    """

    def __init__(
        self,
        aliases: list[str],
        bases: dict[str, str],
        *,
        rebuild: bool,
        say: Callable[[str], object],
    ) -> None:
        self.aliases = aliases
        self.bases = bases
        self.rebuild = rebuild
        self.say = say
        self.started = time.time()
        self.uses: dict[str, TemplateUse] = {}
        self.stores: dict[str, PostgresTemplate] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        patched = []
        try:
            for alias in self.aliases:
                creation = connections[alias].creation
                original = creation.create_test_db
                creation.create_test_db = functools.partial(self._create, alias, original)
                patched.append(creation)
            yield
        finally:
            for creation in patched:
                del creation.create_test_db

    def summary(self) -> str | None:
        """For the ready line: ``default cloned (5 min old template) in 0.04 s, …``."""
        if not self.uses:
            return None
        return ", ".join(use.describe() for use in self.uses.values())

    def make_spares(self) -> Spares | None:
        """Start copying each PostgreSQL template this server used into a spare for the
        next start, in a thread (off the start-up's path); join it before the teardown,
        or cancel it first (Ctrl-C: the spare is not worth the wait). What fails is said
        in one line, and the next start clones as before."""
        stores = list(self.stores.items())
        if not stores:
            return None
        cancellation = Cancellation()

        def make() -> None:
            for alias, store in stores:
                try:
                    with store.shared_if_free() as free:
                        if free and store.find()[0] is not None:
                            store.make_spare(cancellation)
                except Exception as exc:
                    if cancellation.cancelled:
                        return  # the server stops: nothing to say
                    self.say(f"no spare of the template of database alias {alias!r}: {exc}")

        thread = threading.Thread(target=make, name="djfire spare template", daemon=True)
        thread.start()
        return Spares(thread, cancellation)

    def _store(self, alias: str, key: str) -> SqliteTemplate | PostgresTemplate:
        connection = connections[alias]
        if connection.vendor == "postgresql":
            store = PostgresTemplate(connection, self.bases[alias], key)
            _refuse_real_name(alias, store.name)
            return store
        sqlite = SqliteTemplate(cache_dir(), alias, key)
        _refuse_real_name(alias, sqlite.name)
        return sqlite

    def _create(
        self,
        alias: str,
        original: Callable[..., str],
        verbosity: int = 1,
        autoclobber: bool = False,
        serialize: bool | None = None,
        keepdb: bool = False,
    ) -> str:
        """Django's ``create_test_db`` for `alias`: clone its template, or build one.

        `serialize` is passed on only when the caller gave it: Django 6.0 deprecates it
        (a warning, an error where warnings are), and its own ``setup_databases`` no
        longer gives it.
        """
        started = time.monotonic()
        given = {} if serialize is None else {"serialize": serialize}
        original = functools.partial(original, verbosity, autoclobber, keepdb=keepdb, **given)
        unwritable = _unwritable(cache_dir())
        if unwritable is not None:  # a read-only checkout: migrate, as without templates
            self.say(
                f"no template for database alias {alias!r}: {unwritable}; migrating it. Set "
                f"{CACHE_VARIABLE} (environment or settings) to a directory this server may write"
            )
            name = original()
            self.uses[alias] = TemplateUse(alias, "migrated", time.monotonic() - started)
            return name
        store = self._store(alias, template_key(alias))
        clone = functools.partial(self._cloned, alias, store, started=started, verbosity=verbosity)
        clone = functools.partial(clone, autoclobber=autoclobber, keepdb=keepdb)
        if not self.rebuild:
            with store.locked(exclusive=False):
                found, _ = store.find()
                if found is not None:
                    return clone(found)
        with store.locked(exclusive=True):  # one builds; the others wait here, then clone
            found, why = store.find()
            if found is not None and not (self.rebuild and found.built_at < self.started):
                return clone(found)
            building = _BuildMark(store.name)
            if found is not None:
                why = "--rebuild-db"
            why = building.left() or why
            if why is not None:
                self.say(
                    f"template of database alias {alias!r} ({store.name}) not used: {why}; "
                    "rebuilding it"
                )
            store.discard()
            with building, _naming_failed_migration(alias):
                name = original()
                self._publish(alias, store, name)
            self.uses[alias] = TemplateUse(alias, "built", time.monotonic() - started)
            if isinstance(store, PostgresTemplate):
                self.stores[alias] = store
            for removed in store.prune():
                self.say(f"removed the old template {removed} of database alias {alias!r}")
            return name

    def _publish(self, alias: str, store: SqliteTemplate | PostgresTemplate, name: str) -> None:
        connection = connections[alias]
        if isinstance(store, PostgresTemplate):
            connection.close()  # CREATE DATABASE … TEMPLATE needs it unconnected
            store.publish(name)
            return
        connection.ensure_connection()
        store.publish(lambda target: connection.connection.backup(target))

    def _cloned(
        self,
        alias: str,
        store: SqliteTemplate | PostgresTemplate,
        found: Found,
        *,
        started: float,
        verbosity: int,
        autoclobber: bool,
        keepdb: bool,
    ) -> str:
        connection = connections[alias]
        creation = connection.creation
        name = creation._get_test_db_name()
        if verbosity >= 1:
            shown = creation._get_database_display_str(verbosity, name)
            creation.log(f"Cloning test database for alias {shown} from template {store.name}...")
        how = "cloned"
        if isinstance(store, PostgresTemplate):
            self.stores[alias] = store
            test = connection.settings_dict.setdefault("TEST", {})
            before = test.get("TEMPLATE")
            test["TEMPLATE"] = store.name
            execute = creation._execute_create_test_db

            def create_or_take_spare(
                cursor: Any, parameters: dict[str, str], keepdb: bool = False
            ) -> None:
                nonlocal how
                if not keepdb and store.take_spare(cursor, parameters["dbname"]):
                    how = "spare"
                    return
                execute(cursor, parameters, keepdb)

            creation._execute_create_test_db = create_or_take_spare
            try:
                creation._create_test_db(verbosity, autoclobber, keepdb)
            finally:
                test["TEMPLATE"] = before
                del creation._execute_create_test_db
        else:
            creation._create_test_db(verbosity, autoclobber, keepdb)
        connection.close()
        settings.DATABASES[alias]["NAME"] = name
        connection.settings_dict["NAME"] = name
        connection.ensure_connection()
        if isinstance(store, SqliteTemplate):
            store.clone_into(connection.connection)
        self.uses[alias] = TemplateUse(
            alias, how, time.monotonic() - started, time.time() - found.built_at
        )
        return str(name)


@dataclass(frozen=True)
class Spares:
    """The spares a server copies in the background (`Templates.make_spares`)."""

    thread: threading.Thread
    cancellation: Cancellation

    def cancel(self) -> None:
        """Cut the copy short (safe from a signal handler); `join` then returns soon."""
        self.cancellation.cancel()

    def join(self) -> None:
        self.thread.join()


class _BuildMark:
    """A file in the cache directory while a template is built (under its exclusive lock),
    saying who builds it: one found by the next builder was left by a build that died."""

    def __init__(self, template: str) -> None:
        digest = hashlib.sha256(template.encode()).hexdigest()[:16]
        self.path = cache_dir() / f"building-{digest}"

    def left(self) -> str | None:
        try:
            who = self.path.read_text().strip()
        except OSError:
            return None
        return f"its last build was interrupted ({who} died while building it)"

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"runfireserver pid {os.getpid()} on {socket.gethostname()}")

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _unwritable(directory: Path) -> str | None:
    """Why the template cache `directory` cannot be used (None: it can)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot make the template directory {directory} ({exc.strerror})"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"cannot write in the template directory {directory}"
    return None


def _refuse_real_name(alias: str, template: str) -> None:
    """A template is dropped and made again: its name must be no alias's real database,
    nor any alias's test database."""
    for other in connections:
        settings_dict = connections[other].settings_dict
        names = {str(settings_dict.get("NAME")), str((settings_dict.get("TEST") or {}).get("NAME"))}
        if connections[other].vendor == "sqlite":  # files: the same file, however spelled
            names |= {str(Path(name).resolve()) for name in names if name != "None"}
        if template in names:
            raise CommandError(
                f"database alias {alias!r}: its template database name {template!r} is the "
                f"NAME (or TEST NAME) of alias {other!r}; runfireserver never touches a "
                "non-test database. Rename that database, or give the alias another TEST NAME."
            )


@contextlib.contextmanager
def _naming_failed_migration(alias: str) -> Iterator[None]:
    """A migration that raises stops the start with its name (and no template is saved)."""
    from django.db.migrations.executor import MigrationExecutor

    original = MigrationExecutor.apply_migration

    def apply_migration(self: Any, state: Any, migration: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, state, migration, *args, **kwargs)
        except Exception as exc:
            raise CommandError(
                f"migration {migration.app_label}.{migration.name} failed on database alias "
                f"{alias!r}: {type(exc).__name__}: {exc}. No template was saved: fix the "
                "migration and start the server again"
            ) from exc

    MigrationExecutor.apply_migration = apply_migration
    try:
        yield
    finally:
        MigrationExecutor.apply_migration = original
