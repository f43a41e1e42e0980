"""Start-up on a large schema: a generated 300-model project, ready lines timed (issue 26).

A section of its own (a server start is seconds, not a call): from process start to
the ready line of ``manage.py runfireserver`` on `bench.schema_project`, on SQLite (the
in-memory test database) and PostgreSQL (when it listens at 127.0.0.1:5432):

- ``fresh``: templates off (``DJFIRE_TEMPLATES = False``): what every start cost before;
- ``changed schema``: the first start with templates, none there yet (the template is
  built: migrate, then saved), judged against ``fresh`` (goal: 1.1x at most);
- ``Django alone``: the floor, on the same project: a process that runs
  ``django.setup()`` and opens one connection (SQLite: the project's database file;
  PostgreSQL: the ``postgres`` database, which is always there), timed from process
  start to connected, the median of three. No server can start in less: it is Python
  and Django importing the 300 models, and on PostgreSQL psycopg's import and a connect;
- ``Django's manage.py``: a second floor, the same done by a Django management command
  of the project (``manage.py shell -c``): what any ``manage.py`` command pays on top,
  Django's command machinery (``django.core.management``, its parser), which
  ``runfireserver`` pays too;
- ``unchanged schema``: the median of three starts that clone it, each run right after
  one of each floor's (goal: 1.0 s at most, the issue's; the row gives its ratio to
  each floor too, each the median of the three rounds' ratios, so a slow spell of the
  machine hits a whole round, as in `bench.report`); on PostgreSQL each takes the
  spare the start before it made after its ready line (a rename, not a copy: the line
  says how many did);
- ``-n 4, two services``: eight servers of two projects started at once on a changed
  schema (one migration per service, read from the ready lines), then again on the
  unchanged one: the eight servers' CPU seconds to ready against one server's fresh
  start, which is what each of the eight paid before (goal: 1.5x at most). SQLite
  only: on two cores and a shared PostgreSQL, eight PostgreSQL servers measure the
  machine more than fire.

``python -m bench -k schema`` runs only this (``-k schema-sqlite``, ``-k schema-postgres``,
``-k schema-n4`` one part).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fire.runners import supervise

from .registry import REPO_ROOT, Env, section
from .schema_project import MODELS, write_project

NAME = "schema"
CLONES = 3


#: The floor's process: Django alone, set up, one connection open, then waiting to be
#: stopped (its CPU seconds are read while it waits).
_DJANGO_ALONE = """import os, sys
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
import django
django.setup()
from django.db import connection
if connection.vendor == "postgresql":
    connection.settings_dict["NAME"] = "postgres"
connection.ensure_connection()
print("connected", flush=True)
sys.stdin.read()
"""


class Started:
    """One start of `argv`: seconds to its ready line (`ready` says which), the line,
    and its CPU seconds by then."""

    def __init__(
        self,
        argv: list[str],
        ready: Callable[[str], object],
        environ: dict[str, str],
        cwd: Path,
    ) -> None:
        began = time.monotonic()
        popen, line = supervise.start(
            argv, ready, 1800.0, stdin=subprocess.PIPE, env=environ, cwd=cwd
        )
        self.seconds = time.monotonic() - began
        self.line = line.strip()
        fields = Path(f"/proc/{popen.pid}/stat").read_text().rpartition(")")[2].split()
        self.cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        supervise.stop(popen, seconds=30)
        for stream in (popen.stdin, popen.stdout):
            if stream is not None:
                stream.close()

    @property
    def built(self) -> bool:
        return "migrated in" in self.line


def _server(manage: Path, environ: dict[str, str], socket: Path) -> Started:
    """``runfireserver`` started and timed to its ready line."""
    argv = [sys.executable, str(manage), "runfireserver", str(socket), "--no-data-changes"]
    argv += ["--verbosity", "0"]
    return Started(argv, supervise.parse_ready, environ, manage.parent)


#: The second floor's: the same connection from a management command of the project.
_DJANGO_COMMAND = """from django.db import connection
if connection.vendor == "postgresql":
    connection.settings_dict["NAME"] = "postgres"
