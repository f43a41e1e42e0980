"""`FireTestCase`: unittest tests that run inside a test scope on every fire server they use.

    class SignupTest(FireTestCase):
        fire_servers = {"accounts": "../accounts/fire.sock"}

        def test_signup(self):
            accounts = self.fire_remotes["accounts"]
            user = accounts.module("accounts.factories").UserFactory()

Relative socket paths resolve against the directory of the module that declares
``fire_servers``, so the suite runs the same from any directory. ``FIRE_SERVERS``
(``name=address,name=address``; relative to the working directory) overrides them.
``fire_spawn`` names servers the process starts itself.

Every class uses one runner (`fire.runners.core.Runner`: connections opened once and
shared, spawned servers, scopes, data-change reports): the process's (`process_runner`),
made on first use and closed at exit, or under pytest the plugin's, for its run
(`use_runner`). Where it is held is the only state this module keeps.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import unittest
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .client.clock import Clocks, freeze_time
from .client.patches import Patch
from .client.remote import Remote
from .errors import FireError, UnknownServer
from .net.addresses import parse_address
from .net.curve import ClientKeys
from .net.transport import DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_SPIN_WAIT, DEFAULT_TIMEOUT
from .runners import data_changes
from .runners.control import apply_patches, declared_clock
from .runners.core import (
    Runner,
    RunnerHolder,
    Scopes,
    check_mode,
    reports_changes,
    scope_arguments,
)
from .runners.spawn import ServerSpec, SpawnedServer, parse_spawn_spec

if TYPE_CHECKING:
    from .contracts.record import Recording

__all__ = [
    "FireTestCase",
    "FireTestMixin",
    "contract_recording",
    "parse_server_list",
    "process_runner",
    "shared_remote",
    "spawned_server",
    "use_runner",
]


def _make_process_runner() -> Runner:
    """The process's own runner (a run pytest does not drive: ``python -m unittest``,
    Django's ``manage.py test``), with services' ``breakpoint()`` sent to this terminal
    when ``FIRE_PDB=1`` asks for it."""
    from .runners.debugging import debug_from_environment

    runner = Runner()
    debug_from_environment(runner)
    return runner


#: The process's runner, shared by every class: the one piece of state of this module.
_holder = RunnerHolder(_make_process_runner)

#: unittest leaves this module's frames out of the tracebacks it reports, as it does its
#: own: they are the runner's, not the test's (a lost server's later tests: one line).
__unittest = True


def process_runner() -> Runner:
    """The runner the classes use: the process's (made now if need be, closed at exit),
    or the one a test runner put in for its run (`use_runner`)."""
    return _holder.get()


def contract_recording() -> Recording | None:
    """The contracts this process's run records (``--fire-contracts``, the
    ``fire_contracts`` ini option, ``FireTestCase.fire_contracts``), or None; makes no
    runner."""
    runner = _holder.current
    return None if runner is None else runner.contracts


def use_runner(runner: Runner | None) -> Runner | None:
    """Let the classes use `runner`, which manages the servers of a whole run.

    The pytest plugin puts its runner in as the run starts and the one this returns
    back as it ends: a class then uses the run's server for every name the run has
    (started on first use if the run spawns it), instead of its own ``fire_servers`` or
    ``fire_spawn`` entry, and shares the run's connections. ``None``: the process's own
    is made again on the next use.
    """
    return _holder.use(runner)


def parse_server_list(text: str, base: Path | None = None) -> dict[str, str]:
    """Parse ``name=address[,name=address]``; relative paths resolve against `base`."""
    servers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, address = item.partition("=")
        if not sep or not name.strip() or not address.strip():
            raise FireError(f"bad fire server spec {item!r}: expected NAME=ADDRESS")
        servers[name.strip()] = str(parse_address(address.strip(), base))
    return servers


def shared_remote(
    name: str,
    address: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    curve: ClientKeys | None = None,
    spin_wait: float = DEFAULT_SPIN_WAIT,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
) -> Remote:
    """A connection to `address`, opened once per run and reused (`Runner.connect`).

    A TCP server's CURVE keys are, in this order: `curve`, a spawned server's, or the
    files the run's settings or ``FIRE_CURVE_SECRET`` and ``FIRE_CURVE_SERVERS/NAME.key``
    name. A server that is not there gets the fix of the installed launcher
    (`fire.runners.spawn.Launcher.start_command`: djfire's runfireserver).
    """
    return process_runner().connect(
        name,
        address,
        timeout=timeout,
        spin_wait=spin_wait,
        heartbeat_timeout=heartbeat_timeout,
        curve=curve,
    )


def spawned_server(spec: ServerSpec) -> SpawnedServer:
    """The server started from `spec`, started once per run and stopped at its end.

    Under pytest-xdist each worker starts its own, with test databases suffixed by the
    worker id (``test_shop_gw0``).
    """
    return process_runner().spawn(spec)


def _declaring_dir(cls: type, attribute: str) -> tuple[Mapping[str, str], Path | None]:
    """The closest class's value of `attribute`, and the directory of its module."""
    for klass in cls.__mro__:
        declared: Mapping[str, str] | None = vars(klass).get(attribute)
        if declared is not None:
            module = sys.modules.get(klass.__module__)
            base = Path(module.__file__).resolve().parent if module and module.__file__ else None
            return declared, base
    return {}, None


def _declared_servers(cls: type) -> dict[str, str]:
    """Name -> address: ``FIRE_SERVERS`` if set, else ``fire_servers`` and ``fire_spawn``.

    The run's servers (`use_runner`) come first, name by name. Spawned servers start
    here (once per run); a name that ``FIRE_SERVERS`` gives attaches to that address
    instead of being spawned.
    """
    runner = process_runner()
    override = os.environ.get("FIRE_SERVERS")
    servers = parse_server_list(override) if override else {}
    if not override:
        declared, base = _declaring_dir(cls, "fire_servers")
        servers = {name: str(parse_address(addr, base)) for name, addr in declared.items()}
    to_spawn, base = _declaring_dir(cls, "fire_spawn")
    for name in {**servers, **to_spawn}:
        address = runner.run_address(name)
        if address is not None:
            servers[name] = address
    for name, text in to_spawn.items():
        if name not in servers:
            servers[name] = runner.spawn(parse_spawn_spec(f"{name}={text}", base)).address
    return servers


class _ClassRemotes(dict[str, Remote]):
    """A class's ``fire_remotes``: a dict whose missing name says how to declare it."""

    def __init__(self, remotes: dict[str, Remote], cls: type) -> None:
        super().__init__(remotes)
        self._owner = cls.__qualname__

    def __missing__(self, name: str) -> Remote:
        import difflib

        close = difflib.get_close_matches(name, list(self), n=1)
        raise UnknownServer(
            f"no fire server named {name!r} in {self._owner} "
            f"(its servers: {', '.join(self) or 'none'})"
            + (f"; did you mean {close[0]!r}?" if close else "")
            + f"; to add one: fire_servers = {{{name!r}: 'PATH/TO/{name}.sock'}} or "
            f"fire_spawn = {{{name!r}: 'PATH/TO/manage.py'}} on the class, or "
            f"FIRE_SERVERS={name}=ADDRESS"
        )


class _SetUpClassFirst(FireError, AttributeError):
    """``fire_remotes`` read before `FireTestMixin.setUpClass` set it."""


class _SetBySetUpClass:
    """``fire_remotes`` until `FireTestMixin.setUpClass` sets the class's own: reading it
    raises an error that names the fix (an `AttributeError` too, so ``hasattr`` is False).
    """

    def __get__(self, instance: object, owner: type) -> dict[str, Remote]:
        name = owner.__qualname__
        raise _SetUpClassFirst(
            f"{name}.fire_remotes is not set yet: FireTestMixin.setUpClass connects to the "
            f"servers and sets it; call super().setUpClass() first in {name}.setUpClass, "
            "then use the servers"
        )


# What the mixin is mixed into, for the type checker; at run time it is a plain class.
if TYPE_CHECKING:
    _TestCase = unittest.TestCase
else:
    _TestCase = object


class FireTestMixin(_TestCase):
    """Mix into any unittest TestCase (django.test.TestCase included) to get fire servers.

    Class attributes:

    - ``fire_servers``: name -> socket path or address of a running server.
    - ``fire_spawn``: name -> ``PROGRAM[:settings=MOD][:http=H:P][:gateway=SPEC]``, a
      server the run starts (once) with the installed launcher and stops at its end:
      the process's exit, or the end of the pytest run (see `fire.runners.spawn`).
    - ``fire_transactional``: run each test with real commits, tables flushed after it
      (like TransactionTestCase). No class scope is opened then: data made in
      ``setUpClass`` commits and is gone after the first test's flush.
    - ``fire_timeout``: seconds to wait for each reply; ``fire_spin_wait``: seconds
      a call polls for its reply before it sleeps (`fire.connect`'s `spin_wait`);
      ``fire_heartbeat_timeout``: over TCP, seconds a ping to the server may go
      unanswered before the link counts as lost (`fire.connect`'s `heartbeat_timeout`).
    - ``fire_data_changes``: ``"fail"`` (default) adds each service's data changes to a
      failing test's message, ``"always"`` also prints them for passing tests, ``"off"``
      does not capture them; ``fire_data_changes_exclude``: tables or columns to leave
      out (``"django_session"``, ``"*.updated_at"``).
    - ``fire_contracts``: a directory: the run records the contracts between its
      services there (docs/contracts.md), written as the process exits; a test's
      ``fire_contract_state`` names its provider state.
    - ``fire_patch``: ``{server: {dotted target: {option: value}}}``, patched in the
      services for each test (``self.fire_patches[server][target]``);
      ``fire_time``: every server's clock for each test (``self.fire_clock``), as
      ``self.fire_freeze_time(...)`` sets it in a test; both undone as the test's scope
      ends (docs/control.md). A patch made in ``setUpClass`` lasts for the class.
    """

    fire_servers: ClassVar[Mapping[str, str]] = {}
    fire_spawn: ClassVar[Mapping[str, str]] = {}
    fire_transactional: ClassVar[bool] = False
    fire_timeout: ClassVar[float] = DEFAULT_TIMEOUT
    fire_spin_wait: ClassVar[float] = DEFAULT_SPIN_WAIT
    fire_heartbeat_timeout: ClassVar[float] = DEFAULT_HEARTBEAT_TIMEOUT
    fire_data_changes: ClassVar[str] = "fail"
    fire_data_changes_exclude: ClassVar[Sequence[str]] = ()
    fire_contracts: ClassVar[str | None] = None
    fire_contract_state: ClassVar[str | None] = None
    fire_patch: ClassVar[Mapping[str, Mapping[str, Mapping[str, Any]]]] = {}
    fire_time: ClassVar[Any] = None
    #: Server name -> dotted target -> `fire.client.patches.Patch`, from ``fire_patch``.
    fire_patches: dict[str, dict[str, Patch]]
    #: The test's clocks (``fire_time``, or the last `fire_freeze_time` call).
    fire_clock: Clocks | None = None
    if TYPE_CHECKING:
        fire_remotes: ClassVar[dict[str, Remote]]
    else:
        fire_remotes = _SetBySetUpClass()
    #: (section title, text) per server that changed data, once a failing test reported.
    fire_changes_report: Sequence[tuple[str, str]] = ()
    _fire_failed = False

    @classmethod
    def setUpClass(cls) -> None:
        with _interrupting_the_run():
            cls._fire_set_up_class()

    @classmethod
    def _fire_set_up_class(cls) -> None:
        # The class scope opens before the base class's set-up, so data that
        # django.test.TestCase.setUpTestData makes remotely lives in it too.
        servers = _declared_servers(cls)
        if cls.fire_contracts:
            process_runner().record_contracts(cls.fire_contracts)
        lost = process_runner().lost_among(servers)
        if lost is not None:  # said in full by the test it was lost in; one line here
            raise lost.later_error()
        cls.fire_remotes = _ClassRemotes(
            {
                name: shared_remote(
                    name,
                    address,
                    timeout=cls.fire_timeout,
                    spin_wait=cls.fire_spin_wait,
                    heartbeat_timeout=cls.fire_heartbeat_timeout,
                )
                for name, address in servers.items()
            },
            cls,
        )
        scopes = Scopes("class")
        cls.addClassCleanup(scopes.end)
        if not cls.fire_transactional:
            scopes.begin(cls.fire_remotes.values())
        super().setUpClass()

    def run(self, result: unittest.TestResult | None = None) -> unittest.TestResult | None:
        if result is not None and _holder.current is not None:
            from .runners.debugging import debug_unittest_result

            debug_unittest_result(_holder.current, result)  # Django's --pdb
        with _interrupting_the_run():
            return super().run(result)

    def _callSetUp(self) -> None:
        mode = check_mode(self.fire_data_changes)
        scope = scope_arguments(mode, transactional=self.fire_transactional)
        remotes = self.fire_remotes
        runner = process_runner()
        lost = runner.lost_among(remotes)
        if lost is not None:  # said in full by the test it was lost in; one line here
            raise lost.later_error()
        # Cleanups run last-in first-out: this one after the test's scopes ended. It asks
        # for the next test's scope ahead, on the guess that the class has one (the class
        # scope's end closes the one asked for after the class's last test).
        self.addCleanup(runner.next_test, remotes, remotes, during=self._testMethodName, **scope)
        scopes = Scopes("test", of=f"test {self.id()}")
        self.addCleanup(scopes.end)
        try:
            scopes.begin(remotes.values(), **scope)
        except FireError as exc:
            self._fire_note_lost(exc)
            raise
        self.fire_patches = apply_patches(remotes, self.fire_patch, "fire_patch")
        clock = declared_clock(remotes, self.fire_time, "fire_time")
        if clock is not None:
            self.fire_clock = clock
            self.addCleanup(clock.stop_here)
        if mode != "off":
            self.addCleanup(self._fire_report_changes)
        if runner.contracts is not None:
            self.addCleanup(self._fire_collect_contracts)
        super()._callSetUp()  # type: ignore[misc]  # unittest's private hook: typeshed omits it

    def _callTestMethod(self, method: Callable[[], Any]) -> None:
        try:
            super()._callTestMethod(method)  # type: ignore[misc]  # unittest's private hook: typeshed omits it
        except unittest.SkipTest:
            raise
        except BaseException as exc:
            self._fire_failed = True  # (unittest's own flag is reset for the cleanups)
            self._fire_note_lost(exc)
            raise

    def _callTearDown(self) -> None:
        try:
            super()._callTearDown()  # type: ignore[misc]  # unittest's private hook: typeshed omits it
        except BaseException as exc:
            self._fire_failed = True
            self._fire_note_lost(exc)
            raise

    def _fire_note_lost(self, error: BaseException) -> None:
        """If `error` came from a server the run just lost: how it ended and its last
        output, added to the error (`fire.runners.lost`)."""
        lost = process_runner().notice_loss(error, during=self._testMethodName)
        if lost is not None:
            error.add_note(lost.first())

    def fire_freeze_time(
        self, destination: str | datetime.datetime, *, tick: bool = False, here: bool = False
    ) -> Clocks:
        """Set every server's clock (and with `here` this process's) to `destination`;
        `.shift(timedelta)` / `.tick()` move them all. Undone as the test's scope ends."""
        self.fire_clock = freeze_time(self.fire_remotes, destination, tick=tick, here=here)
        self.addCleanup(self.fire_clock.stop_here)
        return self.fire_clock

    def fire_changes(self) -> dict[str, Any]:
        """Server name -> the rows this test changed so far, per database alias and table.

        See `fire.runners.data_changes` for the form; ``fire_data_changes_exclude`` applies.
        """
        return data_changes.collect(self.fire_remotes, self.fire_data_changes_exclude)

    def _fire_collect_contracts(self) -> None:
        """Before the scopes end: the requests between services this test made, recorded."""
        recording = process_runner().contracts
        if recording is not None:
            recording.collect(
                self.fire_remotes,
                self.id(),
                passed=not self._fire_failed,
                state=self.fire_contract_state,
                exclude=self.fire_data_changes_exclude,
            )

    def _fire_report_changes(self) -> None:
        """Before the scopes end: a failing test's data changes, into its failure message.

        The text also stays on the test (``fire_changes_report``), where the pytest plugin
        finds it for its report section.
        """
        failed = self._fire_failed
        if not reports_changes(self.fire_data_changes, failed):
            return
        # A server lost meanwhile took the test's changes with it.
        remotes = {name: remote for name, remote in self.fire_remotes.items() if not remote.closed}
        report = process_runner().change_report(remotes, self.fire_data_changes_exclude)
        self.fire_changes_report = report.sections
        text = report.text()
        if not text:
            return
        if not failed:
            sys.stderr.write(text)  # "always", for a passing test
            return
        # Into unittest's failure message; a runner that keeps none (pytest) reads
        # fire_changes_report instead.
        _append_to_failure(getattr(getattr(self, "_outcome", None), "result", None), self, text)


@contextlib.contextmanager
def _interrupting_the_run() -> Iterator[None]:
    """Ctrl-C (a `KeyboardInterrupt` passing through) interrupts the run's runner at once
    (`Runner.interrupt`), as the pytest plugin's hook does, whatever runs the tests: the
    connections close, the spawned servers stop without waiting on a full timeout (as
    the process exits), and a second Ctrl-C exits at once naming what may be left."""
    try:
        yield
    except KeyboardInterrupt:
        process_runner().interrupt()
        raise


def _append_to_failure(result: Any, test: unittest.TestCase, text: str) -> None:
    """Add `text` to the message `result` recorded for `test`'s failure, if it keeps one."""
    for kind in ("failures", "errors"):
        entries = getattr(result, kind, None)
        if not isinstance(entries, list):
            continue
        for index in range(len(entries) - 1, -1, -1):
            recorded, message = entries[index]
            if recorded is test:
                entries[index] = (recorded, message + text)
                return


class FireTestCase(FireTestMixin, unittest.TestCase):
    """A unittest TestCase whose tests run in a test scope on every declared fire server."""
