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
    from .servers import FireServers

__all__ = ["activate", "active_servers", "configured", "servers_key"]

servers_key: pytest.StashKey[FireServers] = pytest.StashKey()


def configured(config: pytest.Config) -> bool:
    """Whether the run names fire servers to attach to or spawn (cheap: reads settings only)."""
    return bool(
        config.getoption("fire_servers")
        or config.getoption("fire_spawn")
        or os.environ.get("FIRE_SERVERS", "").strip()
        or config.getini("fire_servers")
        or config.getini("fire_spawn")
    )


def active_servers(config: pytest.Config) -> FireServers | None:
    """The run's servers if the plugin has been activated, else None (imports nothing)."""
    return config.stash.get(servers_key, None)


def activate(config: pytest.Config) -> FireServers:
    """The run's servers, set up on first need: check the fire package, read the settings.

    A foreign ``fire`` package (Google's python-fire) or bad settings are usage errors
    that name the fix.
    """
    servers = active_servers(config)
    if servers is not None:
        return servers
    from fire_origin import ForeignFireError, check_fire_package

    try:
        check_fire_package()
    except ForeignFireError as exc:
        raise pytest.UsageError(str(exc)) from None
    from fire.errors import FireError
    from fire.testing import use_run_servers

    from .config import read_config
    from .servers import FireServers

    try:
        fire_config = read_config(config)
    except FireError as exc:
        raise pytest.UsageError(str(exc)) from None
    servers = FireServers(fire_config)
    config.stash[servers_key] = servers
    use_run_servers(servers.run_address)  # FireTestCase classes use this run's servers
    return servers
