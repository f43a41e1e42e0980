"""The pytest plugin, driven through pytester against real fire servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fire.net.curve import create_key_pair
from fire.runners import supervise

from ..conftest import CLIENT_SETTINGS, MANAGE, require_postgres

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SHOP_TESTS = """
import requests
from djfire import DjangoRemote

def test_makes_a_product(fire_remotes):
    shop = fire_remotes["shop"]
    product = shop.module("shop.factories").ProductFactory(name="lamp")
    url = DjangoRemote(shop).live_url
    assert requests.get(url + "/products/").json()["products"] == [
        {"id": product.id, "name": "lamp"}]

def test_sees_nothing_of_the_previous_test(fire_remote):
    assert fire_remote("shop").module("shop.models").Product.objects.count() == 0
"""


def test_attach_with_the_command_line_option(pytester: pytest.Pytester, sqlite_shop):
    pytester.makepyfile(test_shop=SHOP_TESTS)
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "fire servers (--fire-servers):",
            f"  shop: {sqlite_shop.address}: fire *, Python *, protocol 3, Django *, "
            # How the server made its test databases: cloned from a template, or migrated
            # (the first start on this checkout) and saved as one.
            "databases default=sqlite, other=sqlite, test databases default * in * s*, "
            "other * in * s*",
        ]
    )


def test_option_beats_environment_beats_ini(
    pytester: pytest.Pytester, sqlite_shop, monkeypatch: pytest.MonkeyPatch
):
    pytester.makepyfile(test_shop=SHOP_TESTS)
    pytester.makeini("[pytest]\nfire_servers =\n    shop=missing-from-ini.sock\n")
    monkeypatch.setenv("FIRE_SERVERS", f"shop={sqlite_shop.address}")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["fire servers (FIRE_SERVERS):"])
    result = pytester.runpytest("--fire-servers=shop=/tmp/no-such-fire.sock")
    result.assert_outcomes(errors=2)
    monkeypatch.delenv("FIRE_SERVERS")
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([f"*{pytester.path}/missing-from-ini.sock*"])


def test_a_dead_server_names_itself_and_the_fix(pytester: pytest.Pytester):
    pytester.makepyfile(test_shop=SHOP_TESTS)
    result = pytester.runpytest("--fire-servers=shop=/tmp/no-such-fire.sock")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*fire server 'shop' is not available: no fire server at /tmp/no-such-fire.sock*",
        ]
    )
    assert "python manage.py runfireserver /tmp/no-such-fire.sock" in result.stdout.str()


def test_remote_traceback_in_the_report(pytester: pytest.Pytester, sqlite_shop):
    pytester.makepyfile(
        test_remote_error="""
        def test_missing_user(fire_remotes):
            users = fire_remotes["shop"].module("django.contrib.auth.models").User
            users.objects.get(username="nobody")
    """
    )
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*django/db/models/query.py:*: DoesNotExist",  # a remote frame, shown by pytest
            "*- fire remote traceback (shop) -*",
            "*User matching query does not exist*",
        ]
    )


def test_markers_and_wider_scopes(pytester: pytest.Pytester, sqlite_shop):
    pytester.makepyfile(
        test_scopes="""
        import pytest

        @pytest.fixture(scope="module")
        def category(fire_module_scope):
            factories = fire_module_scope["shop"].module("shop.factories")
            return factories.CategoryFactory(name="module data")

        def test_one(category, fire_remotes):
            models = fire_remotes["shop"].module("shop.models")
            fire_remotes["shop"].module("shop.factories").CategoryFactory(name="test data")
            assert models.Category.objects.count() == 2

        def test_two(category, fire_remotes):
            models = fire_remotes["shop"].module("shop.models")
            assert list(models.Category.objects.values_list("name", flat=True)) == [
                "module data"]

        @pytest.mark.fire(servers=["nope"])
        def test_unknown_server(fire_remotes):
            pass
    """
    )
    pytester.makepyfile(
        test_transactional="""
        import pytest

        @pytest.mark.fire(transactional=True)
        def test_commits_for_real(fire_remotes):
            shop = fire_remotes["shop"]
            assert shop.module("django.db").connection.in_atomic_block is False
            shop.module("shop.factories").CategoryFactory(name="committed")

        def test_flushed_after(fire_remotes):
            assert fire_remotes["shop"].module("shop.models").Category.objects.count() == 0
    """
    )
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*no fire server named 'nope' (configured: shop)*"])


def test_spawned_server_and_its_output_on_failure(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_spawned="""
        def test_fails_after_a_request(fire_remotes):
            from djfire import DjangoRemote
            import requests
            url = DjangoRemote(fire_remotes["shop"]).live_url
            assert requests.post(url + "/products/fail/").status_code == 201
    """
    )
    # --fire-rebuild-db: the server migrates again rather than clone its templates.
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}", "--fire-rebuild-db")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*shop: spawned from*",
            "*- fire server shop output -*",
            "*this view fails after writing*",
            "*= fire servers spawned =*",
            "shop: *shop.sock: fire *, protocol 3, Django *, "
            "databases default=sqlite, other=sqlite, test databases default migrated in * s "
            "and saved as a template, other migrated in * s and saved as a template",
        ]
    )


def test_xdist_spawns_one_server_per_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path
):
    monkeypatch.setenv("DJFIRE_TEST_DB", "sqlite-file")
    monkeypatch.setenv("DJFIRE_TEST_DIR", str(tmp_path))
    pytester.makepyfile(
        test_workers=textwrap.dedent("""
        import os
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_own_database(fire_remotes, n):
            shop = fire_remotes["shop"]
            name = str(shop.module("django.db").connection.settings_dict["NAME"])
            assert name.endswith("_" + os.environ["PYTEST_XDIST_WORKER"])
            shop.module("shop.factories").ProductFactory()
            assert shop.module("shop.models").Product.objects.count() == 1
    """)
    )
    result = pytester.runpytest_subprocess("-n", "2", f"--fire-spawn=shop={MANAGE}")
    result.assert_outcomes(passed=4)


def test_beside_pytest_django(pytester: pytest.Pytester, sqlite_shop):
    pytester.makepyfile(client_settings=CLIENT_SETTINGS)
    pytester.makepyfile(
        test_client="""
        from django.contrib.auth.models import User

        def test_both_sides(db, fire_remotes):
            User.objects.create(username="local")
            remote = fire_remotes["shop"].module("shop.factories").UserFactory(username="far")
            assert User.objects.get().username == "local"
            assert remote.username == "far"

        def test_both_sides_rolled_back(db, fire_remotes):
            users = fire_remotes["shop"].module("django.contrib.auth.models").User
            assert User.objects.count() == 0 and users.objects.count() == 0
    """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "pytest_django",
        "--ds=client_settings",
        f"--fire-servers=shop={sqlite_shop.address}",
    )
    result.assert_outcomes(passed=2)


def test_xdist_with_an_attached_server_takes_turns_and_says_so(
    pytester: pytest.Pytester, sqlite_shop
):
    pytester.makepyfile(
        test_turns="""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_alone_on_the_server(fire_remotes, n):
            shop = fire_remotes["shop"]
            shop.module("shop.factories").ProductFactory()
            assert shop.module("shop.models").Product.objects.count() == 1
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", f"--fire-servers=shop={sqlite_shop.address}")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*attached servers are shared by the xdist workers*"])


