"""The live fuzzer's server: ``python -m fire serve`` in a child process, and its RSS.

A plain fire server (no Django) on a Unix socket in its own /tmp/fire-fuzz-* directory,
which `LiveServer.stop` removes; the checkout is on its path, so ``fuzz.playground``
imports there. Its bound on a request is small (`MAX_MESSAGE_SIZE`), so that requests
past it cost little to send.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from fire.runners import supervise

#: The server's ``--max-message-size``: 1 MiB.
MAX_MESSAGE_SIZE = 1024 * 1024
#: glibc's thresholds fixed (they adapt by default): a freed buffer over 128 KiB goes
#: back to the system at once, so that the RSS reads what the server holds, not the
#: large messages it once held (without them it wandered between 46 and 78 MiB over
#: runs of the same machine).
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
#: A bound on the server's start (a loaded machine), not a measure.
START_SECONDS = 60.0
CHECKOUT = Path(__file__).resolve().parent.parent


class LiveServer:
    """A ``python -m fire serve`` process; `stop` ends it and removes its directory."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="fire-fuzz-", dir="/tmp"))
        self.path = self.directory / "fuzz.sock"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(CHECKOUT), env.get("PYTHONPATH", "")) if p
        )
        env.update(STEADY_MALLOC)
        argv = [sys.executable, "-m", "fire", "serve", str(self.path)]
        argv += ["--max-message-size", str(MAX_MESSAGE_SIZE)]
        try:
            self.process, line = supervise.start(
                argv, timeout=START_SECONDS, env=env, cwd=self.directory
            )
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        endpoint, _ = supervise.parse_ready(line) or ("", None)
        self.endpoint = endpoint

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_kib(self) -> int:
        """The server's resident set (``VmRSS`` of /proc/PID/status), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def stop(self) -> int:
        """SIGTERM (SIGKILL if it does not end), reap, remove the directory; its exit code."""
        try:
            code = supervise.stop(self.process)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            shutil.rmtree(self.directory, ignore_errors=True)
        return code
