"""Ctrl-C during a run: the first ends it within seconds, cleanly; a second ends it at once.

After the first Ctrl-C nothing waits on a full timeout: the connections are closed
(`fire.Remote` closes the one whose reply it was waiting for; the runner the others),
so a proxy's ``repr`` or a summary's ``info()`` fails at once instead of waiting for a
busy server, and the spawned servers are stopped together, each given `STOP_WAIT`
seconds to roll back and drop its test databases (a server in a long call ends it:
`fire.server.loop.Server.interrupt`). A second Ctrl-C while that goes on exits the
process at once, after one line naming what may be left (`leftovers`): the servers
still tearing down keep going on their own (their supervisor's death sends them
SIGTERM), but nobody waits to see them finish.

A pytest-xdist worker does not finish its session after a Ctrl-C (`end_worker`): the
terminal's Ctrl-C reached the controller too, which reports the run and waits for each
worker to end (execnet kills one after 10 s); what a worker would do meanwhile (its own
summary, which nobody sees, other plugins' hooks) is time the whole run waits. It stops
its servers and exits.

A worker's servers are its own, so the controller's second Ctrl-C would know nothing of
them: each worker reports the servers it spawned (`Leftover`, `write_report`) in a file
of a directory the controller made, as it starts them and as it stops them, and the
controller's line names them too (`read_reports`). xdist's channel carries no message
of a plugin's own before a worker ends, hence files.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "EXIT_STATUS",
    "STOP_WAIT",
    "Leftover",
    "end_worker",
    "exit_on_second_interrupt",
    "leftovers",
    "read_reports",
    "restore",
    "write_report",
]

#: Seconds an interrupted run waits for its spawned servers to tear down (40 s otherwise).
STOP_WAIT = 10.0
#: The exit status of a run ended by a second Ctrl-C (pytest's for an interrupted run).
EXIT_STATUS = 2


@dataclass(frozen=True)
class Leftover:
    """A spawned server not known to have stopped, and what it holds: its test
    `databases` (as its handshake named them; empty if the run never connected), its
    `socket_dir` (made for it by the runner) or else its `address`; `worker`: the
    pytest-xdist worker that spawned it, for the controller's line."""

    name: str
    pid: int | None
    databases: tuple[str, ...]
    socket_dir: str | None
    address: str
    worker: str | None = None

    def describe(self) -> str:
        where = f" (pid {self.pid})" if self.pid else ""
        databases = self.databases
        held = [f"test databases {', '.join(databases)}" if databases else "its test databases"]
        folder = self.socket_dir
        held.append(f"socket directory {folder}" if folder else f"socket {self.address}")
        worker = f"[{self.worker}] " if self.worker else ""
        return f"{worker}server {self.name!r}{where} with {' and '.join(held)}"


def leftovers(servers: Iterable[Leftover]) -> str:
    """One line naming what `servers` may leave."""
    parts = [server.describe() for server in servers]
    if not parts:
        return "nothing is left: every spawned server had stopped"
    return "may be left, if their teardown does not finish: " + "; ".join(parts)


def write_report(directory: str, worker: str, servers: Iterable[Leftover]) -> None:
    """Report a worker's `servers` (all it has now) in `directory`, replacing its last
    report at once (a reader never sees half of one)."""
    path = Path(directory, f"{worker}.json")
    text = json.dumps([asdict(server) for server in servers])
    partial = path.with_suffix(".partial")
    try:
        partial.write_text(text)
        partial.replace(path)
    except OSError:  # the controller ended and removed the directory: nobody reads it
        pass


def read_reports(directory: str) -> list[Leftover]:
    """The servers the workers reported in `directory` (`write_report`), by worker."""
    servers = []
    for path in sorted(Path(directory).glob("*.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            reported = json.loads(path.read_text())
            worker = path.stem
            for fields in reported:
                fields["databases"] = tuple(fields["databases"])
                servers.append(Leftover(**{**fields, "worker": worker}))
    return servers


def exit_on_second_interrupt(
    describe: Callable[[], str], *, worker: bool = False
) -> Callable[[], None]:
    """From now on SIGINT prints ``fire: interrupted again…`` and `describe()`, then exits
    the process at once. Returns what puts the previous handler back (`restore`).

    In a pytest-xdist `worker` SIGINT is ignored instead: execnet sends the worker one
    itself when the controller ends it (and kills it after 10 s), so a second SIGINT
    there says nothing of a person's second Ctrl-C, on which the controller exits at
    once. Only the main thread can set a signal handler: elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        line = (
            f"\nfire: interrupted again: exiting now, not waiting for the servers; {describe()}\n"
        )
        os.write(2, line.encode(errors="replace"))
        os._exit(EXIT_STATUS)

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN if worker else handler)
    return lambda: restore(previous)


def restore(previous: Any) -> None:
    """Put SIGINT's `previous` handler back (from the main thread)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)


def end_worker(stop_servers: Callable[[], None]) -> NoReturn:
    """Exit an interrupted pytest-xdist worker now, once `stop_servers()` (the runner's
    ``close``: `STOP_WAIT` at most) returned.

    Its session is not finished: the controller, interrupted by the same Ctrl-C, reports
    the run without it. The exit functions still run (coverage.py's data, pytest's
    lock files), and the output is flushed, as a normal exit would.
    """
    try:
        stop_servers()
        atexit._run_exitfuncs()
    except BaseException:  # said, but the worker exits all the same
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # closed, or its reader is gone
                stream.flush()
        os._exit(EXIT_STATUS)
