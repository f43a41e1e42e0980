"""pdb in a service, driven from the test's terminal (issue 25 §4).

pytest runs under a pseudo-terminal (as tests/runners/test_ctrl_c.py does), spawning the
test service (tests/djproject, SQLite); these tests type into it as a person would:

- ``--pdb`` on a test that fails on a remote exception opens pdb on the service's frame:
  ``p local_variable`` is answered from the service, ``c`` returns to the run, and the
  next test finds the failed test's row gone (its scope rolled back);
- ``breakpoint()`` in a view, during a live request, stops in the test's terminal with
  ``--fire-pdb``; in a fire call too, which waits past its reply timeout meanwhile;
- without ``--fire-pdb`` or ``-s``, the breakpoint is skipped with one warning and the
  request completes;
- ``--trace``, then ``s`` on a fire call, stops at the service function's first line,
  never in fire's client; ``c`` there returns to the test's pdb at its next line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import MANAGE
from tests.runners.terminal import Terminal as PseudoTerminal

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=no"]

FAILING_TEST = """
def test_fails_in_the_service(fire_remotes):
    shop = fire_remotes["shop"]
    shop.module("shop.models").Product.objects.create(name="made in the test", price="1.00")
    shop.module("shop.debugging").fail_with_local("the test's argument")


def test_the_row_is_gone(fire_remotes):
    count = fire_remotes["shop"].module("shop.models").Product.objects.count()
    assert count == 0, f"{count} products left"
"""

LIVE_REQUEST_TEST = """
import urllib.request
from djfire.helpers import DjangoRemote


def test_breakpoint_in_a_view(fire_remotes):
    url = DjangoRemote(fire_remotes["shop"]).live_url
    with urllib.request.urlopen(url + "/breakpoint/", timeout=120) as response:
        body = response.read().decode()
    assert body == "went on after the breakpoint: stopped in a view"
"""

FIRE_CALL_TEST = """

def test_breakpoint_in_a_fire_call(fire_remotes):
    shop = fire_remotes["shop"]
    timeout, shop.timeout = shop.timeout, 1  # the person at the prompt takes longer
    try:
        assert shop.module("builtins").breakpoint() is None
    finally:
        shop.timeout = timeout
    assert shop.module("builtins").len("after") == 5
"""

STEPPED_TEST = """
def test_steps_into_the_service(fire_remotes):
    shop = fire_remotes["shop"]
    counted = shop.module("shop.debugging").count_with_local("the test's argument")
    assert counted == "stepped into: the test's argument (0 products)"
"""


class Terminal(PseudoTerminal):
    """pytest on `path`'s tests under a pseudo-terminal, spawning the test service."""

    def __init__(self, path: Path, *options: str, http: bool = False) -> None:
        spec = f"shop={MANAGE}:python={sys.executable}" + (":http=127.0.0.1:0" if http else "")
        env = {**os.environ, "DJFIRE_TEST_DB": "sqlite-file", "DJFIRE_TEST_DIR": str(path)}
        env.pop("PYTHONBREAKPOINT", None)
        super().__init__(path, [*PYTEST, *options, f"--fire-spawn={spec}", str(path)], env)

    def expect(self, done: Callable[[str], bool], seconds: float = 120) -> str:
        """Read until `done(output)`; the output (asserted done, with the output shown)."""
        assert self.read_until(done, seconds), self.output
        return self.output

    def prompt(self, count: int = 1) -> str:
        """Wait for pdb's `count`-th prompt."""
        return self.expect(lambda out: out.count("(Pdb) ") >= count)

    def finish(self, seconds: float = 120) -> int:
        """pytest's exit status, once it ended (reading its output meanwhile)."""
        status = self.wait_exit(seconds)
        return status if status is not None else self.process.wait(5)