def test_a_server_that_fails_to_start_shows_its_output(pytester: pytest.Pytester):
    pytester.makepyfile(test_shop=SHOP_TESTS)
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}:settings=no_such_settings")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*fire server 'shop' exited (*runfireserver*); its output:*",
            "*No module named 'no_such_settings'*",
        ]
    )
    # The second test says so in a line, not "not available" from a dead socket, and
    # not the whole output again.
    exited = [line for line in result.stdout.lines if line.startswith("fire server 'shop' exited")]
    assert len(exited) == 1
    result.stdout.fnmatch_lines(
        ["*fire server 'shop' is not available (the first test that needed it shows why)*"]
    )
    # The summary shows the output's last lines too, not "its output:)" and nothing.
    result.stdout.fnmatch_lines(
        [
            "*= fire servers spawned =*",
            "shop: *shop.sock: exited (*runfireserver*); its last output:",
            "    *No module named 'no_such_settings'*",
        ]
    )


def test_a_server_that_fails_to_start_silently_says_it_printed_nothing(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(test_shop=SHOP_TESTS)
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}:python=/bin/true")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*fire server 'shop' exited (/bin/true *runfireserver*); it printed nothing",
            "*= fire servers spawned =*",
            "shop: *shop.sock: exited (/bin/true *runfireserver*); it printed nothing",
        ]
    )


