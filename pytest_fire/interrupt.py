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
    arguments' reprs (proxies) would otherwise ask a server that may be busy or gone."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.runner.interrupt()
