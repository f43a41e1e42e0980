"""Start a service's fire server in its own interpreter, wait until it answers, stop it.

A small supervisor (`fire._supervise`) starts ``manage.py runfireserver`` as its child,
sends back its output and address, and stops it when asked or when its channel goes
away. With a ``gateway=`` spec the supervisor runs through an execnet gateway, in any
interpreter execnet reaches: ``popen//python=/srv/shop/.venv/bin/python`` on this
host, ``ssh=host//python=…`` on another. Without one it runs in a thread of this
process and starts the server with ``python=`` (default: this interpreter): the same
code, without the gateway's extra interpreter (about 100 ms per server here).

A server on this host listens on a Unix socket; one on another host on CURVE-secured
TCP, with key pairs made for this run (the server's secret key travels over the
gateway's channel, never through a file here).

The spec syntax (``--fire-spawn``, the ``fire_spawn`` ini option, ``fire_spawn`` of
FireTestCase)::

    NAME=path/to/manage.py[:settings=MOD][:http=HOST:PORT][:suffix=S][:python=PY]
                          [:host=H][:gateway=XSPEC]

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
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import zmq.auth

from . import _supervise
from .addresses import is_loopback
from .curve import ClientKeys
from .errors import FireError

__all__ = ["ServerSpec", "SpawnedServer", "parse_spawn_spec"]

#: The live HTTP server's address unless a spec names one.
DEFAULT_HTTP = "127.0.0.1:0"
_OPTIONS = ("python", "settings", "http", "suffix", "host")


@dataclass
class ServerSpec:
    """How to start one service's server.

    `manage` is the service's manage.py (a path on the gateway's host); `python` the
    interpreter that runs it without a gateway; `gateway` an execnet spec of the
    interpreter that runs the supervisor and the server; `settings` its
    DJANGO_SETTINGS_MODULE; `http` e.g. ``127.0.0.1:0``; `suffix` a suffix for its
    test database names, so that two servers of one project
    (two specs, or this run beside another) never share a test database; `host` the
    address a server on another host listens on and is reached at (default: the ssh
    host of the gateway).
    """

    name: str
    manage: PurePath
    python: str = sys.executable
    settings: str | None = None
    http: str | None = DEFAULT_HTTP
    suffix: str | None = None
    gateway: str | None = None
    host: str | None = None
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
    """Parse ``NAME=path/to/manage.py[:key=value…][:gateway=XSPEC]`` (see the module doc).

    An empty ``http=`` starts no live HTTP server. The manage.py path of a server on
    another host is taken as it is: it names a file there.
    """
    name, sep, rest = text.partition("=")
    if not sep or not rest:
        raise FireError(f"bad spawn spec {text!r}: expected NAME=path/to/manage.py[:key=value…]")
    rest, _, gateway = rest.partition(":gateway=")
    manage, *options = re.split(r":(?![^\[]*\])", rest)  # not inside [IPv6]
    spec = ServerSpec(name=name.strip(), manage=PurePath(manage), gateway=gateway or None)
    pending = iter(options)
    for option in pending:
        key, _, value = option.partition("=")
        if key == "http" and value:  # HOST:PORT contains the separator
            value = f"{value}:{next(pending, '0')}"
        if key not in _OPTIONS:
            raise FireError(
                f"unknown spawn option {key!r} in {text!r} (known: {', '.join(_OPTIONS)}, "
                "and gateway= last)"
            )
        setattr(spec, key, (value.strip("[]") if key == "host" else value) or None)
    if spec.python is None:
        spec.python = sys.executable
    if gateway and any(option.startswith("python=") for option in options):
        raise FireError(f"spawn spec {text!r}: give python= inside the gateway spec, not both")
    if not spec.is_remote:
        path = Path(manage)
        spec.manage = (path if path.is_absolute() else (base or Path.cwd()) / path).resolve()
        if not Path(spec.manage).is_file():
            raise FireError(f"fire server {spec.name!r}: {spec.manage} does not exist")
    return spec


class SpawnedServer:
    """One running ``runfireserver``, started through an execnet gateway.

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
        if spec.is_remote:
            self.address = f"tcp://{_bracketed(spec.listen_host())}:0"
        else:
            folder = socket_dir or tempfile.mkdtemp(prefix="fire-", dir="/tmp")
            self.address = os.path.join(folder, f"{label}.sock")
        self.url: str | None = None
        self.output: list[str] = []
        self.pid: int | None = None
        self.host: str | None = None
        self.client_keys: ClientKeys | None = None
        self._gateway: Any = None
        self._channel: Any = None
        self._ready = threading.Event()
        self._ended = threading.Event()
        self._returncode: int | None = None

    def command(self) -> list[str]:
        """The arguments after the interpreter (a TCP server also gets its key options)."""
        command = [str(self.spec.manage), "runfireserver", self.address]
        http = self._http()
        if http:
            command += ["--http", http]
        if self.spec.is_remote and not is_loopback(self.spec.listen_host()):
            command.append("--allow-remote")
        if self.suffix:
            command += ["--db-suffix", self.suffix]
        return command + self.spec.args

    def _http(self) -> str | None:
        http = self.spec.http
        if http == DEFAULT_HTTP and self.spec.is_remote:  # reachable from here
            return f"{self.spec.listen_host()}:0"
        return http

    def start(self, timeout: float = 120.0) -> SpawnedServer:
        environ = dict(self.spec.env)
        if self.spec.settings:
            environ["DJANGO_SETTINGS_MODULE"] = self.spec.settings
        request = {
            "argv": self.command(),
            "cwd": str(self.spec.manage.parent),
            "env": environ,
            "keys": self._make_keys() if self.spec.is_remote else None,
            "python": None if self.spec.gateway else self.spec.python,
        }
        if self.spec.gateway:
            self._open_gateway(self.spec.gateway)
        else:
            self._channel = _LocalChannel(self._receive)
        self._channel.send(request)
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._ended.is_set() or time.monotonic() > deadline:
                what = "exited" if self._ended.is_set() else "did not start"
                self.stop()
                raise FireError(
                    f"fire server {self.spec.name!r} {what} ({self.describe()}); "
                    f"its output:\n" + "".join(self.output[-60:]) + self._hint()
                )
        return self

    def _hint(self) -> str:
        """The fix, where the output shows a cause that has a known one."""
        if any("Unknown command: 'runfireserver'" in line for line in self.output):
            settings = self.spec.settings or "the service's settings"
            return (
                f'\nfire: runfireserver is unknown there: add "djfire" to INSTALLED_APPS in '
                f"{settings} (and install djfire in the service's environment)"
            )
        return ""

    def _open_gateway(self, spec: str) -> None:
        import execnet

        try:
            self._gateway = execnet.makegateway(spec)
        except Exception as exc:  # execnet raises plain errors (HostNotFound, OSError…)
            raise FireError(
                f"fire server {self.spec.name!r}: cannot open the execnet gateway {spec!r}: {exc}"
            ) from None
        self._channel = self._gateway.remote_exec(_supervise)
        self._channel.setcallback(self._receive, endmarker=None)

    def describe(self) -> str:
        """The command, and where it runs."""
        if self.spec.gateway:
            where = f" on {self.host}" if self.host else ""
            return f"python {' '.join(self.command())} via {self.spec.gateway}{where}"
        return f"{self.spec.python} {' '.join(self.command())}"

    def _make_keys(self) -> dict[str, str]:
        """A key pair for the server and one for this client, made for this run."""
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
        elif kind in ("exited", "stopped"):
            self._returncode = values[0]
            self._ended.set()

    def stop(self, timeout: float = 40.0) -> int | None:
        """Stop the server (SIGTERM: it tears its test databases down), then the gateway."""
        channel, gateway = self._channel, self._gateway
        if channel is None:
            return self._returncode
        self._channel = self._gateway = None
        try:
            if not channel.isclosed():
                channel.send("stop")
            self._ended.wait(timeout)
        except (OSError, EOFError, ValueError):  # the gateway is gone already
            pass
        finally:
            if gateway is not None:
                gateway.exit()
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
            _supervise.supervise(_SupervisorEnd(self))
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