def test_a_service_without_djfire_installed_is_told_what_to_add(pytester: pytest.Pytester):
    pytester.makepyfile(test_shop=SHOP_TESTS)
    spec = f"shop={MANAGE}:settings=djproject.settings_without_djfire"
    result = pytester.runpytest(f"--fire-spawn={spec}")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*Unknown command: 'runfireserver'*",
            'fire: runfireserver is unknown there: add "djfire" to INSTALLED_APPS in '
            "djproject.settings_without_djfire (and install djfire in the service's "
            "environment)",
        ]
    )


def test_a_missing_server_is_explained_once_and_briefly(pytester: pytest.Pytester):
    pytester.makepyfile(test_shop=SHOP_TESTS + SHOP_TESTS.replace("def test_", "def test_2_"))
    result = pytester.runpytest("--fire-servers=shop=/tmp/no-such-fire.sock")
    result.assert_outcomes(errors=4)
    output = result.stdout.str()
    errors = output[output.index("= ERRORS =") : output.index("short test summary info")]
    assert errors.count("python manage.py runfireserver /tmp/no-such-fire.sock") == 1
    assert errors.count("the first test that needed it shows why") == 3
    assert "def fire_remotes" not in output  # no fixture source in the report
    assert len(result.stdout.lines) < 60


def test_a_misspelt_or_left_out_server_name_says_which(pytester: pytest.Pytester, sqlite_shop):
    pytester.makepyfile(
        test_names="""
        import pytest

        pytestmark = pytest.mark.fire(servers=["shop"])

        def test_misspelt(fire_remote):
            fire_remote("shp")

        def test_left_out(fire_remote):
            fire_remote("other")

        def test_not_configured(fire_remotes):
            try:
                fire_remotes["billing"]
            except KeyError as error:
                assert type(error).__name__ == "UnknownServer"
                raise
        """
    )
    other = "other=/tmp/no-such-fire.sock"  # configured, never used
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address},{other}")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*no fire server named 'shp' (configured: shop, other); did you mean 'shop'?; to "
            "add one: --fire-servers shp=ADDRESS (a running server) or --fire-spawn "
            "shp=PATH/TO/manage.py, or the FIRE_SERVERS variable, or the fire_servers / "
            "fire_spawn ini options",
            "*fire server 'other' is configured but not among this test's servers (shop)*",
            "E   *UnknownServer: no fire server named 'billing' (configured: shop, other); to "
            "add one: --fire-servers billing=ADDRESS (a running server) or --fire-spawn "
            "billing=PATH/TO/manage.py, or the FIRE_SERVERS variable, or the fire_servers / "
            "fire_spawn ini options",
        ]
    )


def test_a_wider_fixture_asking_for_a_test_s_remotes_is_pointed_to_its_own(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(
        test_widths="""
        import pytest

        @pytest.fixture(scope="module")
        def catalogue(fire_remotes):
            return fire_remotes["shop"]

        @pytest.fixture(scope="session")
        def everything(fire_changes):
            return fire_changes

        def test_module(catalogue):
            pass

        def test_session(everything):
            pass
        """
    )
    result = pytester.runpytest("--fire-servers=shop=/tmp/no-such-fire.sock")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ScopeMismatch*fire_remotes with a module scoped request*",
            "*- fire -*",
            "fire_remotes belongs to one test (its data is rolled back when the test ends): a "
            "module-scoped fixture takes fire_module_scope instead, name -> Remote inside a "
            "scope that lasts for the module (its data is rolled back after the module's last "
            "test)",
            "*ScopeMismatch*fire_changes with a session scoped request*",
            "*- fire -*",
            "fire_changes belongs to one test (its data is rolled back when the test ends), and "
            "fire has no session-wide scope: make the data in a module-scoped fixture that "
            "takes fire_module_scope, or in each test",
        ]
    )


