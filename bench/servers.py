"""Server processes for the bench: start one, wait for its ready line, stop it.

Servers run in processes of their own, as in real use, so the client and the server
each have their own interpreter (and core) and the numbers include the real hand-off.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from fire.runners import supervise

__all__ = ["Process", "start"]


@dataclass
class Process:
    """A started server and the line it printed when ready."""

    popen: subprocess.Popen[bytes]
    ready_line: str

    def stop(self) -> None:
        """SIGTERM (fire servers clean up their socket on it), then SIGKILL after 5 s."""
        supervise.stop(self.popen, seconds=5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def start(
    argv: list[str], ready: str, environ: dict[str, str], cwd: Path | None, timeout: float
) -> Process:
    """Start `argv`; return once it prints a line starting with `ready`, or raise naming why."""
    try:
        popen, line = supervise.start(
            argv,
            lambda line: line.startswith(ready),
            timeout,
            stdin=subprocess.DEVNULL,
            env=environ,
            cwd=cwd,
        )
    except supervise.NotReady as exc:
        raise RuntimeError(f"{' '.join(argv)}: {exc} ({ready!r})") from None
    return Process(popen, line.strip())
