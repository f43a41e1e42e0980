"""The plugin's fixtures. Each says what it provides; fire is imported on first use."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .activate import activate

if TYPE_CHECKING:
    import datetime

    from fire.client.clock import Clocks
    from fire.client.remote import Remote
    from fire.runners.core import Runner

__all__ = [
    "fire_changes",
    "fire_class_scope",
    "fire_module_scope",
    "fire_remote",
    "fire_remotes",
    "next_test",
]

_MARKER_OPTIONS = frozenset(
    (
        "servers",
        "transactional",
        "on_commit",
        "exclude_changes",
        "contract_state",
        "contract_exact",
        "patch",
        "freeze_time",
    )
)


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


def _names(runner: Runner, options: dict[str, Any]) -> list[str]:
    """The names of the servers the marker's options choose: all the run's by default."""
    names = options.get("servers") or runner.names
    return [names] if isinstance(names, str) else list(names)


def _chosen(runner: Runner, options: dict[str, Any]) -> dict[str, Remote]:
    names = _names(runner, options)
    if not names:
        raise pytest.UsageError(
            "no fire servers configured: use --fire-servers NAME=PATH, FIRE_SERVERS, or the "
            "fire_servers / fire_spawn ini options"
        )
    return {name: _remote(runner, name) for name in names}


def _remote(runner: Runner, name: str) -> Remote:
    """One server's Remote; an unavailable one fails the test with the cause, not a trace.

    The first test that needs the server shows why it is unavailable; the others say so
    in a line, instead of repeating the cause and the fixture's source for every test.
    A server the run lost fails each later test with its one line.
    """
    from fire.errors import FireError
    from fire.runners.lost import ServerLost

    if name not in runner.names:
        known = ", ".join(runner.names) or "none"
        pytest.fail(
            f"no fire server named {name!r} (configured: {known}); add it with "
            f"--fire-servers {name}=PATH, FIRE_SERVERS or the fire_servers ini option",
            pytrace=False,
        )
    try:
        return runner.remote(name)
    except ServerLost as exc:
        problem = str(exc)
    except FireError as exc:
        problem = str(exc)
        if runner.reported_unavailable(name):
            problem = (
                f"fire server {name!r} is not available (the first test that needed it shows why)"
            )
    pytest.fail(problem, pytrace=False)  # outside `except`: no chained cause in the report


@contextlib.contextmanager
def _scoped(
    remotes: dict[str, Remote], kind: str, of: str, **options: Any
) -> Iterator[dict[str, Remote]]:
    """`remotes` inside a scope of `kind` on each (`fire.runners.core.Scopes`)."""
    from fire.runners.core import Scopes

    scopes = Scopes(kind, of)
    try:
        scopes.begin(remotes.values(), **options)
        yield remotes
    finally:
        scopes.end()


def _test_scope(runner: Runner, options: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a test's ``begin_scope``, besides its kind: the marker's and the run's."""
    from fire.runners.core import scope_arguments

    marked = {key: options[key] for key in ("transactional", "on_commit") if key in options}
    return scope_arguments(runner.config.data_changes, wait=runner.config.scope_wait, **marked)


