"""The data-change capture on a schema beyond models' tables (tests/schemaproject).

Real servers on SQLite (in memory and file) and PostgreSQL: FTS5 and R*Tree virtual
tables with triggers of their own, a view behind an unmanaged model, composite and
missing primary keys, a table wider than an SQLite function's arguments, JSON, binary
and non-ASCII values; on PostgreSQL a materialized view, a partitioned table, a table
in another schema, a table owned by another role (the server runs as a role that is no
superuser, so that it has no TRIGGER privilege there), and a table whose trigger the
database refuses. The server starts, a test writes everywhere, the next test sees
nothing, and the report shows each row faithfully and names what it does not watch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

import fire
from djfire import DjangoRemote
from djfire.launch import RUNFIRESERVER
from fire.runners.data_changes import format_changes
from fire.runners.spawn import ServerSpec, SpawnedServer, parse_spawn_spec
from fire.runners.supervise import parse_ready

from ..conftest import TESTS, require_postgres, scratch_dir

MANAGE = TESTS / "schemaproject" / "manage.py"
#: A role that is no superuser (so privileges apply to it), member of the role that
#: will own odd_owned until its migration gives that membership up (0002_beyond_models).
LIMITED_USER = "djfire_odd_limited"
OWNER_ROLE = "djfire_odd_owner"
BLOB = b"\x00\x01binary\xfe\xff"
TITLE = "Ünïcødé ☃ note"


def limited_postgres_user() -> str:
    """Make the roles (as the superuser postgres) and hand the owner role to the limited one."""
    import psycopg

    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as connection:
            for statement in (
                f"CREATE ROLE {OWNER_ROLE} NOLOGIN",
                f"CREATE ROLE {LIMITED_USER} LOGIN CREATEDB",
            ):
                made = (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation)
                with contextlib.suppress(*made):  # by an earlier run
                    connection.execute(statement)
            connection.execute(f"GRANT {OWNER_ROLE} TO {LIMITED_USER} WITH ADMIN OPTION")
    except psycopg.Error as exc:  # not a superuser here: the CI machine's must be
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"cannot make the PostgreSQL roles of the schema tests: {exc}")
    return LIMITED_USER


def odd_spec(backend: str, *args: str, data_changes: bool = True) -> ServerSpec:
    env = {
        "DJFIRE_TEST_DB": backend,
        "DJFIRE_TEST_DIR": scratch_dir("fire-odd-"),
    }
    if backend == "postgres":
        require_postgres()
        env["DJFIRE_PG_USER"] = limited_postgres_user() if data_changes else "postgres"
        # 0002_beyond_models revokes the limited user's membership in the owner role, a
        # change to the whole PostgreSQL server that a template's clone does not repeat
        # (docs/reference/templates.md): each start migrates.
        args = (*args, "--rebuild-db")
    return ServerSpec(
        name="odd",
        program=MANAGE,
        launcher=RUNFIRESERVER,
        suffix=f"run{os.getpid()}" if backend == "postgres" else None,
        args=list(args),
        env=env,
        data_changes=data_changes,
    )


BACKENDS = ["sqlite", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def odd_server(request: pytest.FixtureRequest) -> Iterator[SpawnedServer]:
    """The schema project's server (-v 2: it lists what it does not watch)."""
    server = SpawnedServer(odd_spec(request.param, "--verbosity", "2")).start()
    server.backend = request.param  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def odd(odd_server: SpawnedServer) -> Iterator[fire.Remote]:
    with fire.connect(odd_server.address, name="odd", timeout=30) as remote:
        yield remote


def _ready_line(server: SpawnedServer) -> str:
    return next(line for line in server.output if parse_ready(line)).strip()


EXPECTED_SKIPPED = {
    "sqlite": {
        "odd_note_fts": "virtual table",
        "odd_note_fts_config": "shadow table of the virtual table odd_note_fts",
        "odd_note_fts_data": "shadow table of the virtual table odd_note_fts",
        "odd_note_fts_docsize": "shadow table of the virtual table odd_note_fts",
        "odd_note_fts_idx": "shadow table of the virtual table odd_note_fts",
        "odd_note_view": "view",
        "odd_place_rtree": "virtual table",
        "odd_place_rtree_node": "shadow table of the virtual table odd_place_rtree",
        "odd_place_rtree_parent": "shadow table of the virtual table odd_place_rtree",
        "odd_place_rtree_rowid": "shadow table of the virtual table odd_place_rtree",
    },
    "postgres": {
        "odd_clash": 'trigger not created: trigger "djfire_capture" for relation "odd_clash" '
        "is a constraint trigger",
        "odd_note_totals": "materialized view",
        "odd_note_view": "view",
        "odd_owned": f"no TRIGGER privilege (owned by {OWNER_ROLE})",
    },
}
EXPECTED_SKIPPED["sqlite-file"] = EXPECTED_SKIPPED["sqlite"]


