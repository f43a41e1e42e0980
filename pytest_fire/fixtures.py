"""The plugin's fixtures. Each says what it provides; fire is imported lazily."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fire.remote import Remote

    from .servers import FireServers

__all__ = ["fire_class_scope", "fire_module_scope", "fire_remote", "fire_remotes", "servers_key"]

servers_key: pytest.StashKey[FireServers] = pytest.StashKey()
_MARKER_OPTIONS = frozenset(("servers", "transactional", "on_commit"))


def _servers(config: pytest.Config) -> FireServers:
    try:
        return config.stash[servers_key]
    except KeyError:
        raise pytest.UsageError("the fire plugin is not configured (-p no:fire?)") from None


def marker_options(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    """The merged keyword arguments of the ``fire`` markers on `node` (closest wins)."""
    options: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers("fire"))):
        if marker.args:
            raise pytest.UsageError("@pytest.mark.fire takes keyword arguments only")
        options.update(marker.kwargs)
    unknown = set(options) - _MARKER_OPTIONS
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.fire: unknown argument(s) {', '.join(sorted(unknown))}; "
            f"it takes {', '.join(sorted(_MARKER_OPTIONS))}"
        )
    return options


def _chosen(servers: FireServers, options: dict[str, Any]) -> dict[str, Remote]:
    names = options.get("servers") or servers.names
    if isinstance(names, str):
        names = [names]
    if not names:
        raise pytest.UsageError(
            "no fire servers configured: use --fire-servers NAME=PATH, FIRE_SERVERS, or the "
            "fire_servers / fire_spawn ini options"
        )
    return {name: servers.remote(name) for name in names}


@contextlib.contextmanager
def _scoped(
    remotes: dict[str, Remote], kind: str, wait: float, **options: Any
) -> Iterator[dict[str, Remote]]:
    opened: list[Remote] = []
    try:
        for remote in remotes.values():
            remote.begin_scope(kind, wait=wait, **options)
            opened.append(remote)
        yield remotes
    finally:
        # A test's scope ends without waiting: its answer comes with the next reply.
        for remote in reversed(opened):
            remote.end_scope(wait=kind != "test")


def _scope_options(options: dict[str, Any]) -> dict[str, Any]:
    return {key: options[key] for key in ("transactional", "on_commit") if key in options}


@pytest.fixture(scope="module")
def fire_module_scope(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> Remote, inside a scope that lasts for the module.

    Data a module-scoped fixture makes through these remotes lives until the module's
    last test, and is rolled back then.
    """
    servers = _servers(request.config)
    remotes = _chosen(servers, marker_options(request.node))
    with _scoped(remotes, "module", servers.config.scope_wait) as scoped:
        yield scoped


@pytest.fixture(scope="class")
def fire_class_scope(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> Remote, inside a scope that lasts for the test class (``setUpTestData``)."""
    servers = _servers(request.config)
    remotes = _chosen(servers, marker_options(request.node))
    with _scoped(remotes, "class", servers.config.scope_wait) as scoped:
        yield scoped


@pytest.fixture
def fire_remotes(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> connected Remote; the test runs inside a test scope on each server.

    Everything the test makes on those servers is rolled back when it ends (or, with
    ``@pytest.mark.fire(transactional=True)``, committed and then flushed).
    ``@pytest.mark.fire(servers=["accounts"])`` limits the servers.
    """
    servers = _servers(request.config)
    options = marker_options(request.node)
    remotes = _chosen(servers, options)
    with _scoped(remotes, "test", servers.config.scope_wait, **_scope_options(options)) as scoped:
        yield scoped


@pytest.fixture
def fire_remote(fire_remotes: dict[str, Remote]) -> Callable[[str], Remote]:
    """``fire_remote("accounts")``: one server's Remote, inside the test's scope."""

    def get(name: str) -> Remote:
        try:
            return fire_remotes[name]
        except KeyError:
            raise LookupError(
                f"fire server {name!r} is not in this test's servers "
                f"({', '.join(fire_remotes)}); check @pytest.mark.fire(servers=...)"
            ) from None

    return get
