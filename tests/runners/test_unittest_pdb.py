"""The remote debugger in a run pytest does not drive (issue 25 §4): `FireTestCase` under
``python -m unittest`` and under the result class of Django's ``manage.py test --pdb``.

Each run spawns the test service (tests/djproject, SQLite) under a pseudo-terminal
(tests/runners/terminal.py), and these tests answer pdb in it as a person would:

- with Django's ``--pdb`` result, a test failing on a remote exception opens pdb on the
  service's frame (``p local_variable`` answered from the service), ``c`` goes on, and
  the next test finds the failed test's row gone;
- ``FIRE_PDB=1`` makes ``breakpoint()`` in a service stop in the terminal;
- ``FIRE_PDB=1`` without a terminal says so in one line, and the breakpoint is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import MANAGE
from tests.runners.terminal import Terminal

CASES = f"""
import sys
import unittest

from fire.testing import FireTestCase


class ShopTest(FireTestCase):
    fire_spawn = {{"shop": {str(MANAGE)!r} + ":python=" + sys.executable}}

    def test_1_fails_in_the_service(self):
        shop = self.fire_remotes["shop"]
        shop.module("shop.models").Product.objects.create(name="made in the test", price="1")
        shop.module("shop.debugging").fail_with_local("the test's argument")

    def test_2_the_row_is_gone(self):
        count = self.fire_remotes["shop"].module("shop.models").Product.objects.count()
        self.assertEqual(count, 0, f"{{count}} products left")


class BreakpointTest(FireTestCase):
    fire_spawn = ShopTest.fire_spawn

    def test_breakpoint_in_a_fire_call(self):
        shop = self.fire_remotes["shop"]
        self.assertIsNone(shop.module("builtins").breakpoint())
        self.assertEqual(shop.module("builtins").len("after"), 5)
"""

#: What ``manage.py test --pdb`` runs the tests with: Django's PDBDebugResult.
DJANGO_PDB_RUN = """
import unittest

from django.test.runner import PDBDebugResult

unittest.main(
    module="cases",
    argv=["cases", "ShopTest"],
    testRunner=unittest.TextTestRunner(resultclass=PDBDebugResult),
)
"""


def _environment(path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DJFIRE_TEST_DB": "sqlite-file", "DJFIRE_TEST_DIR": str(path), **extra}
    env.pop("PYTHONBREAKPOINT", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    return env


def _expect(terminal: Terminal, text: str, count: int = 1) -> str:
    assert terminal.read_until(lambda out: out.count(text) >= count, 120), terminal.output
    return terminal.output


def _without_a_terminal(path: Path, *, fire_pdb: str) -> subprocess.CompletedProcess[str]:
    """``python -m unittest`` on the breakpoint case, with `fire_pdb` and no terminal."""
    (path / "cases.py").write_text(CASES)
    return subprocess.run(
        [sys.executable, "-m", "unittest", "cases.BreakpointTest"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=path,
        env=_environment(path, FIRE_PDB=fire_pdb),
        timeout=300,
    )


def test_django_pdb_result_opens_pdb_in_the_service_frame(tmp_path: Path) -> None:
    (tmp_path / "cases.py").write_text(CASES)
    (tmp_path / "django_pdb.py").write_text(DJANGO_PDB_RUN)
    terminal = Terminal(tmp_path, [sys.executable, "django_pdb.py"], _environment(tmp_path))
    try:
        output = _expect(terminal, "(Pdb) ")
        assert "Opening PDB in fire server 'shop'" in output
        assert "shop/debugging.py" in output and "fail_with_local()" in output
        terminal.type("p local_variable")
        _expect(terminal, '"seen in the service: the test\'s argument"')
        terminal.type("c")
        assert terminal.wait_exit(120) == 1, terminal.output
        assert "Ran 2 tests" in terminal.output
        assert "FAILED (errors=1)" in terminal.output  # the row is gone in the next test
    finally:
        terminal.close()


def test_fire_pdb_stops_at_a_service_breakpoint_in_the_unittest_terminal(
    tmp_path: Path,
) -> None:
    (tmp_path / "cases.py").write_text(CASES)
    command = [sys.executable, "-m", "unittest", "cases.BreakpointTest"]
    terminal = Terminal(tmp_path, command, _environment(tmp_path, FIRE_PDB="1"))
    try:
        output = _expect(terminal, "(Pdb) ")
        assert "fire: breakpoint() in the service" in output
        terminal.type("p __import__('django.conf').conf.settings.ROOT_URLCONF")
        _expect(terminal, "'djproject.urls'")  # the service's settings: none here
        terminal.type("c")
        assert terminal.wait_exit(120) == 0, terminal.output
        assert "Ran 1 test" in terminal.output and "OK" in terminal.output
    finally:
        terminal.close()


def test_fire_pdb_without_a_terminal_says_so_and_skips_the_breakpoint(tmp_path: Path) -> None:
    result = _without_a_terminal(tmp_path, fire_pdb="1")
    assert result.returncode == 0, result.stdout + result.stderr
    said = "fire: FIRE_PDB=1, but standard input is not a terminal"
    assert result.stderr.count(said) == 1, result.stderr
    assert "Ran 1 test" in result.stderr  # the call went on past the breakpoint


def test_fire_pdb_with_a_bad_value_names_the_ones_it_takes(tmp_path: Path) -> None:
    result = _without_a_terminal(tmp_path, fire_pdb="maybe")
    assert result.returncode != 0, result.stdout + result.stderr  # 5 on 3.12+: none ran
    assert "FIRE_PDB='maybe': expected 1 (on) or 0 (off)" in result.stderr, result.stderr
