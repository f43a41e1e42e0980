"""Set the plugin up only when the run uses fire, so an unused plugin costs nothing.

Importing ``fire`` pulls in zmq, msgpack, tblib and asyncio (~100 modules; docs/design.md
has the time it takes). Like pytest-django with Django, the plugin imports it only when the run
configures fire servers (options, ``FIRE_SERVERS``, ini) or a test uses a fire fixture;
this module itself imports nothing of fire at import time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fire.runners.core import Runner

__all__ = ["activate", "active_runner", "configured", "deactivate", "runner_key"]

#: The run's runner (`fire.runners.core.Runner`): its servers, scopes and data changes.
runner_key: pytest.StashKey[Runner] = pytest.StashKey()
#: The runner `fire.testing` used before this run's, put back as the run ends.
_previous_key: pytest.StashKey[Runner | None] = pytest.StashKey()
#: The name the run's `pytest_fire.interrupt.Interrupts` is registered under.
_INTERRUPTS = "fire-interrupts"


def configured(config: pytest.Config) -> bool:
    """Whether the run names fire servers to attach to or spawn (cheap: reads settings only)."""
    return bool(
        config.getoption("fire_servers")
        or config.getoption("fire_spawn")
        or os.environ.get("FIRE_SERVERS", "").strip()
        or config.getini("fire_servers")
        or config.getini("fire_spawn")
    )


def active_runner(config: pytest.Config) -> Runner | None:
    """The run's runner if the plugin has been activated, else None (imports nothing)."""
    return config.stash.get(runner_key, None)


def activate(config: pytest.Config) -> Runner:
    """The run's runner, set up on first need: check the fire package, read the settings.

    A foreign ``fire`` package (Google's python-fire) or bad settings are usage errors
    that name the fix.
    """
    runner = active_runner(config)
    if runner is not None:
        return runner
    from fire_origin import ForeignFireError, check_fire_package

    try:
        check_fire_package()
    except ForeignFireError as exc:
        raise pytest.UsageError(str(exc)) from None
    from fire.errors import FireError
    from fire.runners.core import Runner
    from fire.testing import use_runner

    from .config import read_config
    from .debugging import start_debugging

    try:
        settings = read_config(config)
        start_debugging(config, settings)
        runner = Runner(settings)
    except FireError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[runner_key] = runner
    config.stash[_previous_key] = use_runner(runner)  # FireTestCase classes use this run's
    from .interrupt import Interrupts

    config.pluginmanager.register(Interrupts(runner, config), _INTERRUPTS)
    return runner


def deactivate(config: pytest.Config) -> None:
    """At the run's end: close its runner (connections, spawned servers), put back the
    runner `fire.testing` had before."""
    runner = active_runner(config)
    if runner is not None:
        from fire.testing import use_runner

        use_runner(config.stash[_previous_key])
        del config.stash[runner_key]
        interrupts = config.pluginmanager.unregister(name=_INTERRUPTS)
        if interrupts is not None:
            interrupts.close()
        runner.close()
    from .debugging import stop_debugging

    stop_debugging(config)