def test_the_server_starts_and_says_what_it_does_not_watch(
    odd_server: SpawnedServer, odd: fire.Remote
):
    """Regression: an FTS5 virtual table stopped the server ("cannot create triggers on
    virtual tables")."""
    expected = EXPECTED_SKIPPED[odd_server.backend]  # type: ignore[attr-defined]
    capture = odd.info()["extensions"]["scopes"]["capture"]
    assert capture["off"] is None
    assert capture["skipped"] == {"default": expected}
    watched = capture["watched"]["default"]
    assert watched >= 5  # odd_note, odd_membership, odd_wide, odd_log, django_migrations…
    assert _ready_line(odd_server).endswith(
        f"; data changes: {watched} tables watched, {len(expected)} skipped"
    )
    for table, reason in expected.items():  # -v 2
        assert f"data changes: default: {table} not watched ({reason})\n" in odd_server.output


def _write_everywhere(odd: fire.Remote, backend: str) -> None:
    models = odd.module("odd.models")
    cursor = odd.module("django.db").connection.cursor()
    note = models.Note.objects.create(
        title="draft", body="searchable", data={"tags": ["a", "é"], "n": 1}, blob=BLOB
    )
    models.Note.objects.filter(id=note.id).update(title=TITLE)  # its FTS triggers again
    models.Membership.objects.filter(team=1, person="ada").update(role="chair")
    models.Membership.objects.create(team=1, person="bob", role="member")
    models.Wide.objects.create(c69=690)
    cursor.execute("INSERT INTO odd_log (line, n) VALUES ('same', 1), ('same', 1), ('once', 2)")
    assert [n.title for n in models.NoteTitle.objects.all()] == [TITLE]  # the view reads it
    if backend == "postgres":
        cursor.execute("""INSERT INTO odd_event VALUES (1, 'a', '{"k": "é"}')""")  # the parent
        cursor.execute("INSERT INTO odd_event_b VALUES (2, 'b', NULL)")  # a partition itself
        cursor.execute("INSERT INTO odd_extra.tag (name) VALUES ('Straße')")
        cursor.execute("INSERT INTO odd_owned (name) VALUES ('not mine')")
        cursor.execute("REFRESH MATERIALIZED VIEW odd_note_totals")
    else:
        cursor.execute("INSERT INTO odd_place_rtree VALUES (1, 0, 1, 0, 1)")


