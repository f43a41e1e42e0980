"""A server lost during a run: said in full once, then in one line by every test after.

A spawned server whose process ended while the run still needed it (killed, crashed,
exited) is lost with its exit status and the last lines it printed; a server the run
attached to by a socket path is lost once nothing listens there any more (one on TCP
never is: a link that was cut may come back, and the connection greets it again). The test that was
running shows the cause (`LostServer.first`); each later test that needs the server
fails with `ServerLost`, whose message is one line (`LostServer.later_error`), and the
run's summary counts them (`LostServer.summary`): a dead server costs one test's attention,
not a traceback per test.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ServerUnavailable
from ..net.addresses import parse_address, probe_unix_socket

__all__ = ["LostServer", "ServerLost", "exit_text", "nothing_listens"]

#: The output lines a loss shows: enough for a traceback's last frames and its error.
TAIL_LINES = 15


class ServerLost(ServerUnavailable):
    """A server the run lost: the message says how and when, in one line for a test that
    needs it later. The runners report it without a traceback."""

    def __init__(self, message: str, lost: LostServer) -> None:
        super().__init__(message, lost.address)
        self.lost = lost


@dataclass
class LostServer:
    """One lost server: how it ended (`verb` "died", `detail` "signal 9"), `during` which
    test, its last output (None for a server the run did not spawn), and how many later
    tests needed it."""

    name: str
    address: str
    verb: str
    detail: str | None
    during: str | None
    output: list[str] | None = None
    later: int = 0

    @property
    def _who(self) -> str:
        # A server the run attached to is known by its address; a spawned one by its name.
        where = "" if self.output is not None else f" at {self.address}"
        return f"fire server {self.name!r}{where}"

    @property
    def _when(self) -> str:
        return f"during {self.during}" if self.during else "between tests"

    @property
    def how(self) -> str:
        """How it ended: "died (signal 9)", "exited with status 3", "stopped answering"."""
        if self.detail is None:
            return self.verb
        if self.verb == "exited":
            return f"exited with {self.detail}"
        return f"{self.verb} ({self.detail})"

    def first(self) -> str:
        """The full story, for the test that was running: how, when, the last output."""
        text = f"{self._who} {self.how} {self._when}"
        if self.output is None:
            return text
        tail = [line.rstrip() for line in self.output if line.strip()][-TAIL_LINES:]
        if not tail:
            return f"{text}; it printed nothing"
        return f"{text}; its last output:\n" + "\n".join(f"    {line}" for line in tail)

    def first_error(self) -> ServerLost:
        """The error of the test that was running, where no error of its own says it."""
        return ServerLost(self.first(), self)

    def later_error(self) -> ServerLost:
        """The one-line error of a later test that needs the server (counted here)."""
        self.later += 1
        detail = f"{self.detail}, " if self.detail else ""
        return ServerLost(
            f"{self._who} {self.verb} earlier ({detail}{self._when}): see that test's error", self
        )

    def summary(self) -> str:
        """The run summary's line, after the server's name: the loss and the later tests
        it failed."""
        tests = "test" if self.later == 1 else "tests"
        return f"{self.how} {self._when}; {self.later} later {tests} failed because of it"


def exit_text(code: int | None) -> tuple[str, str | None]:
    """How a spawned server's process ended, from its exit status (-N: signal N): the
    verb and its detail (`LostServer.verb`, `LostServer.detail`)."""
    if code is None:  # the supervisor ended without the server's status
        return "stopped", "its supervisor ended"
    if code < 0:
        return "died", f"signal {-code}"
    return "exited", f"status {code}"


def nothing_listens(address: str) -> bool:
    """Whether no server listens at the socket path `address` any more (a stalled one
    still does). Never for a TCP address: a refused connection there may be a link cut
    for a while, not a dead server."""
    path = parse_address(address).path
    if path is None:
        return False
    try:
        probe_unix_socket(path)
    except ServerUnavailable:
        return True
    return False
