"""A server lost mid-run is said once: how it ended and its last output in the test that
was running, one line in each later test, a line in the summary, and a failed run.

Real servers, killed for real (SIGKILL, a status of its own) from inside the run."""

from __future__ import annotations

import sys

import pytest

from ..conftest import MANAGE, spawn_shop

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

#: Four tests; the second ends its server (`END`) in the middle of its work.
SUITE = """
import os
import signal

from pytest_fire.activate import active_runner

def test_first(fire_remotes):
    assert fire_remotes["shop"].module("shop.models").Product.objects.count() == 0

def test_checkout(request, fire_remotes):
    shop = fire_remotes["shop"]
    shop.module("builtins").print("charging the card of order 7", flush=True)
    server = active_runner(request.config).spawned["shop"]
    END
    shop.module("shop.models").Product.objects.count()

def test_third(fire_remotes):
    pass

def test_fourth(fire_remote):
    fire_remote("shop")
"""

KILL = "os.kill(server.pid, signal.SIGKILL)"
#: What each later test that needs the server says, in one line.
LATER = "fire server 'shop' died earlier (signal 9, during test_checkout): see that test's error"


def _errors(output: str, summary: str = "= fire servers spawned =") -> str:
    """The ERRORS and FAILURES sections of a run's output (up to fire's `summary`)."""
    start = min(output.index(title) for title in ("= ERRORS =", "= FAILURES =") if title in output)
    return output[start : output.index(summary)]


def test_a_killed_server_is_said_once_then_in_a_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shop=SUITE.replace("END", KILL))
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}")
    result.assert_outcomes(passed=1, failed=1, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*_ test_checkout _*",
            "E *fire.errors.ServerUnavailable: the fire server at *shop.sock went away "
            "while handling a request",
            "E *fire server 'shop' died (signal 9) during test_checkout; its last output:",
            "E *    charging the card of order 7",
        ]
    )
    errors = _errors(result.stdout.str())
    for test in ("test_third", "test_fourth"):
        section = errors[errors.index(f"_ ERROR at setup of {test} _") :]
        section = section.split("\n", 1)[1]
        # One line, then the next test's title or the end: no traceback, no fixture source.
        assert section.splitlines()[0] == LATER
        assert section.splitlines()[1].startswith(("_", "=")) or not section.splitlines()[1]
    assert errors.count("Traceback") == 0
    assert errors.count("def fire_remotes") == 0
    assert errors.count("died (signal 9) during test_checkout") == 1
    result.stdout.fnmatch_lines(
        [
            "*= fire servers spawned =*",
            "shop: *shop.sock: died (signal 9) during test_checkout; "
            "2 later tests failed because of it",
        ]
    )


def test_a_server_that_exits_says_its_status(pytester: pytest.Pytester) -> None:
    exit_3 = 'shop.module("os")._exit(3)'
    pytester.makepyfile(test_shop=SUITE.replace("END", exit_3))
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}")
    result.assert_outcomes(passed=1, failed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "E *fire server 'shop' exited with status 3 during test_checkout; its last output:",
            "E *    charging the card of order 7",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "fire server 'shop' exited earlier (status 3, during test_checkout): "
            "see that test's error",
            "*= fire servers spawned =*",
            "shop: *: exited with status 3 during test_checkout; 2 later tests failed "
            "because of it",
        ]
    )


def test_a_lost_server_fails_the_run_though_no_test_failed(pytester: pytest.Pytester) -> None:
    """The test it died in was expected to fail, and no later test needs it: the run
    fails all the same, and the summary says why."""
    pytester.makepyfile(
        test_shop=SUITE.replace("END", KILL)
        .replace("def test_checkout", "@pytest.mark.xfail\ndef test_checkout")
        .replace("import os", "import os\nimport pytest")
        .split("def test_third")[0]
    )
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}")
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*= fire servers spawned =*",
            "shop: *: died (signal 9) during test_checkout; 0 later tests failed because of it",
        ]
    )


def test_a_server_that_dies_between_calls_fails_the_test_it_died_in(
    pytester: pytest.Pytester,
) -> None:
    """No call of the test fails (the server dies after its last): its teardown says it."""
    pytester.makepyfile(test_shop=SUITE.replace("END", KILL + "; server.exited(30); return"))
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}")
    result.assert_outcomes(passed=2, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at teardown of test_checkout _*",
            "fire server 'shop' died (signal 9) during test_checkout; its last output:",
            "    charging the card of order 7",
            "*_ ERROR at setup of test_third _*",
            LATER,
        ]
    )


