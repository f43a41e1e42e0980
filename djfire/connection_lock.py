"""The lock that serializes every use of the shared database connections, with a bound.

Fire calls (the server's main thread) and live HTTP requests (one thread each) take
turns on the one connection per alias. A slow view or a slow fire call holds it for as
long as it runs; whoever waits longer than the bound gets `ServerBusy` naming the holder
and for how long it has held the connections, instead of the client's bare "no reply
within N s" much later.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from fire import ServerBusy

__all__ = ["DEFAULT_LOCK_TIMEOUT", "ConnectionLock", "Holder"]

#: Seconds a call or request waits for the connections: well under a client's 30 s timeout.
DEFAULT_LOCK_TIMEOUT = 10.0

#: What holds the connections: its description, or a function that makes it (on every
#: fire call, only a message needs the text).
Holder = str | Callable[[], str]


def _text(what: Holder) -> str:
    return what if isinstance(what, str) else what()


class ConnectionLock:
    """A re-entrant lock that knows what holds it and since when."""

    def __init__(self, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.timeout = timeout
        self._lock = threading.RLock()
        self._holder: Holder = ""
        self._since = 0.0
        self._depth = 0

    @contextlib.contextmanager
    def hold(self, what: Holder, *, bounded: bool = True) -> Iterator[None]:
        """Hold the connections for `what` ("HTTP GET /x/", "fire call …") inside the block.

        Raises `ServerBusy` when they stay held by something else for `timeout` seconds;
        with ``bounded=False`` (rolling back a departed client's scopes) waits as long as
        it takes.
        """
        if not self._lock.acquire(timeout=self.timeout if bounded else -1):
            raise ServerBusy(self.busy_message(what))
        try:
            if self._depth == 0:
                self._holder, self._since = what, time.monotonic()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._holder = ""
        finally:
            self._lock.release()

    @property
    def held(self) -> bool:
        """Whether a fire call or a live request holds the connections now (any thread)."""
        return self._depth > 0

    def busy_message(self, what: Holder) -> str:
        holder, since = _text(self._holder), self._since
        held = f"{holder} has held them for {time.monotonic() - since:.1f} s" if holder else ""
        return (
            f"{_text(what)} waited {self.timeout:g} s for the database connections: "
            f"{held or 'busy'}. "
            "A slow view or call holds them for as long as it runs; make it faster, or "
            "raise the bound with `runfireserver --lock-timeout SECONDS`"
        )