@pytest.fixture
def tcp_shop(tmp_path) -> Iterator[tuple[str, Path]]:
    """The test service on a loopback CURVE TCP port: (address, key directory).

    The key directory holds ``server/`` (the server's pair), ``clients/`` (the allowed
    client's pair, ``ci``) and ``servers/shop.key`` (the server's public key, by name).
    """
    keys = tmp_path / "keys"
    create_key_pair(keys / "server", "shop")
    create_key_pair(keys / "clients", "ci")
    (keys / "servers").mkdir()
    shutil.copy(keys / "server" / "shop.key", keys / "servers" / "shop.key")
    command = [sys.executable, str(MANAGE), "runfireserver", "tcp://127.0.0.1:0"]
    command += ["--curve-secret", str(keys / "server" / "shop.key_secret")]
    process, line = supervise.start(
        [*command, "--curve-clients", str(keys / "clients"), "--http", "127.0.0.1:0"],
        timeout=120,
        cwd=MANAGE.parent,
        env={**os.environ, "DJFIRE_TEST_DB": "sqlite", "DJFIRE_TEST_DIR": str(tmp_path)},
        stderr=subprocess.STDOUT,
    )
    endpoint, _ = supervise.parse_ready(line) or ("", None)
    yield endpoint, keys
    supervise.stop(process)
    assert process.stdout is not None
    process.stdout.close()


