"""Ctrl-C in a pytest run: the run's runner hears of it first (`fire.runners.interrupt`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fire.runners.core import Runner

__all__ = ["Interrupts"]


class Interrupts:
    """A plugin object registered while the run uses fire: on Ctrl-C it tells the runner
    (`Runner.interrupt`), before the terminal reporter formats the traceback, whose
    arguments' reprs (proxies) would otherwise ask a server that may be busy or gone.

    An interrupted pytest-xdist worker ends once its session's fixtures are torn down
    (a local test database a session fixture made is dropped): it stops its servers and
    exits (`fire.runners.interrupt.end_worker`), without its own summary, which nobody
    sees and the whole run would wait for.
    """

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.runner.interrupt()

    @pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.runner.interrupted and self.runner.worker is not None:
            from fire.runners.interrupt import end_worker

            end_worker(self.runner.close)
