"""A command under a pseudo-terminal that it has as its controlling terminal, as a person
runs it: what the Ctrl-C tests type ^C into and the remote debugger's tests answer pdb in."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path


class Terminal:
    """`command` in `path`, its input and output a pseudo-terminal, with `env` added."""

    def __init__(self, path: Path, command: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=path,
            env=env,
            preexec_fn=_controlling_terminal,
        )
        os.close(slave)
        self.output = ""

    def read_until(self, done: Callable[[str], bool], seconds: float) -> bool:
        """Read the output until `done(output)` or the process's end; False after `seconds`."""
        deadline = time.monotonic() + seconds
        while not done(self.output) and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the terminal's last process ended
                    data = b""
                if not data:
                    return done(self.output)
                self.output += data.decode(errors="replace")
        return done(self.output)

    def type(self, line: str) -> None:
        """Type `line` and Enter."""
        os.write(self.master, line.encode() + b"\n")

    def ctrl_c(self) -> float:
        """Type Ctrl-C; returns when."""
        os.write(self.master, b"\x03")
        return time.monotonic()

    def wait_exit(self, seconds: float) -> int | None:
        """The exit status, reading the output meanwhile; None if still running after `seconds`."""
        deadline = time.monotonic() + seconds
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read_until(lambda _: False, 0.2)
        self.read_until(lambda _: False, 0.2)  # the rest
        return self.process.poll()

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


def _controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # As a terminal's shell starts its foreground job: SIGINT at its default. A suite
    # started in the background (`make test &` in a script, as CI runners may) ignores
    # SIGINT, and a child inherits that: Python then installs no KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