def test_pdb_opens_in_the_service_frame_and_c_returns_with_the_scope_rolled_back(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_failing.py").write_text(FAILING_TEST)
    terminal = Terminal(tmp_path, "--pdb")
    try:
        output = terminal.prompt()
        assert "entering PDB in fire server 'shop'" in output
        assert "shop/debugging.py" in output and "fail_with_local()" in output
        terminal.type("p local_variable")
        terminal.expect(lambda out: '"seen in the service: the test\'s argument"' in out)
        terminal.type("p products")  # what the failing call counted: the test's row
        terminal.prompt(3)
        assert terminal.output.rpartition("p products")[2].split()[0] == "1"
        # A query typed now runs in the service, in the test's transaction: its row.
        terminal.type("p list(Product.objects.values_list('name', flat=True))")
        terminal.prompt(4)
        assert "['made in the test']" in terminal.output.rpartition("values_list")[2]
        terminal.type("c")
        assert terminal.finish() == 1, terminal.output
        assert "1 failed, 1 passed" in terminal.output  # the row is gone in the next test
    finally:
        terminal.close()


def test_breakpoint_in_a_view_or_a_fire_call_stops_in_the_test_terminal_with_fire_pdb(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_breakpoints.py").write_text(LIVE_REQUEST_TEST + FIRE_CALL_TEST)
    terminal = Terminal(tmp_path, "--fire-pdb", http=True)
    try:
        output = terminal.prompt()  # in the view, during the live request
        assert "fire: breakpoint() in the service" in output
        assert "stop_at_breakpoint()" in output
        terminal.type("p local_variable")
        terminal.expect(lambda out: "'stopped in a view'" in out)
        terminal.type("c")
        terminal.prompt(3)  # in the fire call, on the server's own thread
        time.sleep(2)  # a person reading: longer than the call's 1 s reply timeout
        terminal.type("c")
        assert terminal.finish() == 0, terminal.output
        assert "2 passed" in terminal.output
    finally:
        terminal.close()


def _run_without_terminal(
    tmp_path: Path, spec_options: str = ""
) -> subprocess.CompletedProcess[str]:
    """pytest over `tmp_path`'s tests, no terminal and no debugger asked for, with the shop
    spawned (its spec ends with `spec_options`); it must pass."""
    spec = f"shop={MANAGE}:python={sys.executable}{spec_options}"
    env = {**os.environ, "DJFIRE_TEST_DB": "sqlite-file", "DJFIRE_TEST_DIR": str(tmp_path)}
    env.pop("PYTHONBREAKPOINT", None)
    result = subprocess.run(
        [*PYTEST, f"--fire-spawn={spec}", "-W", "always", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_breakpoint_without_fire_pdb_is_skipped_with_one_warning(tmp_path: Path) -> None:
    (tmp_path / "test_live.py").write_text(
        LIVE_REQUEST_TEST + "\n\ndef test_again(fire_remotes):\n    test_breakpoint_in_a_view"
        "(fire_remotes)\n"
    )
    result = _run_without_terminal(tmp_path, ":http=127.0.0.1:0")
    assert "2 passed, 1 warning" in result.stdout, result.stdout
    warning = "fire: breakpoint() at "
    assert result.stdout.count(warning) == 1, result.stdout
    assert "debugging.py:18 skipped: no test run attached a debugger" in result.stdout
    assert "--fire-pdb" in result.stdout


#: A breakpoint() the server reaches after the test that caused it has ended, before the
#: next one starts (the conftest holds the run there): its "skipped" line reaches the
#: run between the two tests' reports.
LATE_BREAKPOINT_TEST = """
def test_leaves_a_breakpoint_behind(fire_remotes):
    shop = fire_remotes["shop"]
    shop.module("threading").Timer(0.3, shop.module("builtins").breakpoint).start()


def test_next(fire_remotes):
    assert fire_remotes["shop"].module("os").getpid()
"""

LATE_BREAKPOINT_CONFTEST = """
import time


def pytest_runtest_logfinish(nodeid, location):
    if nodeid.endswith("test_leaves_a_breakpoint_behind"):
        time.sleep(2)
"""


def test_a_skipped_breakpoint_s_late_line_is_warned_of_by_the_next_test(tmp_path: Path) -> None:
    (tmp_path / "test_late.py").write_text(LATE_BREAKPOINT_TEST)
    (tmp_path / "conftest.py").write_text(LATE_BREAKPOINT_CONFTEST)
    result = _run_without_terminal(tmp_path)
    assert "2 passed, 1 warning" in result.stdout, result.stdout
    assert result.stdout.count("fire: breakpoint() at ") == 1, result.stdout
    assert "test_late.py::test_next" in result.stdout  # warned of by the test that saw it


def test_trace_steps_into_a_fire_call_and_c_returns_to_the_test(tmp_path: Path) -> None:
    (tmp_path / "test_stepped.py").write_text(STEPPED_TEST)
    terminal = Terminal(tmp_path, "--trace")
    try:
        assert "-> shop = fire_remotes" in terminal.prompt()  # the test's first line
        terminal.type("n")
        assert "-> counted = shop.module" in terminal.prompt(2)
        terminal.type("s")  # into the service's function, at its first line
        output = terminal.prompt(3).rpartition("(Pdb) s")[2]
        assert "fire: stepped into shop.debugging.count_with_local() in the service" in output
        assert "shop/debugging.py" in output and "count_with_local()" in output
        assert '-> local_variable = f"stepped into: {name}"' in output
        terminal.type("n")
        terminal.prompt(4)
        terminal.type("p local_variable")  # answered by the service
        terminal.expect(lambda out: '"stepped into: the test\'s argument"' in out)
        terminal.prompt(5)
        terminal.type("c")  # back in the test's pdb, at its next line
        output = terminal.prompt(6).rpartition("(Pdb) c")[2]
        assert "-> assert counted ==" in output and "test_stepped.py" in output
        assert "fire/client" not in terminal.output  # fire's own frames never shown
        terminal.type("c")
        assert terminal.finish() == 0, terminal.output
        assert "1 passed" in terminal.output
    finally:
        terminal.close()
