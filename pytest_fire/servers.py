"""The run's fire servers: attached ones connected once, spawned ones started once.

Under pytest-xdist each worker spawns its own servers (own socket, test databases
suffixed with the worker id, e.g. ``test_shop_gw0``); attached servers are shared by all
workers, whose tests then take turns (the server's scope lock).
"""

from __future__ import annotations

import os

from fire.client.remote import Remote
from fire.errors import FireError
from fire.net.curve import client_keys
from fire.runners.spawn import SpawnedServer
from fire.testing import register_client_keys, shared_remote

from .config import FireConfig

__all__ = ["FireServers"]


class FireServers:
    """Connections by name; spawned servers start on first use and stop at session end."""

    def __init__(self, config: FireConfig) -> None:
        self.config = config
        self.worker = os.environ.get("PYTEST_XDIST_WORKER")
        self.spawned: dict[str, SpawnedServer] = {}
        self._failed: dict[str, FireError] = {}  # a server that did not start is not retried
        self._remotes: dict[str, Remote] = {}
        self._reported: set[str] = set()  # unavailable servers a test has shown the cause of

    @property
    def names(self) -> list[str]:
        return [*self.config.attached, *self.config.spawned]

    def address(self, name: str) -> str:
        """The address of server `name`; a TCP server's CURVE keys are registered with it."""
        if name in self.config.attached:
            address = self.config.attached[name]
            if address.startswith("tcp://"):
                keys = client_keys(name, self.config.curve_secret, self.config.curve_servers)
                register_client_keys(address, keys)
            return address
        return self._spawn(name).address

    def run_address(self, name: str) -> str | None:
        """The address of this run's server `name`, or None: for FireTestCase classes."""
        return self.address(name) if name in self.names else None

    def _spawn(self, name: str) -> SpawnedServer:
        if name in self._failed:
            raise self._failed[name]
        server = self.spawned.get(name)
        if server is None:
            server = SpawnedServer(self.config.spawned[name], suffix=self.worker)
            self.spawned[name] = server
            try:
                server.start()
            except FireError as exc:
                self._failed[name] = exc
                raise
            if server.client_keys is not None:
                register_client_keys(server.address, server.client_keys)
        return server

    def remote(self, name: str) -> Remote:
        if name not in self.config.attached and name not in self.config.spawned:
            known = ", ".join(self.names) or "none"
            raise LookupError(
                f"no fire server named {name!r} (configured: {known}); add it with "
                f"--fire-servers {name}=PATH, FIRE_SERVERS or the fire_servers ini option"
            )
        remote = self.connected(name)
        if remote is None:
            remote = shared_remote(
                name,
                self.address(name),
                timeout=self.config.timeout,
                spin_wait=self.config.spin_wait,
            )
            self._remotes[name] = remote
        return remote

    def connected(self, name: str) -> Remote | None:
        """`name`'s Remote if this run has connected to it already (and it is open)."""
        remote = self._remotes.get(name)
        return None if remote is None or remote.closed else remote

    def reported_unavailable(self, name: str) -> bool:
        """Whether a test already showed why `name` is unavailable (then marks it so)."""
        if name in self._reported:
            return True
        self._reported.add(name)
        return False

    def close(self) -> None:
        for remote in self._remotes.values():
            remote.close()
        self._remotes.clear()
        for server in self.spawned.values():
            server.stop()
