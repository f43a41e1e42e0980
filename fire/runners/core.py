"""The runner core: what both test runners hold and do, written once.

A `Runner` owns a run's servers: its connections (one per server name and address), the
servers it started (once each; a start that failed is not tried again), the CURVE keys
for TCP addresses, and the servers it lost on the way (`fire.runners.lost`: a spawned
server that ended, an attached one nothing listens at any more). It opens and ends the
scopes tests run in (`Scopes`), asks for the next test's scope ahead
(`Runner.next_test`) and makes a test's data-change report (`Runner.change_report`).
The pytest plugin keeps one per run in ``config.stash``; `fire.testing` keeps one for
the process (`RunnerHolder`), which the plugin replaces by its own for its run. Nothing
here knows pytest or unittest.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..client.remote import Remote
from ..errors import FireError, ServerUnavailable
from ..net.curve import ClientKeys, client_keys
from ..net.transport import DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_SPIN_WAIT, DEFAULT_TIMEOUT
from . import data_changes, interrupt
from .coverage import CoverageSettings, server_options
from .interrupt import Leftover
from .lost import LostServer, ServerLost, exit_text, nothing_listens
from .spawn import ServerSpec, SpawnedServer, default_start_command

if TYPE_CHECKING:
    from ..contracts.record import Recording
    from .debugging import DebuggerListener

__all__ = [
    "DEFAULT_SCOPE_WAIT",
    "ChangeReport",
    "RunConfig",
    "Runner",
    "RunnerHolder",
    "Scopes",
    "check_mode",
    "reports_changes",
    "scope_arguments",
]

#: Seconds a test waits for a server another client holds (the plugin's ``fire_scope_wait``).
DEFAULT_SCOPE_WAIT = 120.0
#: Seconds to wait, after a spawned server stopped answering, for its supervisor to say
#: that its process ended (it says so within milliseconds of a kill); a server that is
#: only slow is not lost.
EXIT_WAIT = 3.0


@dataclass
class RunConfig:
    """A run's servers and settings: the pytest plugin's, read from its options and ini.

    A `FireTestCase` outside pytest runs with the defaults (no servers of the run: each
    class names its own, with its own timeouts and data-change mode).
    """

    attached: dict[str, str] = field(default_factory=dict)  # name -> address
    spawned: dict[str, ServerSpec] = field(default_factory=dict)
    source: str = "none"  # where the attached list came from, for messages
    timeout: float = DEFAULT_TIMEOUT
    spin_wait: float = DEFAULT_SPIN_WAIT
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT  # TCP: seconds a ping may go unanswered
    scope_wait: float = DEFAULT_SCOPE_WAIT
    data_changes: str = data_changes.MODES[0]  # when tests show their data changes
    data_changes_exclude: list[str] = field(default_factory=list)
    curve_secret: str | None = None  # this client's NAME.key_secret (else FIRE_CURVE_SECRET)
    curve_servers: str | None = None  # directory of SERVER_NAME.key (else FIRE_CURVE_SERVERS)
    #: How the run measures coverage, for its spawned servers to measure theirs; None: off.
    coverage: CoverageSettings | None = None
    post_mortem: bool = False  # servers keep failed calls for a remote pdb (pytest --pdb)
    debugger: str | None = None  # where services' breakpoint() goes (fire.runners.debugging)
    contracts: str | None = None  # where recorded contracts go (--fire-contracts), or None


class Runner:
    """A run's servers, the scopes its tests run in, and their data-change reports.

    Under pytest-xdist each worker starts its own servers (own socket, test databases
    suffixed with the worker id, ``test_shop_gw0``); attached servers are shared by all
    workers, whose tests then take turns (the server's scope lock).
    """

    def __init__(self, config: RunConfig | None = None) -> None:
        self.config = config or RunConfig()
        self.worker = os.environ.get("PYTEST_XDIST_WORKER")
        self._remotes: dict[tuple[str, str], Remote] = {}
        self._keys: dict[str, ClientKeys] = {}  # address -> a spawned TCP server's keys
        self._spawned: dict[tuple[str, str], SpawnedServer] = {}
        self._failed: dict[tuple[str, str], FireError] = {}
        self._reported: set[str] = set()  # unavailable servers a test has shown the cause of
        self._interrupted = False
        self._restore_sigint: Callable[[], None] = lambda: None
        self._lost: dict[str, LostServer] = {}
        #: The run's servers that other processes spawned (an xdist controller's: its
        #: workers'), for the second Ctrl-C's line (`leftovers`).
        self.other_servers: Callable[[], list[Leftover]] = list
        self._listener: DebuggerListener | None = None  # services' breakpoint(), see `debug`
        #: The run's contract recording (`fire.contracts.record`), or None: not recording.
        self.contracts: Recording | None = None
        if self.config.contracts:
            self.record_contracts(self.config.contracts)

    # -- servers -----------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The names of the run's servers, attached then spawned."""
        return [*self.config.attached, *self.config.spawned]

    @property
    def spawned(self) -> dict[str, SpawnedServer]:
        """The run's spawned servers started so far (or that failed to start), by name."""
        keys = {name: _spawn_key(spec) for name, spec in self.config.spawned.items()}
        return {name: self._spawned[key] for name, key in keys.items() if key in self._spawned}

    def address(self, name: str) -> str:
        """The address of the run's server `name`; a spawned one is started on first need."""
        if name in self.config.attached:
            return self.config.attached[name]
        return self.spawn(self.config.spawned[name]).address

    def run_address(self, name: str) -> str | None:
        """The address of the run's server `name`, or None if the run has none by that name."""
        return self.address(name) if name in self.names else None

    def spawn(self, spec: ServerSpec) -> SpawnedServer:
        """The server started from `spec`, once per run (per name and program).

        A spawned TCP server's keys are used for every connection to it. A server that
        failed to start raises its error again, without a second start.
        """
        key = _spawn_key(spec)
        if key in self._failed:
            raise self._failed[key]
        server = self._spawned.get(key)
        if server is None:
            server = self._spawned[key] = SpawnedServer(spec, suffix=self.worker)
            if self.config.coverage is not None:
                server.coverage = server_options(self.config.coverage, spec)
            try:
                server.start()
            except FireError as exc:
                self._failed[key] = exc
                raise
            if server.client_keys is not None:
                self._keys[server.address] = server.client_keys
        return server

    def connect(
        self,
        name: str,
        address: str,
        *,
        timeout: float | None = None,
        spin_wait: float | None = None,
        heartbeat_timeout: float | None = None,
        curve: ClientKeys | None = None,
    ) -> Remote:
        """A connection to `address`, opened once per run (per name and address) and reused.

        A TCP server's CURVE keys are, in this order: `curve`, a spawned server's, or the
        files the run's settings (else ``FIRE_CURVE_SECRET`` and
        ``FIRE_CURVE_SERVERS/NAME.key``) name. A server that is not there gets the fix of
        the installed launcher (`fire.runners.spawn.Launcher.start_command`).
        """
        if name in self._lost:
            raise self._lost[name].later_error()
        if self._interrupted:
            raise ServerUnavailable(
                f"fire server {name!r} was not asked: the run was interrupted (Ctrl-C)", address
            )
        key = (name, address)
        remote = self._remotes.get(key)
        if remote is not None and not remote.closed:
            return remote
        if curve is None and address.startswith("tcp://"):
            curve = self._keys.get(address) or client_keys(
                name, self.config.curve_secret, self.config.curve_servers
            )
        try:
            remote = Remote(
                address,
                timeout=self.config.timeout if timeout is None else timeout,
                curve=curve,
                name=name,
                start_command=default_start_command(),
                spin_wait=self.config.spin_wait if spin_wait is None else spin_wait,
                heartbeat_timeout=self.config.heartbeat_timeout
                if heartbeat_timeout is None
                else heartbeat_timeout,
            )
        except ServerUnavailable as exc:
            raise ServerUnavailable(
                f"fire server {name!r} is not available: {exc}", address
            ) from None
        self._remotes[key] = remote
        if self.config.post_mortem or self.config.debugger:
            self._attach_debugger(remote)
        return remote

    def _attach_debugger(self, remote: Remote) -> None:
        """Tell the server of a new connection what the run's debugging wants (once)."""
        from ..client.debugging import attach

        try:
            attach(remote, post_mortem=self.config.post_mortem, breakpoints=self.config.debugger)
        except FireError as exc:  # a convenience: never what fails a test
            sys.stderr.write(f"fire: no remote debugger on server {remote.name!r}: {exc}\n")

    def debug(self, *, post_mortem: bool = False, listener: DebuggerListener | None = None) -> None:
        """From now on, servers keep failed calls for a remote post-mortem (`post_mortem`),
        and send ``breakpoint()`` to `listener` (which the runner closes with itself);
        the connections open already are told at once. What is on stays on."""
        config = self.config
        if listener is not None:
            if self._listener is not None:
                self._listener.close()
            self._listener = listener
        wanted = (
            config.post_mortem or post_mortem,
            listener.address if listener else config.debugger,
        )
        if wanted == (config.post_mortem, config.debugger):
            return
        config.post_mortem, config.debugger = wanted
        for remote in self._remotes.values():
            if not remote.closed:
                self._attach_debugger(remote)

    def remote(self, name: str) -> Remote:
        """The connection to the run's server `name` (one of `names`)."""
        return self.connect(name, self.address(name))

    def connected(self, name: str) -> Remote | None:
        """The open connection to the run's server `name`, if there is one already."""
        address = self.config.attached.get(name)
        if address is None and name in self.config.spawned:
            server = self._spawned.get(_spawn_key(self.config.spawned[name]))
            address = server.address if server is not None else None
        remote = self._remotes.get((name, address)) if address is not None else None
        return None if remote is None or remote.closed else remote

    def reported_unavailable(self, name: str) -> bool:
        """Whether a test already showed why `name` is unavailable (then marks it so)."""
        if name in self._reported:
            return True
        self._reported.add(name)
        return False

    def record_contracts(self, directory: str) -> Recording:
        """Record the contracts between the run's services into `directory` (from now on)."""
        if self.contracts is None:
            from ..contracts.record import Recording

            self.contracts = Recording(directory)
        return self.contracts

    # -- lost servers ----------------------------------------------------------------------

    @property
    def lost(self) -> list[LostServer]:
        """The servers the run lost, in the order it noticed."""
        return list(self._lost.values())

    def lost_among(self, names: Iterable[str]) -> LostServer | None:
        """The first of the servers `names` that the run lost, if any."""
        return next((self._lost[name] for name in names if name in self._lost), None)

    def notice_loss(self, error: BaseException, during: str | None) -> LostServer | None:
        """The server `error` (a `ServerUnavailable`) came from, if the run lost it just now.

        A spawned server is lost once its process ended; one the run attached to, once
        nothing listens at its address. None for any other error, a server that is only
        slow or stalled, or one lost before (its loss was said then).
        """
        if not isinstance(error, ServerUnavailable) or isinstance(error, ServerLost):
            return None
        for (name, address), remote in list(self._remotes.items()):
            if str(remote.address) == error.address and name not in self._lost:
                return self._check(name, address, during)
        return None

    def notice_ended(self, during: str | None) -> LostServer | None:
        """A spawned server whose process ended since the last look (without a test's
        call failing for it), now lost; None if every one runs (or was lost before)."""
        for (name, _), server in self._spawned.items():
            if server.asked_to_stop:  # the run stopped it (for its coverage data): no loss
                continue
            if server.failure is None and name not in self._lost and server.exited():
                return self._check(name, server.address, during)
        return None

    def _check(self, name: str, address: str, during: str | None) -> LostServer | None:
        server = next((s for s in self._spawned.values() if s.address == address), None)
        if server is not None:
            if not server.exited(EXIT_WAIT):
                return None
            verb, detail = exit_text(server.returncode)
            lost = LostServer(name, address, verb, detail, during, list(server.output))
        elif nothing_listens(address):
            lost = LostServer(name, address, "stopped answering", None, during)
        else:
            return None
        self._lost[name] = lost
        for (connected, _), remote in self._remotes.items():
            if connected == name:  # its scopes ended with it; no test may use it again
                remote.close()
        return lost

    def stop_spawned(self) -> None:
        """Stop the spawned servers now, together (their connections closed first), so
        that they write their coverage data; they stay in `spawned`, for the summary."""
        for (name, _), remote in self._remotes.items():
            if name in self.config.spawned:
                remote.close()
        for server in self._spawned.values():
            server.ask_to_stop()
        for server in self._spawned.values():
            server.stop()

    def close(self) -> None:
        """Close the connections and stop the servers the run started (after `interrupt`,
        all at once, with a short wait)."""
        for remote in self._remotes.values():
            remote.close()
        if self._interrupted:
            self._stop_interrupted()
        else:
            for server in self._spawned.values():
                server.stop()
        self._remotes.clear()
        self._spawned.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # -- Ctrl-C --------------------------------------------------------------------------

    @property
    def interrupted(self) -> bool:
        """Whether the run was interrupted (`interrupt`)."""
        return self._interrupted

    def interrupt(self) -> None:
        """The run was interrupted (Ctrl-C): from now on nothing waits on a server.

        Every connection closes (its server rolls its scopes back), `connect` raises at
        once, the spawned servers are told to stop now (they tear down while the test
        runner reports), `close` gives them `fire.runners.interrupt.STOP_WAIT` seconds,
        and a second Ctrl-C exits at once naming what may be left (`leftovers`).
        """
        if self._interrupted:
            return
        self._interrupted = True
        self._restore_sigint = interrupt.exit_on_second_interrupt(
            self.leftovers, worker=self.worker is not None
        )
        for remote in self._remotes.values():
            remote.close()
        for server in self._spawned.values():
            server.ask_to_stop(interrupted=True)

    def leftovers(self) -> str:
        """What the spawned servers not known to have stopped may leave, in a line: this
        process's (`leftover_servers`) and those of `other_servers`."""
        return interrupt.leftovers([*self.leftover_servers(), *self.other_servers()])

    def leftover_servers(self) -> list[Leftover]:
        """The servers this process spawned that are not known to have stopped."""
        return [
            Leftover(
                name,
                server.pid,
                tuple(self._test_databases(name, server)),
                server.socket_dir,
                server.address,
            )
            for (name, _), server in self._spawned.items()  # a FireTestCase's fire_spawn too
            if server.failure is None
        ]

    def _test_databases(self, name: str, server: SpawnedServer) -> list[str]:
        """The test databases `server` named in its handshake (an extension's
        ``test_databases``: djfire's), if this run connected to it."""
        remote = self._remotes.get((name, server.address))
        extensions = remote.server_info.get("extensions", {}) if remote is not None else {}
        for described in extensions.values():
            if isinstance(described, dict) and described.get("test_databases"):
                return [str(database) for database in described["test_databases"]]
        return []

    def _stop_interrupted(self) -> None:
        """Stop the spawned servers together; forget each one that stopped in time."""
        if not self._spawned:
            self._restore_sigint()
            return
        sys.stderr.write(
            f"fire: interrupted: stopping the spawned servers (up to {interrupt.STOP_WAIT:g} "
            "s; Ctrl-C again to exit at once)\n"
        )
        sys.stderr.flush()
        deadline = time.monotonic() + interrupt.STOP_WAIT
        for key, server in list(self._spawned.items()):
            stopped = server.stop(max(0.0, deadline - time.monotonic())) is not None
            if stopped or server.failure is not None:
                del self._spawned[key]
        if self._spawned:
            sys.stderr.write(f"fire: {self.leftovers()}\n")
        self._restore_sigint()

    # -- scopes --------------------------------------------------------------------------

    def next_test(
        self,
        ended: Mapping[str, Remote],
        upcoming: Mapping[str, Remote] | None = None,
        *,
        may_skip: bool = False,
        during: str | None = None,
        **scope: Any,
    ) -> list[str]:
        """As a test ends: ask for the next test's scope ahead, and check the ended ones.

        `upcoming` are the next test's servers, each asked now for a ``"test"`` scope
        with `scope`'s arguments (`Remote.begin_next_scope`): the server opens it while
        the runner reports and sets up, and the test's `begin_scope` takes it. Never for
        a test that may not run (`may_skip`: a skip mark), whose unused scope would cost
        the server a begin and an end, nor for a transactional one (an unused one's end
        would flush every table). A server that cannot be asked stops the asking; the
        test's own begin reports the trouble.

        A test scope ends without waiting: the next request to the server reads the
        answer. A server of `ended` that was not asked ahead is asked now, so that a
        failure to end the scope fails the test that ended, not a later one. Returns the
        names of the servers asked ahead.

        First, a spawned server whose process ended during the test `during` (though
        no call of the test failed for it) fails it with `ServerLost`, saying how.
        """
        lost = self.notice_ended(during)
        if lost is not None:
            raise lost.first_error()
        asked: list[str] = []
        if upcoming and not may_skip and not scope.get("transactional"):
            for name, remote in upcoming.items():
                try:
                    remote.begin_next_scope("test", **scope)
                except FireError:
                    break
                asked.append(name)
        for name, remote in ended.items():
            if name not in asked and not remote.closed:
                remote.sync()
        return asked

    # -- data changes --------------------------------------------------------------------

    def change_report(
        self,
        remotes: Mapping[str, Remote],
        exclude: Iterable[str] = (),
        *,
        rows_per_table: int | None = data_changes.DEFAULT_ROWS_PER_TABLE,
    ) -> ChangeReport:
        """What the test changed on each of `remotes` so far, collected and formatted."""
        collected = data_changes.collect(remotes, exclude)
        sections = [
            (
                data_changes.section_title(name, changes),
                data_changes.format_changes(changes, rows_per_table=rows_per_table),
            )
            for name, changes in collected.items()
            if data_changes.has_changes(changes)
        ]
        return ChangeReport(collected, sections)


@dataclass
class ChangeReport:
    """A test's data changes: server name -> changes, and a (title, text) section per
    server that changed something."""

    changes: dict[str, data_changes.Changes]
    sections: list[tuple[str, str]]

    def text(self) -> str:
        """The sections as one text, each under a ``---- title ----`` line."""
        return "".join(f"\n---- {title} ----\n{body}\n" for title, body in self.sections)

    def to_json(self) -> str:
        """Every server's changes as JSON (the pytest plugin's ``fire_data_changes`` property)."""
        return data_changes.to_json(self.changes)


def check_mode(mode: str) -> str:
    """`mode` if it is one of `data_changes.MODES`; else a `FireError` naming them."""
    if mode not in data_changes.MODES:
        modes = ", ".join(data_changes.MODES)
        raise FireError(f"fire_data_changes must be one of {modes}, not {mode!r}")
    return mode


def reports_changes(mode: str, failed: bool) -> bool:
    """Whether a test's data changes are shown: ``always``, or ``fail`` for a failed test."""
    return mode == "always" or (mode == "fail" and failed)


def scope_arguments(mode: str, **options: Any) -> dict[str, Any]:
    """The arguments of a test scope's ``begin_scope`` (besides its kind): `options`, and
    whether to capture data changes (not with the data-change mode ``off``)."""
    return {"data_changes": mode != "off", **options}


class Scopes:
    """The scopes of one kind a runner opened for one test (or class, or module).

    Ended together, last opened first; a test scope's end is not waited for: its answer
    comes with the next request to that server (`Runner.next_test`), where a failure
    names `of`, what the scope was for. A connection closed meanwhile (its server lost)
    is skipped: the server ended its scopes with it.
    """

    def __init__(self, kind: str, of: str | None = None) -> None:
        self.kind = kind
        self.of = of
        self.opened: list[Remote] = []

    def begin(self, remotes: Iterable[Remote], **options: Any) -> None:
        """Open a scope on each of `remotes`; those opened before a failure stay to end."""
        for remote in remotes:
            remote.begin_scope(self.kind, **options)
            self.opened.append(remote)

    def end(self) -> None:
        """End every scope opened; raise the first failure once all were tried."""
        errors: list[Exception] = []
        for remote in reversed(self.opened):
            if remote.closed:
                continue
            try:
                remote.end_scope(wait=self.kind != "test", of=self.of)
            except Exception as exc:
                errors.append(exc)
        self.opened.clear()
        if errors:
            raise errors[0]


class RunnerHolder:
    """Where a process keeps the runner its `FireTestCase` classes share.

    Made on first use and closed at the process's exit, after a line on stderr for each
    server it lost (the unittest runner's summary has no place for them); a test runner
    that manages the servers for its run (the pytest plugin) puts its own in for the
    run (`use`), and says them in its own summary.
    """

    def __init__(self, make: Callable[[], Runner] = Runner) -> None:
        self._make = make
        self._runner: Runner | None = None

    def get(self) -> Runner:
        """The process's runner (made now, by `make`, if there is none)."""
        if self._runner is None:
            self._runner = self._make()
            atexit.register(_finish, self._runner)
        return self._runner

    @property
    def current(self) -> Runner | None:
        """The process's runner if there is one (none is made)."""
        return self._runner

    def use(self, runner: Runner | None) -> Runner | None:
        """Make `runner` the process's runner; returns the one it replaces, to put back."""
        previous, self._runner = self._runner, runner
        return previous


def _finish(runner: Runner) -> None:
    """At the process's exit: say the servers `runner` lost, then close it.

    A process ending on Ctrl-C (its uncaught `KeyboardInterrupt`, which Python keeps in
    ``sys.last_value`` as it exits) interrupts the runner first (`Runner.interrupt`),
    if a test did not already (`fire.testing.FireTestMixin`): its servers stop without
    waiting on a full timeout, and a second Ctrl-C exits at once.
    """
    if isinstance(getattr(sys, "last_value", None), KeyboardInterrupt):
        runner.interrupt()
    for lost in runner.lost:
        sys.stderr.write(f"fire server {lost.name} at {lost.address}: {lost.summary()}\n")
    if runner.contracts is not None:  # FireTestCase.fire_contracts, outside pytest
        sys.stderr.write(runner.contracts.write() + "\n")
    runner.close()


def _spawn_key(spec: ServerSpec) -> tuple[str, str]:
    return (spec.name, str(spec.program))
