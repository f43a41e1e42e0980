"""Running fire servers in child processes, and counting a connection's round trips.

Socket paths live in short directories under /tmp (Unix socket paths are limited to
107 bytes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fire
from fire.net.curve import ClientKeys, read_public, read_secret
from fire.runners import supervise
from fire.wire import protocol

HERE = Path(__file__).resolve().parent
STARTUP_SECONDS = 20.0

#: A server with the knobs `python -m fire serve` does not expose.
CUSTOM_SERVER = """
import sys
import fire
from fire.runners.supervise import ready_line
address, max_message_size, low, high = sys.argv[1:5]
server = fire.Server(address, max_message_size=int(max_message_size),
                     versions=(int(low), int(high)))
server.bind()
print(ready_line(server.endpoint), flush=True)
server.serve_forever()
"""


POLL_SECONDS = 10.0  # a bound on waiting for the server to notice a disconnect


def wait_for(condition: Callable[[], bool]) -> bool:
    """Whether `condition()` becomes true within `POLL_SECONDS` (a bound, not a measure)."""
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def short_tmpdir() -> Path:
    """A fresh directory with a path short enough for Unix sockets."""
    return Path(tempfile.mkdtemp(prefix="fire-", dir="/tmp"))


def server_env() -> dict[str, str]:
    """The environment of server processes: `remote_helpers` importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    return env


class ServerProcess:
    """A fire server running in a child process."""

    def __init__(
        self, proc: subprocess.Popen[bytes], endpoint: str, path: Path | None, stderr_path: Path
    ) -> None:
        self.proc = proc
        self.endpoint = endpoint
        self.path = path  # the Unix socket, if any
        self.stderr_path = stderr_path
        self.stopped = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return str(self.path) if self.path is not None else self.endpoint

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)
        if signum == signal.SIGSTOP:
            self.stopped = True
        elif signum == signal.SIGCONT:
            self.stopped = False

    def kill(self) -> None:
        """SIGKILL (after SIGCONT if stopped) and reap; a no-op once the process is gone."""
        if self.proc.poll() is None:
            if self.stopped:
                self.proc.send_signal(signal.SIGCONT)
                self.stopped = False
            self.proc.kill()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def wait(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout=timeout)


def start_server(
    argv: list[str],
    directory: Path,
    *,
    umask: int | None = None,
    cwd: Path | None = None,
) -> ServerProcess:
    """Run `python ARGV…` and wait for its ready line (`fire.runners.supervise.start`)."""
    stderr_path = directory / f"stderr-{time.monotonic_ns()}.txt"
    preexec: Callable[[], Any] | None = None
    if umask is not None:

        def preexec() -> None:
            os.umask(umask)

    with open(stderr_path, "w") as stderr:
        try:
            proc, line = supervise.start(
                [sys.executable, *argv],
                timeout=STARTUP_SECONDS,
                stderr=stderr,
                env=server_env(),
                cwd=cwd or directory,
                preexec_fn=preexec,
            )
        except supervise.NotReady as exc:
            raise RuntimeError(
                f"fire server {argv} did not start: {exc}\n{stderr_path.read_text()}"
            ) from None
    endpoint, _ = supervise.parse_ready(line) or ("", None)
    path = Path(endpoint[len("ipc://") :]) if endpoint.startswith("ipc://") else None
    return ServerProcess(proc, endpoint, path, stderr_path)


def serve_argv(address: str | Path, *options: str) -> list[str]:
    return ["-m", "fire", "serve", str(address), *options]


def custom_server_argv(
    address: str | Path,
    *,
    max_message_size: int = 256 * 1024 * 1024,
    versions: tuple[int, int] = protocol.PROTOCOL_VERSIONS,
) -> list[str]:
    return ["-c", CUSTOM_SERVER, str(address), str(max_message_size), *map(str, versions)]


@dataclass(frozen=True)
class Keys:
    """Key files made by `python -m fire keys`: the server's, an allowed client's, another's."""

    server_secret: Path
    server_public: Path
    clients: Path  # the allowed clients' public keys
    client_secret: Path
    client_public: Path
    stranger_secret: Path  # a key pair not in `clients`

    def client(self, secret: Path | None = None, server: Path | None = None) -> ClientKeys:
        public, key = read_secret(secret or self.client_secret)
        return ClientKeys(public, key, read_public(server or self.server_public))


def make_keys(directory: Path) -> Keys:
    """A server's key pair, an allowed client's and a stranger's, under `directory`."""
    for subdirectory, name in (("server", "shop"), ("clients", "ci"), ("elsewhere", "stranger")):
        result = run_fire("keys", str(directory / subdirectory), name)
        assert result.returncode == 0, result.stderr
    return Keys(
        server_secret=directory / "server" / "shop.key_secret",
        server_public=directory / "server" / "shop.key",
        clients=directory / "clients",
        client_secret=directory / "clients" / "ci.key_secret",
        client_public=directory / "clients" / "ci.key",
        stranger_secret=directory / "elsewhere" / "stranger.key_secret",
    )


def curve_argv(keys: Keys, address: str, *options: str) -> list[str]:
    """`python -m fire serve` over CURVE TCP with `keys` (the server's, the allowed clients)."""
    return serve_argv(
        address,
        "--curve-secret",
        str(keys.server_secret),
        "--curve-clients",
        str(keys.clients),
        *options,
    )


def run_fire(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m fire ARGS…` to completion (for commands that must refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "fire", *args],
        capture_output=True,
        text=True,
        env=server_env(),
        cwd=cwd,
        timeout=60,
    )


class ExchangeCounter:
    """Counts the request/reply exchanges a Remote makes (one per round trip)."""

    def __init__(self, remote: fire.Remote) -> None:
        self.count = 0
        self.operations: list[str] = []
        original = remote._exchange

        def exchange(operation: str, args: list[Any], timeout: float | None = None) -> Any:
            self.count += 1
            self.operations.append(operation)
            return original(operation, args, timeout)

        remote._exchange = exchange  # type: ignore[method-assign]

    @contextlib.contextmanager
    def counting(self) -> Iterator[ExchangeCounter]:
        """Reset the count on entry; read `.count` after the block."""
        self.count = 0
        self.operations.clear()
        yield self
