"""`FireTestCase`: unittest tests that run inside a test scope on every fire server they use.

    class SignupTest(FireTestCase):
        fire_servers = {"accounts": "../accounts/fire.sock"}

        def test_signup(self):
            accounts = self.fire_remotes["accounts"]
            user = accounts.module("accounts.factories").UserFactory()

Relative socket paths resolve against the directory of the module that declares
``fire_servers``, so the suite runs the same from any directory. ``FIRE_SERVERS``
(``name=address,name=address``; relative to the working directory) overrides them.
``fire_spawn`` names servers the process starts itself. Connections are opened once and
reused by every class in the process.
"""

from __future__ import annotations

import atexit
import os
import sys
import unittest
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .client.remote import Remote
from .errors import FireError, ServerUnavailable
from .net.addresses import parse_address
from .net.curve import ClientKeys, client_keys
from .net.transport import DEFAULT_SPIN_WAIT, DEFAULT_TIMEOUT
from .runners import data_changes
from .runners.spawn import ServerSpec, SpawnedServer, default_start_command, parse_spawn_spec

__all__ = [
    "FireTestCase",
    "FireTestMixin",
    "parse_server_list",
    "register_client_keys",
    "shared_remote",
    "spawned_server",
    "use_run_servers",
]

_pool: dict[tuple[str, str], Remote] = {}
#: address -> the CURVE keys for it: a spawned TCP server's, or the runner's configured ones.
_client_keys: dict[str, ClientKeys] = {}
_spawned: dict[tuple[str, str], SpawnedServer] = {}
_run_servers: Callable[[str], str | None] | None = None  # see use_run_servers


def parse_server_list(text: str, base: Path | None = None) -> dict[str, str]:
    """Parse ``name=address[,name=address]``; relative paths resolve against `base`."""
    servers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, address = item.partition("=")
        if not sep or not name.strip() or not address.strip():
            raise FireError(f"bad fire server spec {item!r}: expected NAME=ADDRESS")
        servers[name.strip()] = str(parse_address(address.strip(), base))
    return servers


def register_client_keys(address: str, keys: ClientKeys) -> None:
    """Use `keys` for every connection to the TCP server at `address` in this process.

    The spawner registers a spawned server's keys; the pytest plugin its configured ones.
    """
    _client_keys[address] = keys


def shared_remote(
    name: str,
    address: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    curve: ClientKeys | None = None,
    spin_wait: float = DEFAULT_SPIN_WAIT,
) -> Remote:
    """A connection to `address`, opened once per process and reused.

    A TCP server's CURVE keys are, in this order: `curve`, those registered for the
    address (`register_client_keys`), or the files ``FIRE_CURVE_SECRET`` and
    ``FIRE_CURVE_SERVERS/NAME.key`` name. A server that is not there gets the fix of
    the installed launcher (`fire.runners.spawn.Launcher.start_command`: djfire's runfireserver).
    """
    key = (name, address)
    remote = _pool.get(key)
    if remote is None or remote.closed:
        if curve is None and address.startswith("tcp://"):
            curve = _client_keys.get(address) or client_keys(name)
        try:
            remote = Remote(
                address,
                timeout=timeout,
                curve=curve,
                name=name,
                start_command=default_start_command(),
                spin_wait=spin_wait,
            )
        except ServerUnavailable as exc:
            raise ServerUnavailable(
                f"fire server {name!r} is not available: {exc}", address
            ) from None
        _pool[key] = remote
    return remote


def spawned_server(spec: ServerSpec) -> SpawnedServer:
    """The server started from `spec`, started once per process and stopped at exit.

    Under pytest-xdist each worker starts its own, with test databases suffixed by the
    worker id (``test_shop_gw0``).
    """
    key = (spec.name, str(spec.program))
    server = _spawned.get(key)
    if server is None:
        server = SpawnedServer(spec, suffix=os.environ.get("PYTEST_XDIST_WORKER"))
        server.start()
        _spawned[key] = server
        if server.client_keys is not None:
            register_client_keys(server.address, server.client_keys)
    return server


