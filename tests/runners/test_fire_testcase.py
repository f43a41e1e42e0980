"""FireTestCase and FireTestMixin, run by unittest (and pytest-django) against real servers."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from fire.runners.spawn import SpawnedServer

from ..conftest import CLIENT_SETTINGS, MANAGE

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CLASS_SCOPE_TESTS = """
from fire.testing import FireTestCase

class WithClassData(FireTestCase):
    fire_servers = {"shop": "ADDRESS"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        factories = cls.fire_remotes["shop"].module("shop.factories")
        cls.category = factories.CategoryFactory(name="class data")

    def categories(self):
        models = self.fire_remotes["shop"].module("shop.models")
        return sorted(models.Category.objects.values_list("name", flat=True))

    def test_a_adds_its_own(self):
        self.fire_remotes["shop"].module("shop.factories").CategoryFactory(name="test data")
        self.assertEqual(["class data", "test data"], self.categories())

    def test_b_sees_only_the_class_data(self):
        self.assertEqual(["class data"], self.categories())


class Later(FireTestCase):
    fire_servers = {"shop": "ADDRESS"}

    def test_nothing_is_left(self):
        models = self.fire_remotes["shop"].module("shop.models")
        self.assertEqual(0, models.Category.objects.count())
"""


def run_unittest(pytester: pytest.Pytester, *args: str, cwd: Path | None = None):
    with pytest.MonkeyPatch.context() as patch:
        if cwd is not None:
            patch.chdir(cwd)
        return pytester.run(sys.executable, "-m", "unittest", *args, timeout=120)


def test_class_data_lives_for_the_class_and_goes_after(
    pytester: pytest.Pytester, sqlite_shop: SpawnedServer
) -> None:
    pytester.makepyfile(test_classes=CLASS_SCOPE_TESTS.replace("ADDRESS", sqlite_shop.address))
    result = run_unittest(pytester, "test_classes")
    assert result.ret == 0, result.stderr.str()
    result.stderr.fnmatch_lines(["Ran 3 tests in *", "OK"])


def test_relative_paths_resolve_beside_the_test_module(
    pytester: pytest.Pytester, sqlite_shop: SpawnedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sockets = pytester.mkdir("sockets")
    os.symlink(sqlite_shop.address, sockets / "shop.sock")
    suite = pytester.mkdir("suite")
    (suite / "test_classes.py").write_text(
        CLASS_SCOPE_TESTS.replace("ADDRESS", "../sockets/shop.sock")
    )
    elsewhere = pytester.mkdir("elsewhere")
    result = run_unittest(pytester, "discover", "-s", str(suite), cwd=elsewhere)
    assert result.ret == 0, result.stderr.str()
    result.stderr.fnmatch_lines(["Ran 3 tests in *", "OK"])

    # FIRE_SERVERS wins over the class attribute; its relative paths follow the cwd.
    (suite / "test_classes.py").write_text(CLASS_SCOPE_TESTS.replace("ADDRESS", "nowhere.sock"))
    monkeypatch.setenv("FIRE_SERVERS", "shop=../sockets/shop.sock")
    result = run_unittest(pytester, "discover", "-s", str(suite), cwd=elsewhere)
    assert result.ret == 0, result.stderr.str()


def test_a_dead_server_fails_the_class_at_once_with_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_dead=CLASS_SCOPE_TESTS.replace("ADDRESS", "../no-such-dir/accounts.sock")
    )
    missing = pytester.path.parent / "no-such-dir" / "accounts.sock"
    result = run_unittest(pytester, "test_dead")
    # No test ran (each class failed in setUpClass): unittest exits 1 for the errors, or,
    # since Python 3.12, 5 for a run without a test, errors or not.
    assert result.ret == (5 if sys.version_info >= (3, 12) else 1)
    result.stderr.fnmatch_lines(
        [
            f"*fire server 'shop' is not available: no fire server at {missing}*",
            f"*python manage.py runfireserver {missing}*",
        ]
    )
    result.stderr.fnmatch_lines(["FAILED (errors=2)"])  # one per class, no test ran


NAMING_MISTAKES = """
from fire.testing import FireTestCase

class EarlyUse(FireTestCase):
    fire_servers = {"shop": "ADDRESS"}

    @classmethod
    def setUpClass(cls):
        cls.fire_remotes["shop"]
        super().setUpClass()

    def test_never_runs(self):
        pass


class WrongName(FireTestCase):
    fire_servers = {"shop": "ADDRESS"}

    def test_misspelt(self):
        try:
            self.fire_remotes["shp"]
        except KeyError as error:
            assert type(error).__name__ == "UnknownServer"
            raise
"""


def test_naming_mistakes_say_the_fix(pytester: pytest.Pytester, sqlite_shop: SpawnedServer) -> None:
    pytester.makepyfile(test_mistakes=NAMING_MISTAKES.replace("ADDRESS", sqlite_shop.address))
    result = run_unittest(pytester, "test_mistakes")
    result.stderr.fnmatch_lines(
        [
            "*EarlyUse.fire_remotes is not set yet: FireTestMixin.setUpClass connects to the "
            "servers and sets it; call super().setUpClass() first in EarlyUse.setUpClass, "
            "then use the servers",
        ]
    )
    result.stderr.fnmatch_lines(
        [
            "*UnknownServer: no fire server named 'shp' in WrongName (its servers: shop); did "
            "you mean 'shop'?; to add one: fire_servers = {'shp': 'PATH/TO/shp.sock'} or "
            "fire_spawn = {'shp': 'PATH/TO/manage.py'} on the class, or FIRE_SERVERS=shp=ADDRESS",
        ]
    )
    result.stderr.fnmatch_lines(["FAILED (errors=2)"])


def test_mixin_beside_django_test_case(
    pytester: pytest.Pytester, sqlite_shop: SpawnedServer
) -> None:
    pytester.makepyfile(client_settings=CLIENT_SETTINGS)
    pytester.makepyfile(
        test_client=textwrap.dedent(f"""
        from django.contrib.auth.models import User
        from django.test import TestCase

        from fire.testing import FireTestMixin

        class BothSides(FireTestMixin, TestCase):
            fire_servers = {{"shop": "{sqlite_shop.address}"}}

            @classmethod
            def setUpTestData(cls):
                User.objects.create(username="local")
                shop = cls.fire_remotes["shop"]
                shop.module("shop.factories").UserFactory(username="remote")

            def remote_names(self):
                users = self.fire_remotes["shop"].module("django.contrib.auth.models").User
                return sorted(users.objects.values_list("username", flat=True))

            def test_one(self):
                User.objects.create(username="local 2")
                self.fire_remotes["shop"].module("shop.factories").UserFactory(username="x")
                self.assertEqual(2, User.objects.count())
                self.assertEqual(["remote", "x"], self.remote_names())

            def test_two(self):
                self.assertEqual(1, User.objects.count())
                self.assertEqual(["remote"], self.remote_names())

        class AfterwardsNothing(FireTestMixin, TestCase):
            fire_servers = {{"shop": "{sqlite_shop.address}"}}

            def test_empty(self):
                users = self.fire_remotes["shop"].module("django.contrib.auth.models").User
                self.assertEqual(0, users.objects.count())
                self.assertEqual(0, User.objects.count())
        """)
    )
    result = pytester.runpytest_subprocess("-p", "pytest_django", "--ds=client_settings")
    result.assert_outcomes(passed=3)


def test_a_proxy_stored_in_set_up_test_data(
    pytester: pytest.Pytester, sqlite_shop: SpawnedServer
) -> None:
    """Django deep-copies setUpTestData attributes for each test: a proxy survives that."""
    pytester.makepyfile(client_settings=CLIENT_SETTINGS)
    pytester.makepyfile(
        test_client=textwrap.dedent(f"""
        from unittest import mock

        from django.test import TestCase

        from fire.testing import FireTestMixin

        class RemoteTestData(FireTestMixin, TestCase):
            fire_servers = {{"shop": "{sqlite_shop.address}"}}

            @classmethod
            def setUpTestData(cls):
                factories = cls.fire_remotes["shop"].module("shop.factories")
                cls.category = factories.CategoryFactory(name="made once")
                cls.several = {{"categories": [cls.category]}}

            def test_one(self):
                self.assertEqual("made once", self.category.name)
                self.assertEqual(self.several, {{"categories": [mock.ANY]}})
                self.category.name = "renamed in test_one"
                self.category.save()

            def test_two(self):
                models = self.fire_remotes["shop"].module("shop.models")
                self.assertEqual(
                    ["made once"], list(models.Category.objects.values_list("name", flat=True))
                )
                self.assertEqual(self.category, models.Category.objects.get())
        """)
    )
    result = pytester.runpytest_subprocess("-p", "pytest_django", "--ds=client_settings")
    result.assert_outcomes(passed=2)


def test_spawned_servers_start_once_and_stop_at_exit(pytester: pytest.Pytester) -> None:
    pid_file = pytester.path / "server.pid"
    pytester.makepyfile(
        test_spawn=f"""
        from fire.testing import FireTestCase

        class First(FireTestCase):
            fire_spawn = {{"shop": "{MANAGE}"}}

            def test_talks_to_its_own_server(self):
                shop = self.fire_remotes["shop"]
                shop.module("shop.factories").ProductFactory(name="lamp")
                names = shop.module("shop.models").Product.objects.values_list("name", flat=True)
                self.assertEqual(["lamp"], list(names))
                with open("{pid_file}", "w") as f:
                    f.write(str(shop.info()["pid"]))

        class Second(FireTestCase):
            fire_spawn = {{"shop": "{MANAGE}"}}

            def test_same_server_and_clean(self):
                shop = self.fire_remotes["shop"]
                with open("{pid_file}") as f:
                    self.assertEqual(int(f.read()), shop.info()["pid"])
                self.assertEqual(0, shop.module("shop.models").Product.objects.count())
        """
    )
    result = run_unittest(pytester, "test_spawn")
    assert result.ret == 0, result.stderr.str()
    result.stderr.fnmatch_lines(["Ran 2 tests in *", "OK"])
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # the server stopped with the test process
        os.kill(pid, 0)


DATA_CHANGES_TESTS = """
from fire.testing import FireTestCase

class Orders(FireTestCase):
    fire_servers = {"shop": "ADDRESS"}
    fire_data_changes_exclude = ["*.created"]

    def test_fails_after_writing(self):
        shop = self.fire_remotes["shop"]
        shop.module("shop.models").Category.objects.create(name="lamps")
        changes = self.fire_changes()["shop"]["default"]["tables"]
        self.assertEqual([{"id": 1, "name": "lamps"}], changes["shop_category"]["inserted"])
        self.fail("on purpose")

    def test_passes_after_writing(self):
        self.fire_remotes["shop"].module("shop.models").Category.objects.create(name="quiet")


class Off(FireTestCase):
    fire_servers = {"shop": "ADDRESS"}
    fire_data_changes = "off"

    def test_fails_without_a_report(self):
        self.fire_remotes["shop"].module("shop.models").Category.objects.create(name="unseen")
        self.fail("on purpose")
"""


def test_a_failing_test_s_message_shows_its_data_changes(
    pytester: pytest.Pytester, sqlite_shop: SpawnedServer
) -> None:
    pytester.makepyfile(test_changes=DATA_CHANGES_TESTS.replace("ADDRESS", sqlite_shop.address))
    result = run_unittest(pytester, "test_changes")
    assert result.ret == 1
    text = result.stderr.str()
    failure = text[text.index("FAIL: test_fails_after_writing") :]
    assert "AssertionError: on purpose\n\n---- fire data changes: shop (sqlite) ----" in failure
    assert "shop_category  +1\n  + id=1 name='lamps'" in failure
    assert "quiet" not in text  # a passing test shows nothing
    assert "unseen" not in text  # nor a class that turned the report off
    result.stderr.fnmatch_lines(["Ran 3 tests in *", "FAILED (failures=2)"])