def test_attach_over_tcp_with_curve_keys_from_options_environment_or_ini(
    pytester: pytest.Pytester, tcp_shop, monkeypatch: pytest.MonkeyPatch
):
    address, keys = tcp_shop
    secret, servers = keys / "clients" / "ci.key_secret", keys / "servers"
    pytester.makepyfile(test_shop=SHOP_TESTS)
    monkeypatch.setenv("FIRE_SERVERS", f"shop={address}")
    for variable in ("FIRE_CURVE_SECRET", "FIRE_CURVE_SERVERS"):
        monkeypatch.delenv(variable, raising=False)
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fire server 'shop' is on TCP, which needs CURVE keys*"])
    pytester.makeini(f"[pytest]\nfire_curve_secret = {secret}\nfire_curve_servers = {servers}\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"  shop: {address}: fire *"])
    pytester.makeini("[pytest]\nfire_curve_secret = no-such.key_secret\n")
    monkeypatch.setenv("FIRE_CURVE_SECRET", str(secret))  # the environment beats the ini
    monkeypatch.setenv("FIRE_CURVE_SERVERS", str(keys / "clients"))  # no shop.key there
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*no public key for fire server 'shop'*"])
    result = pytester.runpytest(f"--fire-curve-servers={servers}")  # an option beats both
    result.assert_outcomes(passed=2)


def test_a_client_key_the_server_does_not_allow_is_a_clear_error(
    pytester: pytest.Pytester, tcp_shop, tmp_path: Path
):
    address, keys = tcp_shop
    create_key_pair(tmp_path / "stranger", "stranger")
    pytester.makepyfile(test_shop=SHOP_TESTS)
    result = pytester.runpytest(
        f"--fire-servers=shop={address}",
        f"--fire-curve-secret={tmp_path / 'stranger' / 'stranger.key_secret'}",
        f"--fire-curve-servers={keys / 'servers'}",
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*refused this client's CURVE key*--curve-clients directory*"])


def test_fire_testcase_classes_use_the_run_servers(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_classes="""
        from fire.testing import FireTestCase

        class Shop(FireTestCase):
            fire_servers = {"shop": "/tmp/not-the-run-server.sock"}

            def test_makes_a_product(self):
                shop = self.fire_remotes["shop"]
                shop.module("shop.factories").ProductFactory(name="lamp")
                assert shop.module("shop.models").Product.objects.count() == 1

            def test_sees_nothing_of_the_previous_test(self):
                products = self.fire_remotes["shop"].module("shop.models").Product.objects
                assert products.count() == 0

        def test_the_fixture_and_the_class_share_one_server(fire_remote):
            assert fire_remote("shop") is Shop.fire_remotes["shop"]
        """
    )
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}")
    result.assert_outcomes(passed=3)


DATA_CHANGES_TESTS = """
import pytest

def test_fails_after_writing(fire_remotes, fire_changes):
    models = fire_remotes["shop"].module("shop.models")
    kept = models.Category.objects.create(name="lamps")
    models.Category.objects.filter(id=kept.id).update(name="lights")
    models.Category.objects.create(name="gone").delete()
    tables = fire_changes()["shop"]["default"]["tables"]
    assert tables["shop_category"]["inserted"] == [{"id": kept.id, "name": "lights"}]
    assert False, "on purpose"

@pytest.mark.fire(exclude_changes=["shop_category"])
def test_fails_with_an_excluded_table(fire_remotes):
    models = fire_remotes["shop"].module("shop.models")
    models.Category.objects.create(name="hidden")
    models.Product.objects.create(name="shown", price="9.50")
    assert False, "on purpose"

def test_passes_after_writing(fire_remotes):
    fire_remotes["shop"].module("shop.models").Category.objects.create(name="quiet")
"""


def test_a_failing_test_s_report_shows_its_data_changes(
    pytester: pytest.Pytester, sqlite_shop, tmp_path: Path
):
    pytester.makepyfile(test_changes=DATA_CHANGES_TESTS)
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}", f"--junitxml={junit}")
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*- fire data changes: shop (sqlite) -*",
            "shop_category  +1",
            "  + id=* name='lights'",
        ]
    )
    output = result.stdout.str()
    excluded = output[output.index("_ test_fails_with_an_excluded_table _") :]
    excluded = excluded[excluded.index("- fire data changes: shop (sqlite) -") :]
    assert "shop_product  +1" in excluded
    assert "name='shown' price=Decimal('9.50') created=20" in excluded
    assert "shop_category" not in excluded and "name='hidden'" not in excluded
    assert "quiet" not in output  # a passing test shows nothing by default
    xml = junit.read_text()
    assert '<property name="fire_data_changes" value="{' in xml
    assert "&quot;lights&quot;" in xml

    always = pytester.runpytest(
        f"--fire-servers=shop={sqlite_shop.address}", "--fire-data-changes=always", "-rP"
    )
    always.assert_outcomes(failed=2, passed=1)
    assert "name='quiet'" in always.stdout.str()

    off = pytester.runpytest(
        f"--fire-servers=shop={sqlite_shop.address}", "--fire-data-changes=off"
    )
    off.assert_outcomes(failed=2, passed=1)
    assert "fire data changes: shop" not in off.stdout.str()
    off.stdout.fnmatch_lines(["*no data changes are captured*"])


def test_fire_testcase_failures_show_data_changes_in_pytest(pytester: pytest.Pytester, sqlite_shop):
    pytester.makepyfile(
        test_case="""
        from fire.testing import FireTestCase

        class Orders(FireTestCase):
            fire_servers = {"shop": "unused"}

            def test_fails_after_writing(self):
                shop = self.fire_remotes["shop"]
                shop.module("shop.models").Category.objects.create(name="from a class")
                self.fail("on purpose")
        """
    )
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- fire data changes: shop (sqlite) -*",
            "shop_category  +1",
            "  + id=* name='from a class'",
        ]
    )


def test_a_server_both_attached_and_spawned_says_where_each_came_from(
    pytester: pytest.Pytester,
):
    pytester.makepyfile(test_shop=SHOP_TESTS)
    pytester.makeini(f"[pytest]\nfire_spawn =\n    shop={MANAGE}\n")
    result = pytester.runpytest("--fire-servers=shop=/tmp/shop.sock")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*fire server 'shop' is both attached (from --fire-servers) and spawned "
            "(from fire_spawn in tox.ini): name each server once. To attach to the running "
            "server, leave it out of fire_spawn in tox.ini*"
        ]
    )


