"""Start a service's fire server in its own interpreter, wait until it answers, stop it.

A subprocess is all this needs: the server is a long-running command of the service
(``manage.py runfireserver`` in the service's virtualenv), talked to over its socket.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FireError

__all__ = ["ServerSpec", "SpawnedServer", "parse_spawn_spec"]

_READY = re.compile(r"fire server ready at (\S+?)(?:, HTTP at (\S+))?$")


@dataclass
class ServerSpec:
    """How to start one service's server.

    `manage` is the service's manage.py; `python` its interpreter (default: this one);
    `settings` its DJANGO_SETTINGS_MODULE; `http` e.g. ``127.0.0.1:0``; `suffix` a suffix
    for its test database names, so that two servers of one project (two specs, or this
    run beside another) never share a test database.
    """

    name: str
    manage: Path
    python: str = sys.executable
    settings: str | None = None
    http: str | None = "127.0.0.1:0"
    suffix: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def parse_spawn_spec(text: str, base: Path | None = None) -> ServerSpec:
    """Parse ``NAME=path/to/manage.py[:python=…][:settings=mod][:http=H:P][:suffix=S]``.

    An empty ``http=`` starts no live HTTP server.
    """
    name, sep, rest = text.partition("=")
    if not sep or not rest:
        raise FireError(f"bad spawn spec {text!r}: expected NAME=path/to/manage.py[:key=value…]")
    manage, *options = rest.split(":")
    path = Path(manage)
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    spec = ServerSpec(name=name.strip(), manage=path.resolve())
    pending = iter(options)
    for option in pending:
        key, _, value = option.partition("=")
        if key == "http" and value:  # HOST:PORT contains the separator
            value = f"{value}:{next(pending, '0')}"
        if key in ("python", "settings", "http", "suffix"):
            setattr(spec, key, value or None)
        else:
            raise FireError(f"unknown spawn option {key!r} in {text!r}")
    if not spec.manage.is_file():
        raise FireError(f"fire server {spec.name!r}: {spec.manage} does not exist")
    return spec


class SpawnedServer:
    """One running ``runfireserver`` process; `start()` returns once it answers."""

    def __init__(
        self, spec: ServerSpec, *, suffix: str | None = None, socket_dir: str | None = None
    ) -> None:
        self.spec = spec
        #: The test database suffix: the spec's, then the worker's (``shop_gw0``).
        self.suffix = "_".join(part for part in (spec.suffix, suffix) if part) or None
        self._dir = socket_dir or tempfile.mkdtemp(prefix="fire-", dir="/tmp")
        label = f"{spec.name}-{self.suffix}" if self.suffix else spec.name
        self.address = os.path.join(self._dir, f"{label}.sock")
        self.url: str | None = None
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def command(self) -> list[str]:
        command = [self.spec.python, str(self.spec.manage), "runfireserver", self.address]
        if self.spec.http:
            command += ["--http", self.spec.http]
        if self.suffix:
            command += ["--db-suffix", self.suffix]
        return command + self.spec.args

    def start(self, timeout: float = 120.0) -> SpawnedServer:
        env = {**os.environ, **self.spec.env, "PYTHONUNBUFFERED": "1"}
        if self.spec.settings:
            env["DJANGO_SETTINGS_MODULE"] = self.spec.settings
        self._process = subprocess.Popen(
            self.command(),
            cwd=self.spec.manage.parent,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                what = "exited" if self._process.returncode is not None else "did not start"
                raise FireError(
                    f"fire server {self.spec.name!r} {what} ({' '.join(self.command())}); "
                    f"its output:\n" + "".join(self.output[-60:])
                )
        return self

    def _read(self, ready: threading.Event) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self.output.append(line)
            match = _READY.search(line.strip())
            if match:
                self.url = match.group(2)
                ready.set()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the server tears its test databases down), then SIGKILL if needed."""
        process = self._process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None
