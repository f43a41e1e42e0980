"""The plugin's fixtures. Each says what it provides; fire is imported on first use."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .activate import activate

if TYPE_CHECKING:
    from fire.client.remote import Remote

    from .servers import FireServers

__all__ = [
    "begin_next_scopes",
    "check_ended_scopes",
    "fire_changes",
    "fire_class_scope",
    "fire_module_scope",
    "fire_remote",
    "fire_remotes",
]

_MARKER_OPTIONS = frozenset(("servers", "transactional", "on_commit", "exclude_changes"))


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
    return {name: _remote(servers, name) for name in names}


def _remote(servers: FireServers, name: str) -> Remote:
    """One server's Remote; an unavailable one fails the test with the cause, not a trace.

    The first test that needs the server shows why it is unavailable; the others say so
    in a line, instead of repeating the cause and the fixture's source for every test.
    """
    from fire.errors import FireError

    try:
        return servers.remote(name)
    except LookupError as exc:
        problem = str(exc)
    except FireError as exc:
        problem = str(exc)
        if servers.reported_unavailable(name):
            problem = (
                f"fire server {name!r} is not available (the first test that needed it shows why)"
            )
    pytest.fail(problem, pytrace=False)  # outside `except`: no chained cause in the report


@contextlib.contextmanager
def _scoped(
    remotes: dict[str, Remote], kind: str, wait: float, of: str, **options: Any
) -> Iterator[dict[str, Remote]]:
    opened: list[Remote] = []
    try:
        for remote in remotes.values():
            remote.begin_scope(kind, wait=wait, **options)
            opened.append(remote)
        yield remotes
    finally:
        # A test's scope ends without waiting: its answer comes with the next reply,
        # where a failure names the test (`of`) it belongs to.
        for remote in reversed(opened):
            remote.end_scope(wait=kind != "test", of=of)


def _scope_options(options: dict[str, Any]) -> dict[str, Any]:
    return {key: options[key] for key in ("transactional", "on_commit") if key in options}


@pytest.fixture(scope="module")
def fire_module_scope(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> Remote, inside a scope that lasts for the module.

    Data a module-scoped fixture makes through these remotes lives until the module's
    last test, and is rolled back then.
    """
    servers = activate(request.config)
    remotes = _chosen(servers, marker_options(request.node))
    with _scoped(remotes, "module", servers.config.scope_wait, request.node.nodeid) as scoped:
        yield scoped


@pytest.fixture(scope="class")
def fire_class_scope(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> Remote, inside a scope that lasts for the test class (``setUpTestData``)."""
    servers = activate(request.config)
    remotes = _chosen(servers, marker_options(request.node))
    with _scoped(remotes, "class", servers.config.scope_wait, request.node.nodeid) as scoped:
        yield scoped


@pytest.fixture
def fire_remotes(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> connected Remote; the test runs inside a test scope on each server.

    Everything the test makes on those servers is rolled back when it ends (or, with
    ``@pytest.mark.fire(transactional=True)``, committed and then flushed).
    ``@pytest.mark.fire(servers=["accounts"])`` limits the servers.
    """
    servers = activate(request.config)
    options = marker_options(request.node)
    remotes = _chosen(servers, options)
    with _scoped(
        remotes,
        "test",
        servers.config.scope_wait,
        f"test {request.node.nodeid}",
        **_test_scope(servers, options),
    ) as scoped:
        yield scoped


def _test_scope(servers: FireServers, options: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a test's ``begin_scope``, besides its kind and wait."""
    return {"data_changes": servers.config.data_changes != "off", **_scope_options(options)}


#: Marks that may skip a test (or not run it): such a test is never asked for ahead.
_MAY_NOT_RUN = ("skip", "skipif", "xfail")


def begin_next_scopes(servers: FireServers, item: pytest.Item) -> list[str]:
    """Ask the servers of `item`, the next test, for its test scope now, if it uses one.

    Called as the previous test ends (its scope ended, and any wider scope it alone
    needed): the servers open the scope while pytest reports and sets up, and the
    test's ``begin_scope`` takes it (`fire.Remote.begin_next_scope`). Only servers
    connected already are asked; any trouble is left for the test's own set-up to
    report. A test that may be skipped (a skip, skipif or xfail mark) costs the servers
    nothing, and a transactional one is never asked for ahead (an unused one's end
    would flush every table). Returns the names of the servers asked.
    """
    from fire.errors import FireError

    # fire_remote and fire_changes need fire_remotes. pytest.Item does not promise
    # fixturenames: another plugin's item (not a test function) may have none.
    if "fire_remotes" not in getattr(item, "fixturenames", ()):
        return []
    if any(item.get_closest_marker(mark) is not None for mark in _MAY_NOT_RUN):
        return []
    try:
        options = marker_options(item)
    except pytest.UsageError:
        return []
    if options.get("transactional"):
        return []
    asked: list[str] = []
    names = options.get("servers") or servers.names
    for name in [names] if isinstance(names, str) else names:
        remote = servers.connected(name)
        if remote is not None:
            try:
                remote.begin_next_scope(
                    "test", wait=servers.config.scope_wait, **_test_scope(servers, options)
                )
            except FireError:
                break
            asked.append(name)
    return asked


def check_ended_scopes(servers: FireServers, asked: list[str]) -> None:
    """Raise a failure to end a test's scope on the servers the next test does not use.

    A test's scope ends without waiting (its answer comes with the next reply); where
    no next test reads that reply, this does, in the test's own teardown.
    """
    for name in servers.names:
        remote = servers.connected(name)
        if remote is not None and name not in asked:
            remote.sync()


def excluded_changes(node: pytest.Item, servers: FireServers) -> list[str]:
    """The ``fire_data_changes_exclude`` ini patterns, then the marker's ``exclude_changes``."""
    marked = marker_options(node).get("exclude_changes") or ()
    return [
        *servers.config.data_changes_exclude,
        *([marked] if isinstance(marked, str) else marked),
    ]


@pytest.fixture
def fire_changes(
    request: pytest.FixtureRequest, fire_remotes: dict[str, Remote]
) -> Callable[[], dict[str, Any]]:
    """``fire_changes()``: server name -> the rows this test changed so far there.

    Per server, ``{alias: {"vendor", "tables": {table: {"inserted", "updated",
    "deleted"}}}}``, netted per primary key, with the excluded tables and columns left
    out (see `fire.runners.data_changes`). Needs ``--fire-data-changes`` other than ``off``.
    """
    from fire.runners import data_changes

    patterns = excluded_changes(request.node, activate(request.config))
    return lambda: data_changes.collect(fire_remotes, patterns)


@pytest.fixture
def fire_remote(
    request: pytest.FixtureRequest, fire_remotes: dict[str, Remote]
) -> Callable[[str], Remote]:
    """``fire_remote("accounts")``: one server's Remote, inside the test's scope."""

    def get(name: str) -> Remote:
        try:
            return fire_remotes[name]
        except KeyError:
            raise LookupError(_not_in_this_test(name, list(fire_remotes), request)) from None

    return get


def _not_in_this_test(name: str, present: list[str], request: pytest.FixtureRequest) -> str:
    """Why `name` is not among the test's servers: misspelt, or left out by the marker."""
    import difflib

    configured = activate(request.config).names
    if name not in configured:
        close = difflib.get_close_matches(name, configured, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"no fire server named {name!r} (configured: {', '.join(configured)}){hint}"
    return (
        f"fire server {name!r} is configured but not among this test's servers "
        f"({', '.join(present)}): @pytest.mark.fire(servers=...) on the test, its class "
        f"or its module leaves it out; add {name!r} there"
    )
