"""Public Django projects from PyPI, served by runfireserver on SQLite and PostgreSQL.

Real schemas hold more than models' tables, and each kind once stopped a server from
starting (issue 21: "cannot create triggers on virtual tables"). tests/realprojects is a
service built on some of them (docs/reference/real-projects.md says which and why):

- Wagtail, a CMS, on every backend. On SQLite its search index is an FTS5 virtual table
  (with its shadow tables) kept by Wagtail's own triggers; on PostgreSQL tsvector
  columns behind GIN indexes. wagtail-factories (its factory_boy factories) writes
  collections, images and documents; wagtail-localize translates a page.
- django-pghistory (with django-pgtrigger), on PostgreSQL: its triggers write an event
  row for every change of a tracked model, and a context row per ``pghistory.context``.
- django-postgres-extra, on PostgreSQL with Django 5.2 (it wants Django <6.0): a
  range-partitioned table with a composite primary key.

A test writes through their models' own APIs; the next one finds every table back at
the migrated baseline (the FTS index and the partitions included); a failing test's
report names their rows.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import django
import pytest
from packaging.specifiers import SpecifierSet

import fire
from djfire.launch import RUNFIRESERVER
from fire.runners import data_changes
from fire.runners.spawn import ServerSpec, SpawnedServer

from .conftest import TESTS, require_postgres, scratch_dir

MANAGE = TESTS / "realprojects" / "manage.py"


@dataclass(frozen=True)
class Project:
    """A package the service is built on, and the Djangos it supports (its own word)."""

    package: str
    versions: str  # what pyproject.toml's realprojects extra asks for
    django: str  # the Django versions the package declares support for

    def reason(self) -> str | None:
        """Why this package cannot be tested here (None: it can and must be).

        Outside its Django range: a skip reason naming the package and its range. Within
        it but not installed: a skip reason, which CI (CI=true) turns into a failure.
        """
        here = django.__version__
        if here not in SpecifierSet(self.django):
            return (
                f"{self.package} {self.versions} supports Django {self.django}, "
                f"not Django {here}: not installed on this matrix entry"
            )
        try:
            installed = version(self.package)
        except PackageNotFoundError:
            installed = None
        if installed is None or installed not in SpecifierSet(self.versions):
            missing = f"{self.package} {self.versions} is not installed (found: {installed})"
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true but {missing}: `make install` installs the extra")
            return f"{missing}: pip install -e '.[realprojects]'"
        return None


#: Every project the service is built on, by the backends that use it.
WAGTAIL = Project("wagtail", ">=8.0,<8.1", ">=5.2,<6.2")  # 8.0: Django 5.2, 6.0, 6.1
WAGTAIL_FACTORIES = Project("wagtail-factories", ">=4.5,<5", ">=5.2,<6.2")  # up to 6.0
WAGTAIL_LOCALIZE = Project("wagtail-localize", ">=1.14,<1.15", ">=5.2,<6.2")
PGHISTORY = Project("django-pghistory", ">=3.9,<4", ">=4.2,<6.2")  # 4.2 to 6.0
#: Optional on the PostgreSQL server: its partitioned table is there where it is installed.
POSTGRES_EXTRA = Project("django-postgres-extra", ">=3.0.1,<3.1", ">=5.2,<6.0")
PROJECTS = {
    "sqlite": [WAGTAIL, WAGTAIL_FACTORIES, WAGTAIL_LOCALIZE],
    "postgres": [WAGTAIL, WAGTAIL_FACTORIES, WAGTAIL_LOCALIZE, PGHISTORY],
}


#: The service's own apps (the rest are the projects' and Django's).
SERVICE_APPS = ("cms", "ledger", "metrics")


def spawn_realprojects(backend: str, data_dir: str | None = None) -> SpawnedServer:
    """Start tests/realprojects' server on `backend` (media files in `data_dir`); the caller
    stops it."""
    if backend == "postgres":
        require_postgres()
    for project in PROJECTS[backend]:
        reason = project.reason()
        if reason:
            pytest.skip(reason)
    spec = ServerSpec(
        name="cms",
        program=MANAGE,
        launcher=RUNFIRESERVER,
        http=None,
        suffix=f"run{os.getpid()}" if backend == "postgres" else None,
        env={
            "DJFIRE_TEST_DB": backend,
            "DJFIRE_TEST_DIR": data_dir or scratch_dir("fire-realprojects-"),
        },
    )
    return SpawnedServer(spec).start()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SpawnedServer]:
    """The real-projects service, once per backend."""
    server = spawn_realprojects(request.param, str(tmp_path_factory.mktemp("realprojects")))
    server.backend = request.param  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def cms(service: SpawnedServer) -> Iterator[fire.Remote]:
    with fire.connect(service.address, name="cms", timeout=30) as remote:
        yield remote


#: Every table of the test database: virtual and shadow tables, partitions (which Django's
#: introspection leaves out) and materialized views too.
_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p', 'm') "
    "AND relnamespace = current_schema()::regnamespace",
}


def table_counts(remote: fire.Remote) -> dict[str, int]:
    """Rows per table of the test database, every table."""
    connection = remote.module("django.db").connection
    cursor = connection.cursor()
    quote = connection.ops.quote_name
    cursor.execute(_TABLES[connection.vendor])
    counts = {}
    for (table,) in cursor.fetchall():
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")
        counts[table] = cursor.fetchone()[0]
    cursor.close()
    return counts


#: The tables a test writes, on each backend (SQLite's FTS5 index and its shadow tables,
#: PostgreSQL's pghistory events and contexts among them).
WRITTEN = {
    "sqlite": {
        "wagtailcore_page",
        "cms_articlepage",
        "wagtailcore_revision",
        "wagtailcore_pagelogentry",
        "wagtailcore_site",
        "wagtailcore_collection",
        "wagtailimages_image",
        "wagtaildocs_document",
        "taggit_tag",
        "taggit_taggeditem",
        "wagtailredirects_redirect",
        "auth_user",
        "wagtailcore_locale",
        "wagtail_localize_translationsource",
        "wagtail_localize_string",
        "wagtail_localize_stringsegment",
        "wagtail_localize_translation",
        "wagtailsearch_indexentry",
        "wagtailsearch_indexentry_fts",
        "wagtailsearch_indexentry_fts_data",
        "wagtailsearch_indexentry_fts_docsize",
    }
}
WRITTEN["postgres"] = (WRITTEN["sqlite"] - {t for t in WRITTEN["sqlite"] if "_fts" in t}) | {
    "ledger_account",
    "ledger_accountevent",
    "pghistory_context",
}
#: django-postgres-extra's partitions (where it is installed): the rows go to them.
PARTITIONS = {"metrics_pageview_y2026", "metrics_pageview_default"}


def written_tables(remote: fire.Remote, backend: str) -> set[str]:
    partitioned = remote.module("django.apps").apps.is_installed("metrics")
    return WRITTEN[backend] | (PARTITIONS if partitioned else set())


def write_through_the_projects(remote: fire.Remote, backend: str) -> None:
    """Pages, revisions, a site, collections, images, documents, tags, a redirect, a user
    and the search index through Wagtail; accounts, events and a context through pghistory."""
    wagtail = remote.module("wagtail.models")
    cms = remote.module("cms.models")
    root = wagtail.Page.get_first_root_node()
    home = root.add_child(
        instance=cms.ArticlePage(
            title="Fire home", slug="fire-home", intro="where full-system tests begin"
        )
    )
    home.save_revision().publish()
    home.add_child(
        instance=cms.ArticlePage(
            title="Fire article",
            slug="fire-article",
            intro="rolled back",
            body="<p>Nothing of this page survives its test.</p>",
        )
    )
    wagtail.Site.objects.create(hostname="fire.test", port=8080, root_page=home, site_name="fire")
    # wagtail-localize: the home page's strings extracted, and its French translation made.
    french = wagtail.Locale.objects.create(language_code="fr")
    localize = remote.module("wagtail_localize.models")
    source, _ = localize.TranslationSource.get_or_create_from_instance(home)
    translation = localize.Translation.objects.create(source=source, target_locale=french)
    translation.save_target(publish=True)

    factories = remote.module("wagtail_factories")
    collection = factories.CollectionFactory(
        parent=wagtail.Collection.get_first_root_node(), name="Fire collection"
    )
    image = factories.ImageFactory(title="Fire image", collection=collection)
    image.tags.add("fire-tag")
    factories.DocumentFactory(title="Fire document", collection=collection)
    redirects = remote.module("wagtail.contrib.redirects.models")
    redirects.Redirect.objects.create(old_path="/old-fire", redirect_page=home)
    remote.module("django.contrib.auth.models").User.objects.create_user(
        "fire-editor", password="secret"
    )

    # The search index: written by Wagtail's signal handlers as the pages were saved.
    found = cms.ArticlePage.objects.live().search("survives")
    assert [page.title for page in found] == ["Fire article"]

    if backend == "postgres":
        ledger = remote.module("ledger.models")
        account = ledger.Account.objects.create(owner="fire", balance="10.00")
        remote.module("ledger.services").pay(account, "2.50", purpose="fire test")
        events = ledger.Account.pgh_event_model.objects.order_by("pgh_id")
        assert [(e.pgh_label, str(e.balance)) for e in events] == [
            ("insert", "10.00"),
            ("update", "12.50"),
        ]
    if remote.module("django.apps").apps.is_installed("metrics"):  # django-postgres-extra
        page_views = remote.module("metrics.models").PageView.objects
        for when in ("2026-06-01T12:00:00Z", "2031-01-01T00:00:00Z"):  # y2026, default
            page_views.create(path="/fire-home/", viewed_at=when)
        assert page_views.count() == 2


def test_the_schema_goes_beyond_models_tables(cms: fire.Remote, service: SpawnedServer):
    apps = cms.module("django.apps").apps
    names = [model._meta.app_config.name for model in apps.get_models()]
    projects = [name for name in names if not name.startswith(("django.", *SERVICE_APPS))]
    assert len(projects) >= 50, sorted(projects)  # Wagtail 37-38, wagtail-localize 14, …
    connection = cms.module("django.db").connection
    cursor = connection.cursor()
    if service.backend == "sqlite":  # type: ignore[attr-defined]
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'wagtailsearch_indexentry_fts'")
        assert "USING fts5" in cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'")
    else:  # pgtrigger's triggers, besides djfire's own
        cursor.execute("SELECT COUNT(*) FROM pg_trigger WHERE tgname LIKE 'pgtrigger_%'")
    assert cursor.fetchone()[0] >= 2
    cursor.close()


def test_nothing_written_through_them_survives(cms: fire.Remote, service: SpawnedServer):
    backend = service.backend  # type: ignore[attr-defined]
    expected = written_tables(cms, backend)
    with cms.scope():
        baseline = table_counts(cms)
    assert expected <= set(baseline)
    with cms.scope(data_changes=True):
        write_through_the_projects(cms, backend)
        written = table_counts(cms)
        grown = {table for table in baseline if written[table] > baseline[table]}
        assert expected <= grown, expected - grown
        changes = data_changes.collect({"cms": cms})["cms"]
        report = data_changes.format_changes(changes, rows_per_table=None)
        for row in ("title='Fire home'", "title='Fire image'", "old_path='/old-fire'"):
            assert row in report, report
        if backend == "sqlite":  # the FTS5 index is not watched, but its writes are told
            assert changes["default"]["written_skipped"] == ["wagtailsearch_indexentry_fts"]
    with cms.scope(data_changes=True):
        assert table_counts(cms) == baseline
        assert not data_changes.has_changes(data_changes.collect({"cms": cms})["cms"])


FAILING_TEST = """
from tests.test_realprojects import write_through_the_projects

