"""Fire servers in memory and in real processes, and connections to them.

Tests of the client's and the server's logic (proxies, references, errors, sessions)
run in memory: a server's `Dispatcher` in the test process, reached through a
`Loopback` transport (`memory_remote`, `connect_memory`); a module of them makes
``remote`` the in-memory one. Tests of what needs a socket or a process (framing,
CURVE, timeouts, kill -9, the command line) use real servers: one process is shared by
the whole session (`shared_server`) for the tests that leave it as they found it; tests
that kill, stop, signal or overload a server start their own through `server_factory`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import (
    ExchangeCounter,
    Keys,
    ServerProcess,
    make_keys,
    serve_argv,
    short_tmpdir,
    start_server,
)

import fire
from fire.net.loopback import Loopback
from fire.server.dispatch import Dispatcher

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In these tests an exception ignored in ``__del__`` (a proxy's) is a failure."""
    unraisable = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(unraisable)


@pytest.fixture(scope="session")
def shared_server() -> Iterator[ServerProcess]:
    """One `python -m fire serve` process for every test that leaves it as it found it."""
    directory = short_tmpdir()
    server = start_server(serve_argv(directory / "shared.sock"), directory)
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def connect_memory() -> Iterator[Callable[..., fire.Remote]]:
    """Connect in memory: ``connect_memory(server=None, **remote_options)``.

    `server` is a `Loopback` (``Loopback(Dispatcher, values=…)``); without one, the
    connections of a test share one plain server. Every connection is closed, and every
    server stopped, after the test.
    """
    servers: list[Loopback] = []
    remotes: list[fire.Remote] = []
    plain: list[Loopback] = []

    def connect(server: Loopback | None = None, **options: Any) -> fire.Remote:
        if server is None:
            if not plain:
                plain.append(Loopback(Dispatcher))
            server = plain[0]
        if server not in servers:
            servers.append(server)
        options.setdefault("timeout", 10)
        remote = fire.Remote(transport=server.transport(), **options)
        remotes.append(remote)
        return remote

    yield connect
    for remote in remotes:
        remote.close()
    for server in servers:
        server.close()


@pytest.fixture
def memory_remote(connect_memory: Callable[..., fire.Remote]) -> fire.Remote:
    """A connection named "shared" to a server in memory (its own `Dispatcher`)."""
    return connect_memory(name="shared")


@pytest.fixture
def remote(shared_server: ServerProcess) -> Iterator[fire.Remote]:
    """A fresh connection to the shared server, named "shared", closed after the test."""
    with fire.connect(shared_server.path, timeout=10, name="shared") as connection:
        yield connection


@pytest.fixture
def helpers(remote: fire.Remote) -> Any:
    """The `remote_helpers` module on the shared server."""
    return remote.module("remote_helpers")


@pytest.fixture
def exchanges(remote: fire.Remote) -> ExchangeCounter:
    """Counts the round trips of the `remote` connection."""
    return ExchangeCounter(remote)


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    """A short temporary directory under /tmp (the Unix socket length limit)."""
    directory = short_tmpdir()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def server_factory(tmp_dir: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start dedicated server processes (``factory(argv, umask=…)``); all killed afterwards."""
    started: list[ServerProcess] = []

    def factory(argv: list[str], **kwargs: Any) -> ServerProcess:
        server = start_server(argv, tmp_dir, **kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.kill()


@pytest.fixture
def own_server(server_factory: Callable[..., ServerProcess], tmp_dir: Path) -> ServerProcess:
    """A dedicated `python -m fire serve` process, for tests that stop or kill it."""
    return server_factory(serve_argv(tmp_dir / "own.sock"))


@pytest.fixture
def keys(tmp_dir: Path) -> Keys:
    """CURVE key files made by `python -m fire keys`: a server's, a client's, a stranger's."""
    return make_keys(tmp_dir)