#: The same four tests as a FireTestCase with a server of its own (named in order).
CLASS_SUITE = f"""
import os
import signal

from fire.runners.spawn import parse_spawn_spec
from fire.testing import FireTestCase, spawned_server

class Shop(FireTestCase):
    fire_spawn = {{"shop": "{MANAGE}"}}

    def test_1_first(self):
        products = self.fire_remotes["shop"].module("shop.models").Product.objects
        self.assertEqual(0, products.count())

    def test_2_checkout(self):
        shop = self.fire_remotes["shop"]
        shop.module("builtins").print("charging the card of order 7", flush=True)
        os.kill(spawned_server(parse_spawn_spec("shop={MANAGE}")).pid, signal.SIGKILL)
        shop.module("shop.models").Product.objects.count()

    def test_3_third(self):
        pass

    def test_4_fourth(self):
        self.fire_remotes["shop"]

class ShopAgain(FireTestCase):  # after Shop: unittest sorts the classes by name
    fire_spawn = {{"shop": "{MANAGE}"}}

    def test_later(self):
        pass
"""

CLASS_LATER = (
    "fire server 'shop' died earlier (signal 9, during test_2_checkout): see that test's error"
)


def test_a_fire_testcase_under_unittest_says_it_once_then_in_a_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_shop=CLASS_SUITE)
    result = pytester.run(sys.executable, "-m", "unittest", "test_shop", timeout=120)
    assert result.ret == 1
    output = result.stderr.str()
    result.stderr.fnmatch_lines(
        [
            "ERROR: test_2_checkout *",
            "fire.errors.ServerUnavailable: the fire server at *shop.sock went away while "
            "handling a request",
            "fire server 'shop' died (signal 9) during test_2_checkout; its last output:",
            "    charging the card of order 7",
        ]
    )
    for test in ("test_3_third", "test_4_fourth", "setUpClass (test_shop.ShopAgain)"):
        error = output[output.index(f"ERROR: {test}") :].split("-" * 70 + "\n", 1)[1]
        assert error.splitlines()[0] == f"fire.runners.lost.ServerLost: {CLASS_LATER}"
    assert output.count("Traceback") == 1  # the test it died in, only
    result.stderr.fnmatch_lines(
        [
            "FAILED (errors=4)",
            "fire server shop at *shop.sock: died (signal 9) during test_2_checkout; 3 later "
            "tests failed because of it",
        ]
    )


def test_a_fire_testcase_under_pytest_says_it_once_then_in_a_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_shop=CLASS_SUITE)
    result = pytester.runpytest(f"--fire-spawn=shop={MANAGE}")  # the class uses the run's
    result.assert_outcomes(passed=1, failed=3, errors=1)
    result.stdout.fnmatch_lines(["*_ ERROR at setup of ShopAgain.test_later _*", CLASS_LATER])
    result.stdout.fnmatch_lines(
        [
            "*_ Shop.test_2_checkout _*",
            "E *fire server 'shop' died (signal 9) during test_2_checkout; its last output:",
            "E *    charging the card of order 7",
            "*_ Shop.test_3_third _*",
            CLASS_LATER,
            "*_ Shop.test_4_fourth _*",
            CLASS_LATER,
            "*= fire servers spawned =*",
            "shop: *shop.sock: died (signal 9) during test_2_checkout; 3 later tests failed "
            "because of it",
        ]
    )


def test_an_attached_server_that_stops_answering_is_said_once_then_in_a_line(
    pytester: pytest.Pytester,
) -> None:
    """A server the run did not start: no exit status or output to show, its address."""
    server = spawn_shop("sqlite")
    try:
        kill = f"os.kill({server.pid}, signal.SIGKILL)"
        pytester.makepyfile(test_shop=SUITE.replace("END", kill).replace("server = ", "# "))
        result = pytester.runpytest(f"--fire-servers=shop={server.address}")
    finally:
        server.stop()
    result.assert_outcomes(passed=1, failed=1, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    later = (
        f"fire server 'shop' at {server.address} stopped answering earlier (during "
        "test_checkout): see that test's error"
    )
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_third _*",
            later,
            "*_ ERROR at setup of test_fourth _*",
            later,
            "*_ test_checkout _*",
            f"E *fire server 'shop' at {server.address} stopped answering during test_checkout",
            "*= fire servers lost =*",
            f"shop: {server.address}: stopped answering during test_checkout; 2 later tests "
            "failed because of it",
        ]
    )
    assert "Traceback" not in _errors(result.stdout.str(), "= fire servers lost =")


def test_under_xdist_the_worker_s_lost_server_reaches_the_summary_and_fails_the_run(
    pytester: pytest.Pytester,
) -> None:
    """The worker that lost it hands its line over; the controller shows it and fails
    the run, though the only test it died in was expected to fail."""
    pytester.makepyfile(
        test_shop=SUITE.replace("END", KILL)
        .replace("def test_checkout", "@pytest.mark.xfail\ndef test_checkout")
        .replace("import os", "import os\nimport pytest")
        .split("def test_third")[0]
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "loadfile", f"--fire-spawn=shop={MANAGE}"
    )
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*= fire servers lost =*",
            "[[]gw?] shop: *shop-gw?.sock: died (signal 9) during test_checkout; 0 later tests "
            "failed because of it",
        ]
    )