connection.ensure_connection()
print("connected", flush=True)
import sys
sys.stdin.read()
"""


def _django_alone(manage: Path, environ: dict[str, str], *, command: bool = False) -> Started:
    """A floor: Django set up on the project and connected, timed to "connected": by
    ``python -c``, or (`command`) by ``manage.py shell -c``."""
    argv = [sys.executable, "-c", _DJANGO_ALONE]
    if command:
        argv = [sys.executable, str(manage), "shell", "-c", _DJANGO_COMMAND]
    return Started(argv, lambda text: text.strip() == "connected", environ, manage.parent)


def _environ(env: Env, db: str, cache: Path, templates: bool = True) -> dict[str, str]:
    environ = env.server_environ()
    # As a project's own servers run: bytecode cached after the first start (a sandbox's
    # PYTHONDONTWRITEBYTECODE would have every start compile the 300 models again).
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    environ.update(
        BENCH_DB=db,
        BENCH_TEMPLATES="1" if templates else "0",
        DJFIRE_TEMPLATE_DIR=str(cache),
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), environ.get("PYTHONPATH", "")]),
    )
    return environ


def _postgres() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _drop_postgres(prefix: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as pg:
        rows = pg.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"%{prefix}%"]
        ).fetchall()
        for (name,) in rows:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _one_backend(env: Env, db: str) -> list[str]:
    root = env.tmpdir / f"schema-{db}"
    pg_name = f"fire_bench_schema_{os.getpid()}"
    manage = write_project(root, pg_name)
    cache = root / "cache"
    socket = root / "s.sock"
    try:
        fresh = _server(manage, _environ(env, db, cache, templates=False), socket)
        changed = _server(manage, _environ(env, db, cache), socket)
        floors, commands, clones = [], [], []
        for _ in range(CLONES):  # in rounds: a slow spell of the machine hits all three
            floors.append(_django_alone(manage, _environ(env, db, cache)))
            commands.append(_django_alone(manage, _environ(env, db, cache), command=True))
            clones.append(_server(manage, _environ(env, db, cache), socket))
    finally:
        if db == "postgres":
            _drop_postgres(pg_name)
    assert changed.built and not any(c.built for c in clones), (changed.line, clones[0].line)
    unchanged = statistics.median(c.seconds for c in clones)
    took = sum("taken from a spare" in c.line for c in clones)
    spares = f", {took} of {CLONES} taken from a spare" if db == "postgres" else ""
    ratio = changed.seconds / fresh.seconds
    cpu_ratio = changed.cpu / fresh.cpu
    clone_cpu = statistics.median(c.cpu for c in clones)
    floor = statistics.median(f.seconds for f in floors)
    floor_cpu = statistics.median(f.cpu for f in floors)
    over_floor = statistics.median(
        c.seconds / f.seconds for c, f in zip(clones, floors, strict=True)
    )
    command = statistics.median(f.seconds for f in commands)
    command_cpu = statistics.median(f.cpu for f in commands)
    over_command = statistics.median(
        c.seconds / f.seconds for c, f in zip(clones, commands, strict=True)
    )
    return [
        f"{db}: fresh start (templates off) {fresh.seconds:6.2f} s  (CPU {fresh.cpu:.2f} s)",
        f"{db}: changed schema (builds)     {changed.seconds:6.2f} s  (CPU {changed.cpu:.2f} s)"
        f" = {ratio:.2f}x fresh, CPU {cpu_ratio:.2f}x (goal <= 1.10x) "
        f"{'ok' if ratio <= 1.1 else 'OVER'}",
        f"{db}: Django alone (floor)        {floor:6.2f} s  (CPU {floor_cpu:.2f} s) median "
        f"of {CLONES}: django.setup() and one connection",
        f"{db}: Django's manage.py (floor)  {command:6.2f} s  (CPU {command_cpu:.2f} s) median "
        f"of {CLONES}: the same by manage.py shell -c",
        f"{db}: unchanged schema (clones)   {unchanged:6.2f} s  (CPU {clone_cpu:.2f} s) median "
        f"of {CLONES} (goal <= 1.00 s) {'ok' if unchanged <= 1.0 else 'OVER'}{spares}; "
        f"{over_floor:.2f}x Django alone, {over_command:.2f}x Django's manage.py",
    ]


def _eight_at_once(env: Env, root: Path, manages: list[Path]) -> list[Started]:
    """Four servers of each service at once, each service with its cache (beside its
    manage.py, as by default: the two generated schemas are alike, and one shared cache
    would let the second service clone the first's template)."""
    started: list[Started] = []
    errors: list[BaseException] = []

    def start(manage: Path, worker: int) -> None:
        try:
            environ = _environ(env, "sqlite", manage.parent / "cache")
            started.append(_server(manage, environ, root / f"{manage.parent.name}-{worker}.sock"))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=start, args=(manage, worker))
        for manage in manages
        for worker in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return started


def _xdist_like(env: Env) -> list[str]:
    root = env.tmpdir / "schema-n4"
    manages = [write_project(root / service, "unused") for service in ("orders", "stock")]
    changed = _eight_at_once(env, root, manages)
    builds = sum(s.built for s in changed)
    unchanged = _eight_at_once(env, root, manages)
    environ = _environ(env, "sqlite", manages[0].parent / "cache", templates=False)
    one = _server(manages[0], environ, root / "one.sock")
    cpu = sum(s.cpu for s in unchanged) / one.cpu
    return [
        f"-n 4, two services, changed schema: {builds} migrations for 2 services "
        f"(goal 2) {'ok' if builds == 2 else 'OVER'}; slowest ready "
        f"{max(s.seconds for s in changed):.1f} s",
        f"-n 4, two services, unchanged schema: CPU to ready {sum(s.cpu for s in unchanged):.2f} s"
        f" for 8 servers = {cpu:.2f}x one fresh server's {one.cpu:.2f} s (goal <= 1.5x) "
        f"{'ok' if cpu <= 1.5 else 'OVER'}",
    ]


def run(env: Env, only: list[str]) -> str:
    if only and not any(term.startswith(NAME) for term in only):
        return ""

    def wanted(part: str) -> bool:
        return not only or any(term in (NAME, f"{NAME}-{part}") for term in only)

    lines = [f"start-up on a generated {MODELS}-model project (process start to ready line)"]
    if wanted("sqlite"):
        lines += _one_backend(env, "sqlite")
    if wanted("postgres"):
        if _postgres():
            lines += _one_backend(env, "postgres")
        else:
            lines.append("postgres: skipped (PostgreSQL does not listen at 127.0.0.1:5432)")
    if wanted("n4"):
        lines += _xdist_like(env)
    return "\n".join(lines)


section(NAME, run)