@atexit.register
def _close_pool() -> None:
    for remote in _pool.values():
        remote.close()
    _pool.clear()
    for server in _spawned.values():
        server.stop()
    _spawned.clear()


def _declaring_dir(cls: type, attribute: str) -> tuple[Mapping[str, str], Path | None]:
    """The closest class's value of `attribute`, and the directory of its module."""
    for klass in cls.__mro__:
        declared: Mapping[str, str] | None = vars(klass).get(attribute)
        if declared is not None:
            module = sys.modules.get(klass.__module__)
            base = Path(module.__file__).resolve().parent if module and module.__file__ else None
            return declared, base
    return {}, None


def use_run_servers(lookup: Callable[[str], str | None] | None) -> None:
    """Let a runner that manages servers for the whole run supply them to the classes.

    The pytest plugin calls this with a function that gives the address of the run's
    server by that name (started on first use if the run spawns it), or None. A class
    then uses the run's server for every name the run has, instead of its own
    ``fire_servers`` or ``fire_spawn`` entry. ``None`` turns this off again.
    """
    global _run_servers
    _run_servers = lookup


def _declared_servers(cls: type) -> dict[str, str]:
    """Name -> address: ``FIRE_SERVERS`` if set, else ``fire_servers`` and ``fire_spawn``.

    The run's servers (`use_run_servers`) come first, name by name. Spawned servers
    start here (once per process); a name that ``FIRE_SERVERS`` gives attaches to that
    address instead of being spawned.
    """
    override = os.environ.get("FIRE_SERVERS")
    servers = parse_server_list(override) if override else {}
    if not override:
        declared, base = _declaring_dir(cls, "fire_servers")
        servers = {name: str(parse_address(addr, base)) for name, addr in declared.items()}
    to_spawn, base = _declaring_dir(cls, "fire_spawn")
    if _run_servers is not None:
        for name in {**servers, **to_spawn}:
            address = _run_servers(name)
            if address is not None:
                servers[name] = address
    for name, text in to_spawn.items():
        if name not in servers:
            servers[name] = spawned_server(parse_spawn_spec(f"{name}={text}", base)).address
    return servers


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
      server this process starts (once) with the installed launcher and stops at exit
      (see `fire.runners.spawn`).
    - ``fire_transactional``: run each test with real commits, tables flushed after it
      (like TransactionTestCase). No class scope is opened then: data made in
      ``setUpClass`` commits and is gone after the first test's flush.
    - ``fire_timeout``: seconds to wait for each reply; ``fire_spin_wait``: seconds
      a call polls for its reply before it sleeps (`fire.connect`'s `spin_wait`).
    - ``fire_data_changes``: ``"fail"`` (default) adds each service's data changes to a
      failing test's message, ``"always"`` also prints them for passing tests, ``"off"``
      does not capture them; ``fire_data_changes_exclude``: tables or columns to leave
      out (``"django_session"``, ``"*.updated_at"``).
    """

    fire_servers: ClassVar[Mapping[str, str]] = {}
    fire_spawn: ClassVar[Mapping[str, str]] = {}
    fire_transactional: ClassVar[bool] = False
    fire_timeout: ClassVar[float] = DEFAULT_TIMEOUT
    fire_spin_wait: ClassVar[float] = DEFAULT_SPIN_WAIT
    fire_data_changes: ClassVar[str] = "fail"
    fire_data_changes_exclude: ClassVar[Sequence[str]] = ()
    fire_remotes: ClassVar[dict[str, Remote]]
    #: (section title, text) per server that changed data, once a failing test reported.
    fire_changes_report: Sequence[tuple[str, str]] = ()
    _fire_failed = False

    @classmethod
    def setUpClass(cls) -> None:
        # The class scope opens before the base class's set-up, so data that
        # django.test.TestCase.setUpTestData makes remotely lives in it too.
        cls.fire_remotes = {
            name: shared_remote(
                name, address, timeout=cls.fire_timeout, spin_wait=cls.fire_spin_wait
            )
            for name, address in _declared_servers(cls).items()
        }
        opened: list[Remote] = []
        cls.addClassCleanup(_end_scopes, opened)
        if not cls.fire_transactional:
            for remote in cls.fire_remotes.values():
                remote.begin_scope("class")
                opened.append(remote)
        super().setUpClass()

    def _callSetUp(self) -> None:
        mode = self.fire_data_changes
        if mode not in data_changes.MODES:
            modes = ", ".join(data_changes.MODES)
            raise FireError(f"fire_data_changes must be one of {modes}, not {mode!r}")
        scope = {"transactional": self.fire_transactional, "data_changes": mode != "off"}
        if not self.fire_transactional:
            # Cleanups run last-in first-out: this one after the test's scopes ended. The
            # class scope's end closes the one asked for after the class's last test.
            self.addCleanup(_begin_next_scopes, self.fire_remotes, scope)
        opened: list[Remote] = []
        # A test scope ends without waiting: its end's failure comes with the next test's
        # begin (or the class scope's end). A transactional one has neither: waited for.
        self.addCleanup(_end_scopes, opened, self.fire_transactional, f"test {self.id()}")
        for remote in self.fire_remotes.values():
            remote.begin_scope("test", **scope)
            opened.append(remote)
        if mode != "off":
            self.addCleanup(self._fire_report_changes)
        super()._callSetUp()  # type: ignore[misc]  # unittest's private hook: typeshed omits it

    def _callTestMethod(self, method: Callable[[], Any]) -> None:
        try:
            super()._callTestMethod(method)  # type: ignore[misc]  # unittest's private hook: typeshed omits it
        except unittest.SkipTest:
            raise
        except BaseException:
            self._fire_failed = True  # (unittest's own flag is reset for the cleanups)
            raise

    def _callTearDown(self) -> None:
        try:
            super()._callTearDown()  # type: ignore[misc]  # unittest's private hook: typeshed omits it
        except BaseException:
            self._fire_failed = True
            raise

    def fire_changes(self) -> dict[str, Any]:
        """Server name -> the rows this test changed so far, per database alias and table.

        See `fire.runners.data_changes` for the form; ``fire_data_changes_exclude`` applies.
        """
        return data_changes.collect(self.fire_remotes, self.fire_data_changes_exclude)

    def _fire_report_changes(self) -> None:
        """Before the scopes end: a failing test's data changes, into its failure message.

        The text also stays on the test (``fire_changes_report``), where the pytest plugin
        finds it for its report section.
        """
        failed = self._fire_failed
        if not failed and self.fire_data_changes != "always":
            return
        sections = [
            (data_changes.section_title(name, changes), data_changes.format_changes(changes))
            for name, changes in self.fire_changes().items()
            if data_changes.has_changes(changes)
        ]
        self.fire_changes_report = sections
        text = "".join(f"\n---- {title} ----\n{body}\n" for title, body in sections)
        if not text:
            return
        if not failed:
            sys.stderr.write(text)  # "always", for a passing test
            return
        # Into unittest's failure message; a runner that keeps none (pytest) reads
        # fire_changes_report instead.
        _append_to_failure(getattr(getattr(self, "_outcome", None), "result", None), self, text)


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


def _begin_next_scopes(remotes: Mapping[str, Remote], scope: dict[str, Any]) -> None:
    """Ask each server now for the next test's scope (`Remote.begin_next_scope`)."""
    for remote in remotes.values():
        remote.begin_next_scope("test", **scope)


def _end_scopes(remotes: list[Remote], wait: bool = True, of: str | None = None) -> None:
    """End the scopes opened on `remotes`; a test's (``wait=False``) without waiting.

    A test scope's end is answered with the next reply (the next test's first request),
    where a failure to roll it back is raised, naming ``end_scope`` and `of`, the test.
    """
    errors: list[BaseException] = []
    for remote in reversed(remotes):
        try:
            remote.end_scope(wait=wait, of=of)
        except Exception as exc:
            errors.append(exc)
    remotes.clear()
    if errors:
        raise errors[0]


class FireTestCase(FireTestMixin, unittest.TestCase):
    """A unittest TestCase whose tests run in a test scope on every declared fire server."""