def test_a_test_writes_everywhere_and_its_report_is_faithful(
    odd_server: SpawnedServer, odd: fire.Remote
):
    backend = odd_server.backend  # type: ignore[attr-defined]
    dj = DjangoRemote(odd)
    with odd.scope("class"):  # before the test: not among its changes
        odd.module("odd.models").Membership.objects.create(team=1, person="ada", role="lead")
        with odd.scope(data_changes=True):
            _write_everywhere(odd, backend)
            report = dj.data_changes()["default"]
    tables = report["tables"]
    note = tables["odd_note"]["inserted"]
    assert len(note) == 1 and tables["odd_note"]["updated"] == []
    assert note[0]["title"] == TITLE
    assert note[0]["data"] == {"tags": ["a", "é"], "n": 1}  # a dict on every backend
    assert note[0]["blob"] == BLOB  # bytes, not hex decoded as base64
    assert tables["odd_log"]["inserted"] == [  # each identical row counted
        {"line": "same", "n": 1},
        {"line": "same", "n": 1},
        {"line": "once", "n": 2},
    ]
    assert tables["odd_membership"] == {
        "inserted": [{"team": 1, "person": "bob", "role": "member"}],
        "updated": [{"key": {"team": 1, "person": "ada"}, "changed": {"role": ["lead", "chair"]}}],
        "deleted": [],
    }
    wide = tables["odd_wide"]["inserted"][0]
    assert len(wide) == 71 and wide["c0"] == 0 and wide["c69"] == 690
    assert report["skipped"] == EXPECTED_SKIPPED[backend]
    assert not set(tables) & set(report["skipped"])
    if backend == "postgres":
        assert tables["odd_event"]["inserted"] == [  # each row once, under the parent
            {"id": 1, "kind": "a", "payload": {"k": "é"}},
            {"id": 2, "kind": "b", "payload": None},
        ]
        assert tables["odd_extra.tag"]["inserted"] == [{"id": 1, "name": "Straße"}]
        assert [row["note_id"] for row in tables["odd_note_fts"]["inserted"]] == [note[0]["id"]]
        assert not {"odd_event_a", "odd_event_b"} & set(tables)
        assert report["written_skipped"] == ["odd_owned"]
    else:
        assert sorted(report["written_skipped"]) == ["odd_note_fts", "odd_place_rtree"]

    text = format_changes({"default": report})
    assert f"  + id={note[0]['id']} title='{TITLE}' body='searchable'" in text
    # (as the database keeps it: jsonb orders its keys)
    assert f"data={note[0]['data']!r} blob=b'\\x00\\x01binary\\xfe\\xff'" in text
    assert "  + line='same' n=1  \u00d72\n  + line='once' n=2\n" in text
    assert "  ~ team=1 person='ada' role: 'lead' -> 'chair'" in text
    assert "(not watched here: " in text.splitlines()[-1]
    if backend == "postgres":
        assert "odd_extra.tag" in text
        owned = f"not watched (no TRIGGER privilege (owned by {OWNER_ROLE})): this test wrote"
        assert any(line.startswith("odd_owned ") and owned in line for line in text.splitlines())
    else:
        assert "odd_note_fts     not watched (virtual table): this test wrote to it" in text
        assert "odd_place_rtree  not watched (virtual table)" in text


def test_the_next_test_sees_nothing(odd_server: SpawnedServer, odd: fire.Remote):
    backend = odd_server.backend  # type: ignore[attr-defined]
    dj = DjangoRemote(odd)
    with odd.scope(data_changes=True):
        _write_everywhere(odd, backend)
    with odd.scope(data_changes=True):
        report = dj.data_changes()["default"]
        assert report["tables"] == {} and report["written_skipped"] == []
        models = odd.module("odd.models")
        assert models.Note.objects.count() == 0 and models.Membership.objects.count() == 0
        cursor = odd.module("django.db").connection.cursor()
        extra = ["odd_event", "odd_extra.tag", "odd_owned"] if backend == "postgres" else []
        for table in ["odd_log", "odd_note_fts", *extra]:
            cursor.execute(f"SELECT count(*) FROM {table}")
            assert cursor.fetchone() == (0,), table


FAILING_TEST = """
def test_writes_then_fails(fire_remotes):
    odd = fire_remotes["odd"]
    odd.module("odd.models").Note.objects.create(title="ß", data={"k": [1]}, blob=b"\\x00")
    odd.module("django.db").connection.cursor().execute(
        "INSERT INTO odd_log VALUES ('twice', 1), ('twice', 1)"
    )
    assert False, "on purpose"
"""


