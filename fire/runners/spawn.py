"""Start a service's fire server in its own interpreter, wait until it answers, stop it.

How a kind of service starts its server is not fire's knowledge: a `Launcher` says it
(the command, its options, the environment variable of its settings, the fixes for
known failures), and a framework provides one through the ``fire.launchers`` entry
point group. djfire's, ``django``, runs ``manage.py runfireserver``. A spec names its
launcher with ``launcher=NAME``; without it, the one installed launcher.

A small supervisor (`fire.runners.supervise`) starts the launcher's command as its child,
sends back its output and address, and stops it when asked or when its channel goes
away. With a ``gateway=`` spec the supervisor runs through an execnet gateway, in any
interpreter execnet reaches: ``popen//python=/srv/shop/.venv/bin/python`` on this
host, ``ssh=host//python=…`` on another. Without one it runs in a thread of this
process and starts the server with ``python=`` (default: this interpreter): the same
code, without the gateway's extra interpreter (docs/design.md has the start-up times).

A server on this host listens on a Unix socket; one on another host on CURVE-secured
TCP, with key pairs made for this run (the server's secret key travels over the
gateway's channel, never through a file here).

The spec syntax (``--fire-spawn``, the ``fire_spawn`` ini option, ``fire_spawn`` of
FireTestCase)::

    NAME=PROGRAM[:settings=MOD][:http=HOST:PORT][:suffix=S][:python=PY]
                [:host=H][:launcher=NAME][:data_changes=off][:rebuild_db=on]
                [:gateway=XSPEC]

``PROGRAM`` is the file the launcher's command runs (djfire: the service's manage.py).

``data_changes=off`` starts the server without its data-change capture (djfire:
``runfireserver --no-data-changes``; ``on``, the default, with it).

``rebuild_db=on`` has the server build its test databases' templates again instead of
cloning them (djfire: ``runfireserver --rebuild-db``; ``off``, the default, clones).

``host=`` is where a server on another host listens and is reached (an IPv6 address in
brackets: ``host=[fd00::7]``).

``gateway=`` comes last and takes the rest of the spec verbatim, so an execnet spec may
hold ``:`` and ``=`` (``gateway=ssh=-p 2222 ci@host//python=/srv/venv/bin/python``).
``python=PY`` runs the server with that interpreter without a gateway.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path, PurePath
from typing import Any

from ..errors import FireError
from ..net.addresses import SOCKET_DIR_VARIABLE, is_loopback
from ..net.curve import ClientKeys
from . import supervise

__all__ = [
    "LAUNCHER_GROUP",
    "Launcher",
    "ServerSpec",
    "SpawnedServer",
    "installed_launchers",
    "parse_spawn_spec",
]

#: The live HTTP server's address unless a spec names one.
DEFAULT_HTTP = "127.0.0.1:0"
#: The entry point group where frameworks provide their `Launcher`.
LAUNCHER_GROUP = "fire.launchers"
_OPTIONS = (
    "python",
    "settings",
    "http",
    "suffix",
    "host",
    "launcher",
    "data_changes",
    "rebuild_db",
)
_SWITCHES = {"on": True, "off": False}


@dataclass(frozen=True)
class Launcher:
    """How one kind of service starts its fire server: what fire's spawner cannot know.

    Attributes:
        name: the service kind, in messages ("Django").
        command: the arguments after the interpreter; ``{program}`` and ``{address}``
            are replaced by the spec's program and the address to serve at.
        http_option, suffix_option, allow_remote_option: the command's options for a
            live HTTP server's address, a test database suffix, and serving beyond
            loopback (None: the command has no such option).
        no_data_changes_option: the command's option that turns the data-change
            capture off (None: it has none, and a spec's ``data_changes=off`` does
            nothing).
        rebuild_option: the command's option that makes it rebuild what it would reuse
            to start fast (djfire: its test databases' templates); None: it has none.
        cleanup_option: the command's option that makes it, instead of serving, drop
            the test databases a server started with the same options left when a signal
            killed it before its teardown (None: it has none, and such a server's are left).
            The supervisor runs it after such a death (`fire.runners.supervise`).
        settings_variable: the environment variable a spec's ``settings=`` sets.
        start_command: how a person starts a server at ``{address}``, for the fix of
            "no fire server there" errors.
        hints: text in the server's output -> the fix to add to the start-up error
            (``{settings}`` is replaced by the spec's settings, or "the service's
            settings").
        program: the program's usual file name in a service's directory (djfire:
            ``manage.py``), named when a spec gives the directory instead.
    """

    name: str
    command: tuple[str, ...]
    http_option: str | None = None
    suffix_option: str | None = None
    allow_remote_option: str | None = None
    no_data_changes_option: str | None = None
    rebuild_option: str | None = None
    cleanup_option: str | None = None
    settings_variable: str | None = None
    start_command: str | None = None
    hints: Mapping[str, str] = field(default_factory=dict)
    program: str | None = None


@cache
def installed_launchers() -> dict[str, Launcher]:
    """Entry point name -> `Launcher`, for every framework installed here."""
    return {point.name: point.load() for point in entry_points(group=LAUNCHER_GROUP)}


def default_start_command() -> str | None:
    """The one installed launcher's `Launcher.start_command` (None unless exactly one)."""
    launchers = list(installed_launchers().values())
    return launchers[0].start_command if len(launchers) == 1 else None


def _launcher(name: str | None, text: str) -> Launcher:
    launchers = installed_launchers()
    if name is not None:
        try:
            return launchers[name]
        except KeyError:
            raise FireError(
                f"spawn spec {text!r}: no launcher {name!r} is installed (installed: "
                f"{', '.join(launchers) or 'none'})"
            ) from None
    if len(launchers) == 1:
        return next(iter(launchers.values()))
    if not launchers:
        raise FireError(
            f"spawn spec {text!r}: no launcher is installed, so fire cannot tell how to "
            f"start this service's server: install the framework's fire package (djfire "
            f"for a Django service), which provides one in the {LAUNCHER_GROUP!r} entry "
            "points"
        )
    raise FireError(
        f"spawn spec {text!r}: several launchers are installed ({', '.join(launchers)}): "
        "name one with :launcher=NAME"
    )


@dataclass
class ServerSpec:
    """How to start one service's server.

    `program` is the file the launcher's command runs (a path on the gateway's host;
    djfire: the service's manage.py); `launcher` how the service starts its server;
    `python` the interpreter that runs it without a gateway; `gateway` an execnet spec
    of the interpreter that runs the supervisor and the server; `settings` the value of
    the launcher's settings variable; `http` e.g. ``127.0.0.1:0``; `suffix` a suffix for its
    test database names, so that two servers of one project
    (two specs, or this run beside another) never share a test database; `host` the
    address a server on another host listens on and is reached at (default: the ssh
    host of the gateway); `data_changes` False starts it without its data-change capture;
    `rebuild_db` True has it rebuild its templates (`Launcher.rebuild_option`).
    """

    name: str
    program: PurePath
    launcher: Launcher
    python: str = sys.executable
    settings: str | None = None
    http: str | None = DEFAULT_HTTP
    suffix: str | None = None
    gateway: str | None = None
    host: str | None = None
    data_changes: bool = True
    rebuild_db: bool = False
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def is_remote(self) -> bool:
        """Whether the server runs on another host (reached over CURVE TCP)."""
        return self.gateway is not None and not self.gateway.startswith("popen")

    def listen_host(self) -> str:
        """The host a remote server listens on and is reached at."""
        if self.host:
            return self.host
        for part in (self.gateway or "").split("//"):
            key, _, value = part.partition("=")
            if key == "ssh" and value.split():
                return value.split()[-1].rpartition("@")[2]
            if key == "socket":
                return value.rpartition(":")[0]
        raise FireError(
            f"fire server {self.name!r}: cannot tell which host the gateway "
            f"{self.gateway!r} reaches: add :host=ADDRESS before :gateway="
        )


def parse_spawn_spec(text: str, base: Path | None = None) -> ServerSpec:
    """Parse ``NAME=PROGRAM[:key=value…][:gateway=XSPEC]`` (see the module doc).

    An empty ``http=`` starts no live HTTP server. The program path of a server on
    another host is taken as it is: it names a file there.
    """
    name, sep, rest = text.partition("=")
    if not sep or not rest:
        raise FireError(f"bad spawn spec {text!r}: expected NAME=PROGRAM[:key=value…]")
    rest, _, gateway = rest.partition(":gateway=")
    program, *options = re.split(r":(?![^\[]*\])", rest)  # not inside [IPv6]
    chosen = next((o.partition("=")[2] for o in options if o.startswith("launcher=")), None)
    spec = ServerSpec(
        name=name.strip(),
        program=PurePath(program),
        launcher=_launcher(chosen or None, text),
        gateway=gateway or None,
    )
    pending = iter(options)
    for option in pending:
        if option.startswith("launcher="):
            continue
        key, _, value = option.partition("=")
        if key == "http" and value:  # HOST:PORT contains the separator
            value = f"{value}:{next(pending, '0')}"
        if key not in _OPTIONS:
            raise FireError(
                f"unknown spawn option {key!r} in {text!r} (known: {', '.join(_OPTIONS)}, "
                "and gateway= last)"
            )
        if key in ("data_changes", "rebuild_db"):
            if value not in _SWITCHES:
                raise FireError(f"spawn spec {text!r}: {key} takes on or off, not {value!r}")
            setattr(spec, key, _SWITCHES[value])
            continue
        setattr(spec, key, (value.strip("[]") if key == "host" else value) or None)
    if spec.python is None:
        spec.python = sys.executable
    if gateway and any(option.startswith("python=") for option in options):
        raise FireError(f"spawn spec {text!r}: give python= inside the gateway spec, not both")
    if not spec.is_remote:
        path = Path(program)
        spec.program = (path if path.is_absolute() else (base or Path.cwd()) / path).resolve()
        if not Path(spec.program).is_file():
            raise FireError(f"fire server {spec.name!r}: {_not_a_program(spec)}")
        if spec.gateway:
            spec.gateway = _popen_python(spec, text)
    return spec


def _popen_python(spec: ServerSpec, text: str) -> str:
    """A ``popen`` gateway's relative ``python=`` resolved against the program's directory.

    execnet would start it from the runner's current directory: another project's
    interpreter, or none. Resolved as ``python=`` without a gateway is (where the server
    starts), not through symlinks (a virtualenv's python is one); a bare name stays a
    name looked up on PATH.
    """
    assert spec.gateway is not None
    parts = spec.gateway.split("//")
    if parts[0] != "popen":
        return spec.gateway
    for index, part in enumerate(parts):
        key, sep, value = part.partition("=")
        if key != "python" or not sep or "/" not in value or os.path.isabs(value):
            continue
        resolved = os.path.normpath(Path(spec.program).parent / value)
        if not os.path.isfile(resolved):
            raise FireError(
                f"spawn spec {text!r}: the gateway's python={value} is relative, so it is "
                f"taken from the directory of {spec.program} (where the server starts): "
                f"{resolved} does not exist; give the interpreter's absolute path"
            )
        parts[index] = f"python={resolved}"
    return "//".join(parts)


def _not_a_program(spec: ServerSpec) -> str:
    """What is at a spec's program path instead of a file, and the file it may mean."""
    path, usual = Path(spec.program), spec.launcher.program
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a file"
    if usual and (path / usual).is_file():
        return f"{path} is a directory; its {usual} is {path / usual}: give that"
    found = sorted(child.name + ("/" if child.is_dir() else "") for child in path.iterdir())
    listed = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
    wanted = f"the {usual}" if usual else "the program"
    return f"{path} is a directory, not {wanted} to run; it holds " + (
        listed if found else "nothing"
    )


class SpawnedServer:
    """One running server, started by its launcher's command through an execnet gateway.

    `start()` returns once it answers; `address` and `url` are then where it does;
    `output` collects what it prints. A server on another host gets a key pair made for
    this run, and `client_keys` is what a client needs to reach it.
    """

    def __init__(
        self, spec: ServerSpec, *, suffix: str | None = None, socket_dir: str | None = None
    ) -> None:
        self.spec = spec
        #: The test database suffix: the spec's, then the worker's (``shop_gw0``).
        self.suffix = "_".join(part for part in (spec.suffix, suffix) if part) or None
        label = f"{spec.name}-{self.suffix}" if self.suffix else spec.name
        #: The directory this server made for its socket (removed by `stop`).
        self._folder: str | None = None
        if spec.is_remote:
            self.address = f"tcp://{_bracketed(spec.listen_host())}:0"
        else:
            if socket_dir is None:  # /tmp: a Unix socket's path has ~100 bytes at most
                socket_dir = self._folder = tempfile.mkdtemp(prefix="fire-", dir="/tmp")
            self.address = os.path.join(socket_dir, f"{label}.sock")
        self.url: str | None = None
        self.output: list[str] = []
        #: Why the server did not start ("exited (COMMAND)"), None unless it failed to.
        self.failure: str | None = None
        self.pid: int | None = None
        self.host: str | None = None
        self.client_keys: ClientKeys | None = None
        self._gateway: Any = None
        self._channel: Any = None
        self._ready = threading.Event()
        self._ended = threading.Event()  # the server exited, or the supervisor finished
        self._killed = threading.Event()  # a signal ended it: the clean-up runs
        self._finished = threading.Event()  # the supervisor finished (its files removed)
        self._returncode: int | None = None
        self._asked_to_stop = False
        #: The options of ``coverage run`` to measure the server with (set before `start`;
        #: `fire.runners.coverage`), or None: not measured.
        self.coverage: list[str] | None = None
        #: The coverage data files the server wrote as it stopped: (file name, bytes).
        self.coverage_data: list[tuple[str, bytes]] = []
        #: Why the server's coverage data is lost (killed, read-only directory…), or None.
        self.coverage_lost: str | None = None

    def command(self) -> list[str]:
        """The arguments after the interpreter (a TCP server also gets its key options)."""
        launcher = self.spec.launcher
        command = [
            part.format(program=self.spec.program, address=self.address)
            for part in launcher.command
        ]
        http = self._http()
        if http and launcher.http_option:
            command += [launcher.http_option, http]
        remote = self.spec.is_remote and not is_loopback(self.spec.listen_host())
        if remote and launcher.allow_remote_option:
            command.append(launcher.allow_remote_option)
        if self.suffix and launcher.suffix_option:
            command += [launcher.suffix_option, self.suffix]
        if not self.spec.data_changes and launcher.no_data_changes_option:
            command.append(launcher.no_data_changes_option)
        if self.spec.rebuild_db and launcher.rebuild_option:
            command.append(launcher.rebuild_option)
        return command + self.spec.args

    def _http(self) -> str | None:
        http = self.spec.http
        if http == DEFAULT_HTTP and self.spec.is_remote:  # reachable from here
            return f"{self.spec.listen_host()}:0"
        return http

    def start(self, timeout: float = 120.0) -> SpawnedServer:
        environ = dict(self.spec.env)
        if self._folder is not None:  # the server removes it too: this process may die first
            environ[SOCKET_DIR_VARIABLE] = self._folder
        if self.spec.settings and self.spec.launcher.settings_variable:
            environ[self.spec.launcher.settings_variable] = self.spec.settings
        request = {
            "argv": self.command(),
            "cwd": str(self.spec.program.parent),
            "env": environ,
            "keys": self._make_keys() if self.spec.is_remote else None,
            "python": None if self.spec.gateway else self.spec.python,
            "cleanup": self.spec.launcher.cleanup_option,
            "coverage": None
            if self.coverage is None
            else {"options": self.coverage, "data_file": f".coverage.fire-{self.spec.name}"},
        }
        if self.spec.gateway:
            try:
                self._open_gateway(self.spec.gateway)
            except BaseException:
                self.stop()  # the socket's directory and the keys made for it go too
                raise
        else:
            self._channel = _LocalChannel(self._receive)
        self._channel.send(request)
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._ended.is_set() or time.monotonic() > deadline:
                what = "exited" if self._ended.is_set() else "did not start"
                self.failure = f"{what} ({self.describe()})"
                self.stop()
                output = "".join(self.output[-60:])
                raise FireError(
                    f"fire server {self.spec.name!r} {self.failure}; "
                    + (f"its output:\n{output}" if output.strip() else "it printed nothing")
                    + self._hint()
                )
        return self

    def _hint(self) -> str:
        """The fix, where the output shows a cause the launcher knows (`Launcher.hints`)."""
        settings = self.spec.settings or "the service's settings"
        for cause, fix in self.spec.launcher.hints.items():
            if any(cause in line for line in self.output):
                return "\nfire: " + fix.format(settings=settings)
        return ""

    def _open_gateway(self, spec: str) -> None:
        import execnet

        try:
            self._gateway = execnet.makegateway(spec)
        except Exception as exc:  # execnet raises plain errors (HostNotFound, OSError…)
            raise FireError(
                f"fire server {self.spec.name!r}: cannot open the execnet gateway {spec!r}: {exc}"
            ) from None
        self._channel = self._gateway.remote_exec(supervise)
        self._channel.setcallback(self._receive, endmarker=None)

    def describe(self) -> str:
        """The command, and where it runs."""
        if self.spec.gateway:
            where = f" on {self.host}" if self.host else ""
            return f"python {' '.join(self.command())} via {self.spec.gateway}{where}"
        return f"{self.spec.python} {' '.join(self.command())}"

    def _make_keys(self) -> dict[str, str]:
        """A key pair for the server and one for this client, made for this run."""
        import zmq.auth  # only here: TCP servers are few (fire.net.curve says why)

        folder = tempfile.mkdtemp(prefix="fire-keys-")
        try:
            zmq.auth.create_certificates(folder, "server")
            zmq.auth.create_certificates(folder, "client")
            public, secret = zmq.auth.load_certificate(os.path.join(folder, "client.key_secret"))
            server = zmq.auth.load_certificate(os.path.join(folder, "server.key"))[0]
            assert secret is not None
            self.client_keys = ClientKeys(public, secret, server, "the keys made for this run")
            return {
                "server_secret": Path(folder, "server.key_secret").read_text(),
                "client_public": Path(folder, "client.key").read_text(),
            }
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _receive(self, message: Any) -> None:
        """Messages of the supervisor (execnet's receiver thread); None: the channel closed."""
        if message is None:
            self._ended.set()
            self._finished.set()
            return
        kind, *values = message
        if kind == "output":
            self.output.append(values[0])
        elif kind == "host":
            self.host = values[0]
        elif kind == "ready":
            endpoint, self.url, self.pid = values
            if self.spec.is_remote:
                self.address = endpoint
            self._ready.set()
        elif kind == "coverage":
            self.coverage_data.append((values[0], values[1]))
        elif kind == "coverage-lost":
            self.coverage_lost = values[0]
        elif kind == "killed":
            self._returncode = values[0]
            self._killed.set()
        elif kind in ("exited", "stopped"):
            self._returncode = values[0]
            self._ended.set()

    def exited(self, timeout: float = 0.0) -> bool:
        """Whether the server's process ended (or its supervisor did), waiting up to
        `timeout` seconds for the supervisor to say so; `returncode` is then its status.

        A server killed by a signal has ended once the clean-up of what it left has too
        (waited for however long it takes, within `supervise.CLEANUP_SECONDS`), so that
        `output` then holds the clean-up's lines.
        """
        if self._ended.wait(timeout):
            return True
        return self._killed.is_set() and self._ended.wait(supervise.CLEANUP_SECONDS + 5)

    @property
    def returncode(self) -> int | None:
        """The server's exit status once it ended (-N: killed by signal N), else None."""
        return self._returncode

    @property
    def socket_dir(self) -> str | None:
        """The directory made for the server's socket, until `stop` removes it."""
        return self._folder

    @property
    def asked_to_stop(self) -> bool:
        """Whether the run asked the server to stop (its end is then no loss)."""
        return self._asked_to_stop

    def ask_to_stop(self, *, interrupted: bool = False) -> None:
        """Have the supervisor send the server SIGTERM, without waiting (`stop` waits):
        a runner stops all its servers at once. For an `interrupted` run, SIGINT, as the
        terminal's Ctrl-C would (a server in a session of its own, or on another host,
        misses that): the server does not finish the spare it may be making."""
        channel = self._channel
        if channel is None or self._asked_to_stop:
            return
        self._asked_to_stop = True
        try:
            if not channel.isclosed():
                channel.send("interrupt" if interrupted else "stop")
        except (OSError, EOFError, ValueError):  # the gateway is gone already
            pass

    def stop(self, timeout: float = 40.0) -> int | None:
        """Stop the server (SIGTERM: it tears its test databases down), then the gateway.

        Waits for the supervisor to finish (it removes its key files), up to `timeout`
        seconds, then removes the socket's directory this server made; also when the
        server never started.
        """
        self.ask_to_stop()
        channel, gateway = self._channel, self._gateway
        self._channel = self._gateway = None
        try:
            if channel is not None:
                self._finished.wait(timeout)
        finally:
            if gateway is not None:
                gateway.exit()
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
        return self._returncode


class _LocalChannel:
    """Stands for an execnet channel when the supervisor runs in a thread of this process.

    `send` goes to the supervisor; what the supervisor sends goes to `deliver`, as an
    execnet channel's callback would (None once the supervisor has finished).
    """

    def __init__(self, deliver: Any) -> None:
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._deliver = deliver
        self._closed = False
        threading.Thread(target=self._run, daemon=True, name="fire supervisor").start()

    def _run(self) -> None:
        try:
            supervise.supervise(_SupervisorEnd(self))
        finally:
            self._closed = True
            self._deliver(None)

    def send(self, message: Any) -> None:
        self._inbox.put(message)

    def isclosed(self) -> bool:
        return self._closed


class _SupervisorEnd:
    """The supervisor's end of a `_LocalChannel`."""

    def __init__(self, channel: _LocalChannel) -> None:
        self._channel = channel

    def receive(self) -> Any:
        return self._channel._inbox.get()

    def send(self, message: Any) -> None:
        self._channel._deliver(message)

    def isclosed(self) -> bool:
        return self._channel._closed


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