@pytest.mark.postgres
def test_a_suite_split_over_ci_jobs_runs_each_share_with_its_own_servers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    """pytest-split by recorded durations: two jobs at once on one PostgreSQL, each with
    its own spawned server and test databases (a suffix per job), share the suite."""
    require_postgres()
    monkeypatch.setenv("DJFIRE_TEST_DB", "postgres")
    tests = SHOP_TESTS + SHOP_TESTS.replace("def test_", "def test_again_")
    pytester.makepyfile(test_shop=tests)
    run = os.getpid()
    stored = pytester.runpytest_subprocess(
        f"--fire-spawn=shop={MANAGE}:suffix=store{run}", "--store-durations"
    )
    stored.assert_outcomes(passed=4)
    jobs = [
        subprocess.Popen(
            [
                sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                f"--fire-spawn=shop={MANAGE}:suffix=job{group}_{run}",
                "--splits", "2", "--group", str(group), "-rA",
            ],
            cwd=pytester.path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for group in (1, 2)
    ]  # fmt: skip
    outputs = [job.communicate(timeout=120)[0].decode() for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    ran = sorted(
        line.split("::")[1]
        for output in outputs
        for line in output.splitlines()
        if line.startswith("PASSED test_shop.py::")
    )
    names = ["makes_a_product", "sees_nothing_of_the_previous_test"]
    assert ran == sorted([f"test_{n}" for n in names] + [f"test_again_{n}" for n in names])


def test_the_spin_wait_ini_option_reaches_the_connections(pytester: pytest.Pytester, sqlite_shop):
    pytester.makepyfile(
        test_spin="""
        def test_spin_wait(fire_remote):
            shop = fire_remote("shop")
            assert shop._transport.spin_wait == 0.0
            assert shop.module("shop.models").Product.objects.count() == 0
        """
    )
    pytester.makeini("[pytest]\nfire_spin_wait = 0\n")
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("option", ["fire_spin_wait", "fire_timeout", "fire_scope_wait"])
@pytest.mark.parametrize("value", ["-0.5", "soon"])
def test_a_bad_number_of_seconds_is_a_usage_error(
    pytester: pytest.Pytester, option: str, value: str
):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    pytester.makeini(f"[pytest]\n{option} = {value}\n")
    result = pytester.runpytest("--fire-servers=shop=/tmp/shop.sock")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option} must be 0 or more seconds, not '{value}'*"])


def test_the_next_test_s_scope_is_asked_for_only_when_it_uses_the_server(
    pytester: pytest.Pytester, sqlite_shop
):
    pytester.makepyfile(
        test_ahead=f"""
        import fire
        import pytest

        def holder():
            with fire.connect({sqlite_shop.address!r}) as other:
                return other.info()["extensions"]["scopes"]["holder"]

        def depth(remote):
            return remote.info()["extensions"]["scopes"]["depth"]

        def test_makes_a_product(fire_remote):
            shop = fire_remote("shop")
            shop.module("shop.factories").ProductFactory(name="lamp")
            assert depth(shop) == 1

        @pytest.mark.fire(on_commit="capture")
        def test_other_scope_arguments(fire_remote):
            shop = fire_remote("shop")
            assert depth(shop) == 1  # the scope asked for ahead was closed, not nested in
            assert shop.module("shop.models").Product.objects.count() == 0

        def test_without_fire_leaves_the_server_free():
            assert holder() is None

        def test_uses_fire_again(fire_remote):
            assert depth(fire_remote("shop")) == 1
        """
    )
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}", "-p", "no:randomly")
    result.assert_outcomes(passed=4)


def test_a_run_leaves_no_temporary_directories(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    """Passing, failing, or with a server that failed to start: every directory the run
    made (the socket's, the supervisor's keys) is gone when it ends (issue 23)."""
    import tempfile

    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def recording(*args, **kwargs):
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    pytester.makepyfile(
        test_shop=SHOP_TESTS
        + "\ndef test_fails(fire_remotes):\n    assert fire_remotes['shop'] is None\n"
    )
    pytester.runpytest(f"--fire-spawn=shop={MANAGE}").assert_outcomes(passed=2, failed=1)
    assert made
    pytester.runpytest(f"--fire-spawn=shop={MANAGE}:settings=no_such_settings")
    assert len(made) >= 2
    left = [folder for folder in made if os.path.exists(folder)]
    assert left == [], f"the run left {left}"
