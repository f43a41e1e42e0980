"""Ctrl-C in a pytest run: the run's runner hears of it first (`fire.runners.interrupt`)."""

from __future__ import annotations

import shutil
import tempfile
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fire.runners.core import Runner
    from fire.runners.interrupt import Leftover

__all__ = ["Interrupts"]

#: The ``workerinput`` key of the directory where workers report their servers.
_REPORTS_KEY = "fire_servers_reports"


class Interrupts:
    """A plugin object registered while the run uses fire: on Ctrl-C it tells the runner
    (`Runner.interrupt`), before the terminal reporter formats the traceback, whose
    arguments' reprs (proxies) would otherwise ask a server that may be busy or gone.

    The terminal reporter formats the whole traceback of the ``KeyboardInterrupt``,
    with each frame's source and arguments, and shows its last line only (unless
    ``--full-trace``): 0.5-1.2 s of CPU on a loaded machine, in each process of an
    xdist run, while the servers tear down. It gets the last frame alone instead
    (a worker's is never shown).

    An interrupted pytest-xdist worker ends once its session's fixtures are torn down
    (a local test database a session fixture made is dropped): it stops its servers and
    exits (`fire.runners.interrupt.end_worker`), without its own summary, which nobody
    sees and the whole run would wait for. Each worker reports the servers it spawned
    to the controller, before each test and as it stops them, so that the controller's
    second Ctrl-C names them (`fire.runners.interrupt.write_report`).
    """

    def __init__(self, runner: Runner, config: pytest.Config) -> None:
        self.runner = runner
        self.config = config
        workerinput = getattr(config, "workerinput", None)
        #: Where this worker reports to (None: not a worker, or its controller asked not).
        self._report_to: str | None = (workerinput or {}).get(_REPORTS_KEY)
        self._reported: list[Leftover] | None = None
        #: The controller's directory of its workers' reports, made for the first worker.
        self._reports: str | None = None
        if workerinput is None:
            runner.other_servers = self._workers_servers

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.runner.interrupt()
        self._report()
        if self.runner.worker is not None or not self.config.option.fulltrace:
            _keep_last_frame(excinfo)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self._report()  # the servers the test's fixtures spawned

    @pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.runner.interrupted and self.runner.worker is not None:
            from fire.runners.interrupt import end_worker

            def stop_servers() -> None:
                self.runner.close()
                self._report()  # those that did not stop in time

            end_worker(stop_servers)

    @pytest.hookimpl(optionalhook=True)  # pytest-xdist's, on the controller
    def pytest_configure_node(self, node: Any) -> None:
        if self._reports is None:
            self._reports = tempfile.mkdtemp(prefix="fire-workers-")
        node.workerinput[_REPORTS_KEY] = self._reports

    def close(self) -> None:
        """At the run's end: the controller removes its workers' reports."""
        if self._reports is not None:
            shutil.rmtree(self._reports, ignore_errors=True)
            self._reports = None

    def _report(self) -> None:
        """A worker: report its servers to the controller, if they changed."""
        worker = self.runner.worker
        if self._report_to is None or worker is None:
            return
        from fire.runners.interrupt import write_report

        servers = self.runner.leftover_servers()
        if servers != self._reported:
            write_report(self._report_to, worker, servers)
            self._reported = servers

    def _workers_servers(self) -> list[Leftover]:
        """The controller: its workers' servers, as last reported (the second Ctrl-C's
        line names them; the run exits at once, so the reports go with it)."""
        if self._reports is None:
            return []
        from fire.runners.interrupt import read_reports

        servers = read_reports(self._reports)
        self.close()
        return servers


def _keep_last_frame(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Cut `excinfo`'s traceback to the frame its one shown line names (the last one not
    hidden by ``__tracebackhide__``, as pytest finds it)."""
    traceback = excinfo.traceback
    for index in range(len(traceback) - 1, -1, -1):
        if not traceback[index].ishidden(excinfo):
            excinfo.traceback = traceback[index:]
            return
