"""A server lost during the run, in pytest's reports (`fire.runners.lost` says how).

The test that was running when a server died shows how it ended and the server's last
output, under its own error; each later test that needs the server fails with one line
and no traceback; the terminal summary counts them, and the run fails even when no
test failed for it. Under pytest-xdist each worker loses its own servers: it hands its
summary lines to the controller (``workeroutput``), which shows them and fails the run.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from .activate import active_runner

__all__ = [
    "fail_the_run",
    "from_worker",
    "note_lost_server",
    "shorten",
    "summary_lines",
    "write_others",
]

#: The ``workeroutput`` key of a worker's lost servers (its summary lines).
_WORKER_KEY = "fire_lost_servers"
#: The controller's: the lost servers' lines its workers handed over, each after its id.
_from_workers: pytest.StashKey[list[str]] = pytest.StashKey()


def note_lost_server(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Before `item`'s report is made: if its error came from a server the run just lost,
    add how the server ended and its last output to the error, where pytest shows it."""
    runner = active_runner(item.config)
    if runner is None or call.excinfo is None:
        return
    lost = runner.notice_loss(call.excinfo.value, during=item.name)
    if lost is not None:
        call.excinfo.value.add_note(lost.first())


def shorten(call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """A `ServerLost` error (a FireTestCase's later test, a test whose server ended
    meanwhile) is reported by its message alone: the traceback is the runner's."""
    lost = sys.modules.get("fire.runners.lost")  # imported by the runner that raised it
    excinfo = call.excinfo
    if lost is not None and excinfo is not None and isinstance(excinfo.value, lost.ServerLost):
        report.longrepr = str(excinfo.value)


def summary_lines(config: pytest.Config) -> dict[str, str]:
    """Server name -> its summary line (`LostServer.summary`), for each server lost."""
    runner = active_runner(config)
    return {lost.name: lost.summary() for lost in runner.lost} if runner is not None else {}


def fail_the_run(session: pytest.Session) -> None:
    """As the run ends: a spawned server that ended unseen is lost too, and a run that lost
    a server fails, also when no test failed for it."""
    config = session.config
    runner = active_runner(config)
    if session.exitstatus == pytest.ExitCode.INTERRUPTED:
        return  # Ctrl-C reaches the servers too: an interrupted run lost none
    lines = _worker_lines(config)
    if runner is not None:
        runner.notice_ended(during=None)
        lines += [f"{lost.name}: {lost.address}: {lost.summary()}" for lost in runner.lost]
    workeroutput = getattr(config, "workeroutput", None)  # an xdist worker's, for the controller
    if workeroutput is not None:
        workeroutput[_WORKER_KEY] = lines
    if lines and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def from_worker(node: Any) -> None:
    """On the xdist controller, as a worker ends: keep the lost servers it handed over."""
    lines = getattr(node, "workeroutput", {}).get(_WORKER_KEY, ())
    worker = getattr(getattr(node, "gateway", None), "id", "worker")
    node.config.stash.setdefault(_from_workers, []).extend(f"[{worker}] {line}" for line in lines)


def _worker_lines(config: pytest.Config) -> list[str]:
    lines: list[str] = config.stash.get(_from_workers, [])
    return list(lines)


def write_others(terminalreporter: Any, config: pytest.Config) -> None:
    """A section for the lost servers the run did not spawn (attached ones, a
    FireTestCase's own) and those of the xdist workers: the run's spawned ones have
    their line in their own section."""
    runner = active_runner(config)
    others = [lost for lost in runner.lost if lost.name not in runner.spawned] if runner else []
    lines = [f"{lost.name}: {lost.address}: {lost.summary()}" for lost in others]
    lines += _worker_lines(config)
    if lines:
        terminalreporter.section("fire servers lost")
        for line in lines:
            terminalreporter.write_line(line)