def test_a_failing_test_s_report_names_rows_and_what_is_not_watched(
    pytester: pytest.Pytester, odd_server: SpawnedServer
):
    if odd_server.backend != "sqlite":  # type: ignore[attr-defined]
        pytest.skip("the report's form is the same on every backend: checked once")
    pytester.makepyfile(test_odd=FAILING_TEST)
    result = pytester.runpytest(f"--fire-servers=odd={odd_server.address}")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    section = output[output.index("- fire data changes: odd (sqlite) -") :].splitlines()[1:]
    assert section[1].startswith(
        "  + id=1 title='ß' body='' data={'k': [1]} blob=b'\\x00' created="
    )
    assert section[:1] + section[2:6] == (
        [
            "odd_note      +1",
            "odd_log       +2",
            "  + line='twice' n=1  \u00d72",
            "odd_note_fts  not watched (virtual table): this test wrote to it, its rows are "
            "not shown",
            "(not watched here: odd_note_fts (virtual table), odd_note_view (view), "
            "odd_place_rtree (virtual table), 7 shadow tables)",
        ]
    )


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_server_without_capture_installs_nothing(backend: str):
    spec = parse_spawn_spec(f"odd={MANAGE}:http=:data_changes=off")
    env = odd_spec(backend, data_changes=False)
    spec.env, spec.suffix = env.env, env.suffix and f"{env.suffix}_off"  # beside odd_server
    server = SpawnedServer(spec).start()
    try:
        assert "--no-data-changes" in server.command()
        assert _ready_line(server).endswith("; data changes: off (runfireserver --no-data-changes)")
        with fire.connect(server.address, name="odd", timeout=30) as odd:
            scopes = odd.info()["extensions"]["scopes"]
            assert scopes["data_changes"] is False
            assert scopes["capture"]["off"] == "off (runfireserver --no-data-changes)"
            with odd.scope(data_changes=True):
                odd.module("odd.models").Note.objects.create(title="t")
                report = DjangoRemote(odd).data_changes()
                assert report == {
                    "default": {
                        "vendor": "postgresql" if backend == "postgres" else "sqlite",
                        "tables": None,
                        "off": "off (runfireserver --no-data-changes)",
                    }
                }
                assert format_changes(report) == (
                    f"({report['default']['vendor']}: data changes off "
                    "(runfireserver --no-data-changes))"
                )
                cursor = odd.module("django.db").connection.cursor()
                cursor.execute(_CAPTURE_OBJECTS[backend])
                assert cursor.fetchone() == (0,)
    finally:
        server.stop()


_CAPTURE_OBJECTS: dict[str, Any] = {
    "sqlite": "SELECT count(*) FROM sqlite_temp_master WHERE name LIKE 'djfire%'",
    "postgres": "SELECT count(*) FROM pg_proc WHERE proname = 'djfire_capture'",
}


def test_a_run_with_data_changes_off_spawns_its_servers_without_capture(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(
        test_off="""
def test_capture_is_off(fire_remotes):
    capture = fire_remotes["odd"].info()["extensions"]["scopes"]["capture"]
    assert capture["off"] == "off (runfireserver --no-data-changes)"
"""
    )
    result = pytester.runpytest(f"--fire-spawn=odd={MANAGE}:http=", "--fire-data-changes=off")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("backend", ["sqlite", "sqlite-file"])
def test_a_write_to_a_table_whose_trigger_sqlite_refused_is_told(backend: str):
    """Regression: on SQLite only virtual tables' shadow tables had write markers, so a
    test that wrote into a table whose capture trigger was refused got no word of it
    (PostgreSQL tells it by row counters). The schema project's ``ODD_SQLITE_HARDENED``
    lowers the expression depth (odd_wide's capture trigger is refused, its write marker
    is not) and refuses every trigger on odd_log (no marker either: said so)."""
    spec = odd_spec(backend)
    spec.env = {**spec.env, "ODD_SQLITE_HARDENED": "1"}
    server = SpawnedServer(spec).start()
    try:
        with fire.connect(server.address, name="odd", timeout=30) as odd:
            skipped = odd.info()["extensions"]["scopes"]["capture"]["skipped"]["default"]
            wide = "trigger not created: Expression tree is too large (maximum depth 6)"
            guarded = "trigger not created: not authorized; writes to it cannot be told either"
            assert skipped == {
                **EXPECTED_SKIPPED[backend],
                "odd_wide": wide,
                "odd_log": guarded,
            }
            models = odd.module("odd.models")
            cursor = odd.module("django.db").connection.cursor()
            dj = DjangoRemote(odd)
            with odd.scope(data_changes=True):
                models.Note.objects.create(title="t")
                cursor.execute("INSERT INTO odd_log (line, n) VALUES ('x', 1)")
                # (the note's own FTS triggers wrote its search index)
                assert dj.data_changes()["default"]["written_skipped"] == ["odd_note_fts"]
            with odd.scope(data_changes=True):
                models.Wide.objects.create(c69=690)
                report = dj.data_changes()
                assert report["default"]["written_skipped"] == ["odd_wide"]
                text = format_changes(report)
                assert f"odd_wide  not watched ({wide}): this test wrote to it" in text
                assert f"odd_log ({guarded})" in text.splitlines()[-1]
            with odd.scope(data_changes=True):  # the marker was rolled back with the test
                assert models.Wide.objects.count() == 0
                assert dj.data_changes()["default"]["written_skipped"] == []
    finally:
        server.stop()