@pytest.fixture(scope="module")
def fire_module_scope(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> Remote, inside a scope that lasts for the module.

    Data a module-scoped fixture makes through these remotes lives until the module's
    last test, and is rolled back then.
    """
    runner = activate(request.config)
    remotes = _chosen(runner, marker_options(request.node))
    with _scoped(remotes, "module", request.node.nodeid, wait=runner.config.scope_wait) as scoped:
        yield scoped


@pytest.fixture(scope="class")
def fire_class_scope(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> Remote, inside a scope that lasts for the test class (``setUpTestData``)."""
    runner = activate(request.config)
    remotes = _chosen(runner, marker_options(request.node))
    with _scoped(remotes, "class", request.node.nodeid, wait=runner.config.scope_wait) as scoped:
        yield scoped


@pytest.fixture
def fire_remotes(request: pytest.FixtureRequest) -> Iterator[dict[str, Remote]]:
    """Name -> connected Remote; the test runs inside a test scope on each server.

    Everything the test makes on those servers is rolled back when it ends (or, with
    ``@pytest.mark.fire(transactional=True)``, committed and then flushed).
    ``@pytest.mark.fire(servers=["accounts"])`` limits the servers.
    ``@pytest.mark.fire(patch={"shop": {"shop.payments.charge": {"return_value": …}}})``
    patches in the services (``fire_remotes.patches["shop"]["shop.payments.charge"]``),
    ``@pytest.mark.fire(freeze_time="2026-01-01T12:00Z")`` sets every server's clock
    (``fire_remotes.clock``), both undone when the test's scope ends; so is
    ``fire_remotes.freeze_time(...)`` (docs/control.md).
    """
    runner = activate(request.config)
    options = marker_options(request.node)
    remotes = _Remotes(_chosen(runner, options), request)
    with _scoped(
        remotes, "test", f"test {request.node.nodeid}", **_test_scope(runner, options)
    ) as scoped:
        try:
            remotes.apply_marker(options)
            yield scoped
        finally:
            remotes.stop_here()


class _Remotes(dict[str, "Remote"]):
    """``fire_remotes``: a dict whose missing name says which servers there are."""

    def __init__(self, remotes: dict[str, Remote], request: pytest.FixtureRequest) -> None:
        super().__init__(remotes)
        self._request = request
        #: Server name -> dotted target -> `fire.client.patches.Patch`, from the marker.
        self.patches: dict[str, dict[str, Any]] = {}
        #: The test's `fire.client.clock.Clocks`: the marker's, or the last freeze_time's.
        self.clock: Clocks | None = None
        self._clocks: list[Clocks] = []

    def __missing__(self, name: str) -> Remote:
        from fire.errors import UnknownServer

        raise UnknownServer(_not_in_this_test(name, list(self), self._request))

    def freeze_time(
        self, destination: str | datetime.datetime, *, tick: bool = False, here: bool = False
    ) -> Clocks:
        """Set the clock of every server of the test to `destination` (ISO 8601 with a
        time zone, or an aware datetime), frozen or ticking on, and with `here` this
        process's too; `.shift(timedelta)`, `.tick()`, `.move_to(...)` move them all.
        Undone when the test's scope ends (docs/control.md)."""
        from fire.client.clock import freeze_time

        self.clock = freeze_time(dict(self), destination, tick=tick, here=here)
        self._clocks.append(self.clock)
        return self.clock

    def apply_marker(self, options: dict[str, Any]) -> None:
        """The marker's ``patch`` and ``freeze_time``, in the test's scope just begun."""
        from fire.runners.control import apply_patches, declared_clock

        self.patches = apply_patches(self, options.get("patch"), "@pytest.mark.fire(patch=...)")
        clock = declared_clock(
            self, options.get("freeze_time"), "@pytest.mark.fire(freeze_time=...)"
        )
        if clock is not None:
            self.clock = clock
            self._clocks.append(clock)

    def stop_here(self) -> None:
        """Give this process its real clock back (the servers do at their scope's end)."""
        while self._clocks:
            self._clocks.pop().stop_here()


#: The fixtures of one test's scope; the wider scopes' fixtures, by the scope asking.
_TEST_FIXTURES = ("fire_remotes", "fire_remote", "fire_changes")
_WIDER_FIXTURES = {"module": "fire_module_scope", "class": "fire_class_scope"}


def scope_mismatch_hint(message: str) -> str | None:
    """The fix for pytest's ScopeMismatch when a wider fixture asked for a test's remotes.

    ``fire_remotes`` opens a scope per test, so a module- or class-scoped fixture cannot
    use it: it takes the scope of its own width, whose data lives as long as it does.
    """
    found = re.search(r"function scoped fixture (\w+) with a (\w+) scoped request", message)
    if found is None or found[1] not in _TEST_FIXTURES:
        return None
    asked, scope = found[1], found[2]
    wider = _WIDER_FIXTURES.get(scope)
    if wider is None:
        return (
            f"{asked} belongs to one test (its data is rolled back when the test ends), and "
            f"fire has no {scope}-wide scope: make the data in a module-scoped fixture "
            "that takes fire_module_scope, or in each test"
        )
    return (
        f"{asked} belongs to one test (its data is rolled back when the test ends): a "
        f"{scope}-scoped fixture takes {wider} instead, name -> Remote inside a scope that "
        f"lasts for the {scope} (its data is rolled back after the {scope}'s last test)"
    )


#: Marks that may skip a test (or not run it): such a test is never asked for ahead.
_MAY_NOT_RUN = ("skip", "skipif", "xfail")


def _uses_test_scope(item: pytest.Item) -> bool:
    """Whether `item` runs in ``fire_remotes``'s test scope (fire_remote and fire_changes
    need it). pytest.Item does not promise fixturenames: another plugin's item (not a
    test function) may have none."""
    return "fire_remotes" in getattr(item, "fixturenames", ())


def next_test(runner: Runner, item: pytest.Item, nextitem: pytest.Item | None) -> list[str]:
    """Once `item`'s fixtures are torn down: `fire.runners.core.Runner.next_test`.

    The servers of `nextitem`, when it runs in a test scope, are asked for it ahead:
    only servers connected already, and not for a test that may be skipped (a skip,
    skipif or xfail mark) or a transactional one. When `item` ran in a test scope, every
    other server connected is asked whether that scope ended well (no next test's begin
    reads it), and a failure fails this teardown. An item that did not (a FireTestCase,
    which does the same itself) leaves them be. Returns the names of the servers asked.
    """
    upcoming: dict[str, Remote] = {}
    options: dict[str, Any] = {}
    may_skip = False
    if nextitem is not None and _uses_test_scope(nextitem):
        may_skip = any(nextitem.get_closest_marker(mark) is not None for mark in _MAY_NOT_RUN)
        try:
            options = marker_options(nextitem)
        except pytest.UsageError:  # its own set-up says so
            may_skip = True
        for name in _names(runner, options):
            remote = runner.connected(name)
            if remote is not None:
                upcoming[name] = remote
    ended: dict[str, Remote] = {}
    if _uses_test_scope(item):
        for name in runner.names:
            remote = runner.connected(name)
            if remote is not None:
                ended[name] = remote
    return runner.next_test(
        ended, upcoming, may_skip=may_skip, during=item.name, **_test_scope(runner, options)
    )


def excluded_changes(node: pytest.Item, runner: Runner) -> list[str]:
    """The ``fire_data_changes_exclude`` ini patterns, then the marker's ``exclude_changes``."""
    marked = marker_options(node).get("exclude_changes") or ()
    return [
        *runner.config.data_changes_exclude,
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
        return (
            f"no fire server named {name!r} (configured: {', '.join(configured) or 'none'})"
            f"{hint}; to add one: --fire-servers {name}=ADDRESS (a running server) or "
            f"--fire-spawn {name}=PATH/TO/manage.py, or the FIRE_SERVERS variable, or the "
            "fire_servers / fire_spawn ini options"
        )
    return (
        f"fire server {name!r} is configured but not among this test's servers "
        f"({', '.join(present)}): @pytest.mark.fire(servers=...) on the test, its class "
        f"or its module leaves it out; add {name!r} there"
    )
