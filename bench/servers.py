"""Server processes for the bench: start one, wait for its ready line, stop it.

Servers run in processes of their own, as in real use, so the client and the server
each have their own interpreter (and core) and the numbers include the real hand-off.
"""

from __future__ import annotations

import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Process", "start"]


@dataclass
class Process:
    """A started server and the line it printed when ready."""

    popen: subprocess.Popen[bytes]
    ready_line: str

    def stop(self) -> None:
        """SIGTERM (fire servers clean up their socket on it), then SIGKILL after 5 s."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def start(
    argv: list[str], ready: str, environ: dict[str, str], cwd: Path | None, timeout: float
) -> Process:
    """Start `argv`; return once it prints a line starting with `ready`, or raise naming why."""
    popen = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0, env=environ, cwd=cwd
    )
    assert popen.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            why = f"did not print {ready!r} within {timeout:g} s"
            break
        readable, _, _ = select.select([popen.stdout], [], [], remaining)
        if not readable:
            continue
        # Unbuffered: readline takes one line, so select() sees any that follow.
        line = popen.stdout.readline().decode(errors="replace")
        if line.startswith(ready):
            return Process(popen, line.strip())
        if not line:
            why = f"exited with status {popen.wait()} before printing {ready!r}"
            break
    Process(popen, "").stop()
    raise RuntimeError(f"{' '.join(argv)}: {why}")
