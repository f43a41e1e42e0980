"""Test databases cloned from migrated templates (djfire.templates), on real migrations.

Each test writes a small project of its own (an app with a model and a data
migration) under tmp_path, with its own template cache directory, and starts real
runfireserver processes on it: what one start built, the next one clones; a changed
migration builds a new template; concurrent starts build once; a killed or failed build
leaves nothing a later start would use.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fire
from djfire.launch import RUNFIRESERVER
from fire.errors import FireError
from fire.runners.spawn import ServerSpec, SpawnedServer

from ..conftest import require_postgres

SETTINGS = """
import os
from pathlib import Path
SECRET_KEY = "templates"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "djfire", "catalog"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
_backend = os.environ["TPL_DB"]
if _backend == "postgres":
    DATABASES = {{"default": {{
        "ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1", "PORT": "5432",
        "USER": "postgres", "NAME": "{pg_name}",
    }}}}
elif _backend == "sqlite-file":
    DATABASES = {{"default": {{
        "ENGINE": "django.db.backends.sqlite3", "NAME": "{root}/real.sqlite3",
        "TEST": {{"NAME": "{root}/test_real.sqlite3"}},
    }}}}
else:
    DATABASES = {{"default": {{
        "ENGINE": "django.db.backends.sqlite3", "NAME": "{root}/real.sqlite3",
    }}}}
"""

MANAGE = """
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

MODELS = """
from django.db import models

class Item(models.Model):
    name = models.CharField(max_length=50)
{extra}
"""

INITIAL = """
from django.db import migrations, models

class Migration(migrations.Migration):
    initial = True
    operations = [migrations.CreateModel("Item", [
        ("id", models.AutoField(primary_key=True)),
        ("name", models.CharField(max_length=50)),
    ])]
"""

#: A data migration; with TPL_HANG set it says so in that file and waits to be killed.
SEEDED = """
import os, time
from django.db import migrations

def seed(apps, schema_editor):
    apps.get_model("catalog", "Item").objects.create(name="seeded")
    if os.environ.get("TPL_HANG"):
        open(os.environ["TPL_HANG"], "w").close()
        time.sleep(120)

class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(seed)]
"""

PRICE = """
from django.db import migrations, models

class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seeded")]
    operations = [migrations.AddField("Item", "price", models.IntegerField(default=7))]
"""

BROKEN = """
from django.db import migrations

def fail(apps, schema_editor):
    raise ValueError("the seed file is missing")

class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seeded")]
    operations = [migrations.RunPython(fail)]
"""


class Project:
    """A project written under `root`, its servers started on `backend`."""

    def __init__(self, root: Path, backend: str) -> None:
        if backend == "postgres":
            require_postgres()
        self.root = root
        self.backend = backend
        self.cache = root / "cache"
        self.pg_name = f"djfire_tpl_{os.getpid()}_{root.name[-12:].lower()}"
        app = root / "catalog"
        (app / "migrations").mkdir(parents=True)
        (root / "manage.py").write_text(MANAGE)
        (root / "settings.py").write_text(SETTINGS.format(root=root, pg_name=self.pg_name))
        (app / "__init__.py").write_text("")
        (app / "migrations" / "__init__.py").write_text("")
        self.migration("0001_initial", INITIAL)
        self.migration("0002_seeded", SEEDED)
        self.models("")

    def migration(self, name: str, text: str) -> None:
        (self.root / "catalog" / "migrations" / f"{name}.py").write_text(text)

    def models(self, extra: str) -> None:
        (self.root / "catalog" / "models.py").write_text(MODELS.format(extra=extra))

    def environ(self) -> dict[str, str]:
        return {"TPL_DB": self.backend, "DJFIRE_TEMPLATE_DIR": str(self.cache)}

    def spawn(
        self, *args: str, suffix: str | None = None, env: dict[str, str] | None = None
    ) -> SpawnedServer:
        spec = ServerSpec(
            name="catalog",
            program=self.root / "manage.py",
            launcher=RUNFIRESERVER,
            http=None,
            args=["--no-data-changes", *args],
            env={**self.environ(), **(env or {})},
        )
        return SpawnedServer(spec, suffix=suffix).start(timeout=60)

    def templates(self) -> list[str]:
        """The templates there are now: files in the cache, or PostgreSQL databases."""
        if self.backend != "postgres":
            return sorted(p.name for p in self.cache.glob("*.sqlite3"))
        with _admin() as pg:
            rows = pg.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                [f"test_{self.pg_name}_tpl_%"],
            ).fetchall()
        return sorted(row[0] for row in rows if not re.search(r"_s[0-9a-f]{4}$", row[0]))

    def spares(self) -> dict[str, str | None]:
        """The PostgreSQL templates' spares there are now, with their comments."""
        with _admin() as pg:
            rows = pg.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname LIKE %s",
                [f"test_{self.pg_name}_tpl_%"],
            ).fetchall()
        return {name: note for name, note in rows if re.search(r"_s[0-9a-f]{4}$", name)}

    def drop_postgres(self) -> None:
        if self.backend != "postgres":
            return
        with _admin() as pg:
            rows = pg.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"%{self.pg_name}%"]
            ).fetchall()
            for (name,) in rows:
                pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin() -> contextlib.AbstractContextManager:  # type: ignore[type-arg]
    import psycopg

    return psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)