def test_writes_then_fails(fire_remotes):
    write_through_the_projects(fire_remotes["cms"], {backend!r})
    assert False, "on purpose"
"""


def test_a_failing_test_s_report_names_their_rows(
    pytester: pytest.Pytester, service: SpawnedServer
):
    backend = service.backend  # type: ignore[attr-defined]
    pytester.makepyfile(test_cms=textwrap.dedent(FAILING_TEST.format(backend=backend)))
    result = pytester.runpytest_inprocess(f"--fire-servers=cms={service.address}")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    vendor = {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
    report = output[output.index(f"- fire data changes: cms ({vendor}) -") :]
    expected = [
        "wagtailcore_page ",
        "title='Fire home'",
        "cms_articlepage ",
        "wagtailimages_image ",
        "wagtaildocs_document ",
        "title='Fire document'",
        "wagtailsearch_indexentry ",
        "taggit_tag ",
        "name='fire-tag'",
        "wagtail_localize_string ",
        "wagtailcore_locale ",
        "language_code='fr'",
    ]
    if backend == "sqlite":  # the FTS5 index: not watched, but the test's writes are told
        fts = re.search(
            r"^wagtailsearch_indexentry_fts +not watched \(virtual table\)", report, re.M
        )
        assert fts, report
    else:
        expected += ["ledger_accountevent ", "pgh_label='update'", "pghistory_context "]
        if POSTGRES_EXTRA.reason() is None:
            expected += ["path='/fire-home/'"]
    missing = [text for text in expected if text not in report]
    assert not missing, f"{missing} not in the report:\n{report}"


def test_rows_of_a_partitioned_table_are_reported_and_rolled_back(
    cms: fire.Remote, service: SpawnedServer
):
    if service.backend != "postgres":  # type: ignore[attr-defined]
        pytest.skip("partitioned tables are PostgreSQL's")
    reason = POSTGRES_EXTRA.reason()
    if reason:
        pytest.skip(reason)
    assert cms.module("django.apps").apps.is_installed("metrics")
    page_views = cms.module("metrics.models").PageView.objects
    with cms.scope(data_changes=True):
        page_views.create(path="/a/", viewed_at="2026-06-01T12:00:00Z")
        page_views.create(path="/b/", viewed_at="2031-01-01T00:00:00Z")
        tables = data_changes.collect({"cms": cms})["cms"]["default"]["tables"]
        paths = [  # once each, under the partitioned table's name or its partitions'
            row["path"]
            for table, changes in tables.items()
            if table.startswith("metrics_pageview")
            for row in changes["inserted"]
        ]
        assert sorted(paths) == ["/a/", "/b/"], tables
    with cms.scope():
        assert page_views.count() == 0


def test_a_project_outside_its_django_range_skips_and_a_missing_one_fails_ci(
    monkeypatch: pytest.MonkeyPatch,
):
    outside = Project("wagtail", ">=8.0,<8.1", "<1.0")
    assert f"wagtail >=8.0,<8.1 supports Django <1.0, not Django {django.__version__}" in (
        outside.reason() or ""
    )
    missing = Project("no-such-fire-project", ">=1", ">=1.0")
    monkeypatch.delenv("CI", raising=False)
    assert "no-such-fire-project >=1 is not installed (found: None)" in (missing.reason() or "")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but no-such-fire-project"):
        missing.reason()
