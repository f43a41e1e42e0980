"""Drop the test databases of a server that died without its teardown (``runfireserver
--drop-left-databases``).

A server killed by a signal it cannot handle (SIGKILL, SIGSEGV, the OOM killer) never
drops its test databases: they stay until the next server with the same names drops and
makes them again, and for good when the run ends first. The supervisor that saw its
server die so (`fire.runners.supervise`) runs the server's own command again with
``--drop-left-databases``: the same settings, environment and ``--db-suffix``, so the
names are computed exactly as the start computed them (`name_test_databases`, which also
refuses a name that is a real database's). Each test database that exists is dropped
only if a fire server made it (`djfire.ownership`'s mark) and no live server claims it
(`djfire.claims`: the claim is taken for the drop, so no server starts on it meanwhile);
with ``--keepdb`` none is. One line per test database found says what was done and why.

A PostgreSQL template's spare that a dying server left half-made (no spare mark), or
whose template is gone, is dropped too; a complete one is kept for the next start.

A template (`djfire.templates`) is never one of them: its name is not a test database's
(``…_tpl_<hash>``, or a file in the template cache), and it carries no test database
mark, so a template another server is cloning is never dropped here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from django.db import connections

from .claims import ClaimHeld, claim_test_database
from .databases import drop_test_database, name_test_databases
from .ownership import checked_aliases, existing_test_database
from .server_identity import Key
from .template_stores import drop_unfinished_spares

__all__ = ["drop_left_databases"]


def drop_left_databases(
    *, keepdb: bool, suffix: str | None, verbosity: int, say: Callable[[str], object]
) -> None:
    """Drop the test databases a dead server of these settings left, telling `say` a line
    for each one found (dropped, or kept and why). Raises `CommandError` where a test
    database name is a real database's, as a start does, before touching any."""
    bases = {alias: str(connections[alias].creation._get_test_db_name()) for alias in connections}
    servers, mirrors = name_test_databases(suffix)
    for alias in checked_aliases(set(mirrors)):
        if connections[alias].vendor == "postgresql":
            for spare in drop_unfinished_spares(connections[alias], bases[alias]):
                say(
                    f"dropped the template spare {spare!r} (alias {alias!r}): left half-made, "
                    "or its template is gone"
                )
    seen: set[Key] = set()
    for alias in checked_aliases(set(mirrors)):
        name = str(connections[alias].creation._get_test_db_name())
        key = servers.key(alias, name)
        if key in seen:  # two aliases on one database server: one test database
            continue
        seen.add(key)
        found = existing_test_database(alias)
        if found is None:
            continue
        what = f"test database {name!r} (alias {alias!r})"
        if keepdb:
            say(f"kept {what}: the server ran with --keepdb")
            continue
        try:
            claim = claim_test_database(alias)
        except ClaimHeld as exc:
            say(f"kept {what}: a live fire server holds it ({exc.holder})")
            continue
        try:
            found = existing_test_database(alias)  # again, now that no server can start on it
            if found is None:
                continue
            if not found.marked:
                say(f"kept {what}: no fire server made it (it carries no djfire mark)")
                continue
            _drop(alias, name, verbosity)
        except Exception as exc:  # a backend still connected, the server gone: say it
            say(f"kept {what}: cannot drop it: {str(exc).strip()}")
        else:
            say(f"dropped {what}, left by a server that died without its teardown")
        finally:
            claim.release()


def _drop(alias: str, name: str, verbosity: int) -> None:
    """Drop the test database as a teardown would; for an SQLite file, also the journal
    its dead server's open transaction left (a "hot" journal: SQLite would roll it back
    into the next file of that name)."""
    connection = connections[alias]
    drop_test_database(connection.creation, name, verbosity)
    if connection.vendor == "sqlite":
        for extra in ("-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(name + extra)