@pytest.fixture
def make_project(tmp_path: Path) -> Iterator[type[Project]]:
    made: list[Project] = []

    def make(backend: str) -> Project:
        project = Project(tmp_path / "project", backend)
        made.append(project)
        return project

    yield make  # type: ignore[misc]
    for project in made:
        project.drop_postgres()


def ready(server: SpawnedServer) -> str:
    return next(line for line in server.output if "fire server ready at" in line)


def items(server: SpawnedServer) -> list[dict[str, object]]:
    """The catalog's rows and what the other migrations made, read in a test scope."""
    with fire.connect(server.address, timeout=20) as remote, remote.scope():
        item = remote.module("catalog.models").Item
        rows = list(item.objects.values())
        auth = remote.module("django.contrib.auth.models")
        assert auth.Permission.objects.filter(codename="add_item").count() == 1
        return rows


BACKENDS = ["sqlite", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_template_is_cloned_until_a_migration_changes(make_project, backend: str) -> None:
    project = make_project(backend)
    first = project.spawn()
    try:
        assert "default migrated in" in ready(first)
        assert items(first) == [{"id": 1, "name": "seeded"}]
    finally:
        assert first.stop() == 0
    assert len(project.templates()) == 1

    second = project.spawn()
    try:
        how = "taken from a spare" if backend == "postgres" else "cloned"
        assert re.search(rf"default {how} \(\d+ s old template\) in", ready(second))
        assert items(second) == [{"id": 1, "name": "seeded"}]  # the data migration's row
    finally:
        assert second.stop() == 0

    project.models("    price = models.IntegerField(default=7)")
    project.migration("0003_price", PRICE)
    third = project.spawn()
    try:
        assert "default migrated in" in ready(third)  # the old template was not used
        assert items(third) == [{"id": 1, "name": "seeded", "price": 7}]
    finally:
        assert third.stop() == 0
    assert len(project.templates()) == 2


def test_rebuild_db_builds_the_template_again(make_project) -> None:
    project = make_project("sqlite")
    project.spawn().stop()
    (before,) = project.templates()
    built_at = (project.cache / before).stat().st_mtime_ns
    again = project.spawn("--rebuild-db")
    try:
        assert "default migrated in" in ready(again)
        assert "not used: --rebuild-db; rebuilding it" in "".join(again.output)
    finally:
        again.stop()
    assert project.templates() == [before]
    assert (project.cache / before).stat().st_mtime_ns != built_at


def started_at_once(
    project: Project, count: int, env: dict[str, str] | None = None
) -> tuple[list[SpawnedServer], list[BaseException]]:
    """`count` servers of `project` started by as many threads at once (suffixes gw0…),
    and what the starts raised: the caller stops the servers, whatever was raised."""
    servers: list[SpawnedServer] = []
    errors: list[BaseException] = []

    def start(number: int) -> None:
        try:
            servers.append(project.spawn(suffix=f"gw{number}", env=env))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return servers, errors


def test_four_servers_started_at_once_build_one_template(make_project) -> None:
    project = make_project("sqlite")
    servers, errors = started_at_once(project, 4)
    try:
        assert not errors, errors
        lines = [ready(server) for server in servers]
        assert sum("default migrated in" in line for line in lines) == 1, lines
        assert sum("default cloned" in line for line in lines) == 3, lines
        for server in servers:
            assert items(server) == [{"id": 1, "name": "seeded"}]
    finally:
        for server in servers:
            server.stop()
    assert len(project.templates()) == 1


def test_a_killed_or_corrupt_build_is_never_used_and_the_next_start_rebuilds(
    make_project, tmp_path: Path
) -> None:
    project = make_project("sqlite")
    hang = tmp_path / "migrating"
    process = subprocess.Popen(
        [sys.executable, str(project.root / "manage.py"), "runfireserver", str(tmp_path / "s")],
        env={**os.environ, **project.environ(), "TPL_HANG": str(hang)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not hang.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hang.exists(), "the build never reached its data migration"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert project.templates() == []
    again = project.spawn()
    try:
        said = [line for line in again.output if "interrupted" in line]
        assert len(said) == 1, again.output
        assert f"(runfireserver pid {process.pid} on" in said[0]
        assert "rebuilding it" in said[0]
        assert "default migrated in" in ready(again)
        assert items(again) == [{"id": 1, "name": "seeded"}]
    finally:
        again.stop()
    third = project.spawn()
    try:
        assert "interrupted" not in "".join(third.output)
        assert "default cloned" in ready(third)
    finally:
        third.stop()
    (name,) = project.templates()
    path = project.cache / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a disk that filled up
    fourth = project.spawn()
    try:
        assert "its checksum does not match (a truncated or corrupt file)" in "".join(fourth.output)
        assert "default migrated in" in ready(fourth)
        assert items(fourth) == [{"id": 1, "name": "seeded"}]
    finally:
        fourth.stop()


def test_a_failing_migration_names_itself_and_leaves_no_template(make_project) -> None:
    project = make_project("sqlite")
    project.migration("0003_broken", BROKEN)
    with pytest.raises(FireError) as raised:
        project.spawn()
    assert (
        "migration catalog.0003_broken failed on database alias 'default': ValueError: the "
        "seed file is missing. No template was saved"
    ) in str(raised.value)
    assert project.templates() == []
    assert not list(project.cache.glob("building-*"))


@pytest.mark.postgres
def test_a_postgres_template_dropped_by_hand_is_rebuilt_and_a_stranger_refused(
    make_project,
) -> None:
    project = make_project("postgres")
    project.spawn().stop()
    (template,) = project.templates()
    assert template.startswith(f"test_{project.pg_name}_tpl_")
    with _admin() as pg:
        pg.execute(f'DROP DATABASE "{template}"')
    again = project.spawn(suffix="gw1")
    try:
        assert "default migrated in" in ready(again)
        assert items(again) == [{"id": 1, "name": "seeded"}]
    finally:
        again.stop()
    assert project.templates() == [template]
    # The clean-up after a killed server drops test databases, never a template.
    subprocess.run(
        [sys.executable, "manage.py", "runfireserver", "--drop-left-databases"],
        cwd=project.root,
        env={**os.environ, **project.environ()},
        check=True,
        capture_output=True,
    )
    assert project.templates() == [template]
    # A database by that name a fire server did not make as a template is never dropped.
    with _admin() as pg:
        pg.execute(f'DROP DATABASE "{template}"')
        pg.execute(f'CREATE DATABASE "{template}"')
    with pytest.raises(FireError) as raised:
        project.spawn()
    assert f"the PostgreSQL database {template!r} exists and was not made by a fire" in str(
        raised.value
    )
    assert project.templates() == [template]


@pytest.mark.postgres
def test_a_postgres_start_takes_the_spare_the_last_one_made(make_project) -> None:
    project = make_project("postgres")
    assert project.spawn().stop() == 0  # built the template, then a spare of it
    (spare,) = project.spares()
    (template,) = project.templates()
    assert spare.startswith(template) and project.spares()[spare].startswith("djfire spare")
    second = project.spawn()
    try:
        assert re.search(r"default taken from a spare \(\d+ s old template\) in", ready(second))
        assert items(second) == [{"id": 1, "name": "seeded"}]  # the data migration's row
        assert spare not in project.spares()  # renamed to the test database
    finally:
        assert second.stop() == 0
    assert len(project.spares()) == 1  # the second start made the next one

    # Two starts at once with one spare: one takes it, the other clones (they make no
    # spare themselves, or the later one might take the earlier one's).
    servers, errors = started_at_once(project, 2, env={"DJFIRE_TEMPLATE_SPARES": "0"})
    try:
        assert not errors, errors
        lines = [ready(server) for server in servers]
        assert sum("default taken from a spare" in line for line in lines) == 1, lines
        assert sum("default cloned" in line for line in lines) == 1, lines
        for server in servers:
            assert items(server) == [{"id": 1, "name": "seeded"}]
    finally:
        for server in servers:
            server.stop()
    # --rebuild-db drops the rebuilt template's spares (then makes one of the new build).
    assert project.spares() == {}
    assert project.spawn().stop() == 0
    before = set(project.spares())
    assert len(before) == 1
    rebuilt = project.spawn("--rebuild-db")
    try:
        assert "default migrated in" in ready(rebuilt)
    finally:
        assert rebuilt.stop() == 0
    assert len(project.spares()) == 1 and not before & set(project.spares())


@pytest.mark.postgres
def test_a_spare_of_an_old_key_is_never_taken_and_a_half_made_one_is_dropped(
    make_project,
) -> None:
    project = make_project("postgres")
    assert project.spawn().stop() == 0
    (old,) = project.spares()
    project.models("    price = models.IntegerField(default=7)")
    project.migration("0003_price", PRICE)
    changed = project.spawn()
    try:
        assert "default migrated in" in ready(changed)  # not the old key's spare
        assert items(changed) == [{"id": 1, "name": "seeded", "price": 7}]
    finally:
        assert changed.stop() == 0
    assert old in project.spares()
    # A spare a dying server left uncommented, and one whose template is gone: dropped
    # by the clean-up after a killed server; the new key's complete spare is kept.
    (kept,) = (name for name in project.spares() if name != old)
    (template, _) = sorted(project.templates(), key=lambda name: not old.startswith(name))
    half = f"{template}_s0000"
    with _admin() as pg:
        pg.execute(f'CREATE DATABASE "{half}" TEMPLATE "{template}"')
        pg.execute(f'DROP DATABASE "{template}"')
    done = subprocess.run(
        [sys.executable, "manage.py", "runfireserver", "--drop-left-databases"],
        cwd=project.root,
        env={**os.environ, **project.environ()},
        check=True,
        capture_output=True,
        text=True,
    )
    assert f"dropped the template spare {half!r}" in done.stdout
    assert sorted(project.spares()) == [kept]


def test_the_cache_directory_defaults_beside_manage_py(make_project) -> None:
    project = make_project("sqlite")
    environ = {k: v for k, v in os.environ.items() if k != "DJFIRE_TEMPLATE_DIR"}
    printed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from djfire.template_stores import cache_dir; print(cache_dir())",
        ],
        cwd=project.root,
        env={**environ, "TPL_DB": "sqlite"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()[-1]
    assert printed == str(project.root / ".djfire_cache" / "templates")


def test_a_template_directory_that_cannot_be_made_migrates_as_before(make_project) -> None:
    project = make_project("sqlite")
    blocker = project.root / "a-file"
    blocker.write_text("not a directory")
    project.cache = blocker / "templates"  # a read-only checkout's, as root sees one
    server = project.spawn()
    try:
        assert "default migrated in" in ready(server) and "(no template)" in ready(server)
        said = "".join(server.output)
        assert f"cannot make the template directory {project.cache} (Not a directory)" in said
        assert "Set DJFIRE_TEMPLATE_DIR" in said
        assert items(server) == [{"id": 1, "name": "seeded"}]
    finally:
        server.stop()


#: psycopg's module with its connects counted (``Counted.connects``), for the scripts below.
COUNTED_PSYCOPG = """
class Counted:
    connects = 0
    def __getattr__(self, name):
        return getattr(psycopg, name)
    def connect(self, *args, **kwargs):
        Counted.connects += 1
        return psycopg.connect(*args, **kwargs)
"""


#: Counts the maintenance-database connections a template store opens while its lock is
#: held and a clone asks whether the template is there and which spares it has.
COUNT_CONNECTS = (
    """
import django, psycopg
from django.conf import settings
settings.configure(DATABASES={"default": {
    "ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1", "PORT": "5432",
    "USER": "postgres", "NAME": "postgres",
}})
django.setup()
from django.db import connection
from djfire.template_stores import PostgresTemplate

"""
    + COUNTED_PSYCOPG
    + """
connection.Database = Counted()
store = PostgresTemplate(connection, "test_fire_connects", "0" * 12)
with store.locked(exclusive=False):
    assert store.find() == (None, None) and store.spares() == []
print("connects:", Counted.connects)
"""
)


@pytest.mark.postgres
def test_a_clone_asks_its_template_questions_on_the_locks_connection() -> None:
    # Each connect is 5-25 ms of a start: the lock's connection answers the questions.
    require_postgres()
    done = subprocess.run(
        [sys.executable, "-c", COUNT_CONNECTS], check=True, capture_output=True, text=True
    )
    assert done.stdout.split() == ["connects:", "1"]


@pytest.mark.postgres
def test_a_postgres_server_interrupted_cancels_the_spare_it_makes(make_project) -> None:
    """Ctrl-C (the runner's SIGINT) does not wait for the next start's spare: its copy
    is cancelled and leaves nothing. A transaction that comments on the template holds
    the copy here, for as long as it lasts (the server's stop would be killed)."""
    project = make_project("postgres")
    assert project.spawn().stop() == 0  # built the template, then a spare of it
    (template,) = project.templates()
    with _admin() as holder, _admin() as pg:
        holder.execute("BEGIN")
        holder.execute(f'COMMENT ON DATABASE "{template}" IS NULL')  # rolled back
        server = project.spawn()  # takes the spare, then copies the template: held
        copying = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event_type = 'Lock' AND query LIKE 'CREATE DATABASE%%'"
        )
        who = [f"djfire template pid {server.pid}"]
        deadline = time.monotonic() + 60
        while not pg.execute(copying, who).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        server.ask_to_stop(interrupted=True)
        assert server.stop() == 0, server.output  # not killed after 30 s
        holder.execute("ROLLBACK")
    assert not any("no spare" in line for line in server.output), server.output
    assert project.spares() == {}  # the one taken; the next one neither made nor half-made


#: Counts the connections a PostgreSQL test database's set-up opens (templates off: no
#: template lock), then drops the test database.
COUNT_SETUP_CONNECTS = (
    """
import os, django, psycopg
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["djfire"],
    DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1", "PORT": "5432",
        "USER": "postgres", "NAME": f"fire_connects_{os.getpid()}",
    }},
    DJFIRE_TEMPLATES=False,
)
django.setup()
from django.db.backends.postgresql.base import DatabaseWrapper
from djfire.databases import create_test_databases, destroy_test_databases

"""
    + COUNTED_PSYCOPG
    + """
DatabaseWrapper.Database = Counted()
made = create_test_databases(keepdb=False, verbosity=0)
print("connects:", Counted.connects)
destroy_test_databases(made, verbosity=0)
"""
)


@pytest.mark.postgres
def test_a_set_up_asks_its_maintenance_questions_on_one_connection() -> None:
    # The server's identity, the claim, one maintenance connection (whether the test
    # database exists, CREATE DATABASE, its mark: three before), the test database's.
    require_postgres()
    done = subprocess.run(
        [sys.executable, "-c", COUNT_SETUP_CONNECTS], check=True, capture_output=True, text=True
    )
    assert done.stdout.split() == ["connects:", "4"]
