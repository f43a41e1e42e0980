"""The lock that serializes every use of the shared database connections, with a bound.

Fire calls (the server's main thread) and live HTTP requests (one thread each) take
turns on the one connection per alias. A slow view or a slow fire call holds it for as
long as it runs; whoever waits longer than the bound gets `ServerBusy` naming the holder
and for how long it has held the connections, instead of the client's bare "no reply
within N s" much later. A fire call's bound is also kept under its client's own reply
timeout (`djfire.isolation`).

Work that must not wait for the connections, but must not run beside their holder
either (rolling back a scope whose end could not get them), is `defer`-red: it runs as
soon as the holder lets go, in the thread that lets go, before anything else gets them.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator

from fire import ServerBusy

__all__ = ["DEFAULT_LOCK_TIMEOUT", "HOLD", "ConnectionLock", "Holder"]

log = logging.getLogger("djfire.lock")

#: Seconds a call or request waits for the connections: well under a client's default
#: reply timeout (`fire.net.transport.DEFAULT_TIMEOUT`).
DEFAULT_LOCK_TIMEOUT = 10.0

#: What holds the connections: its description, or a function that makes it (on every
#: fire call, only a message needs the text).
Holder = str | Callable[[], str]

#: The hold the running code belongs to (its `ConnectionLock.generation`; 0: none). Set
#: while a thread holds the connections; travels with the context (asyncio tasks,
#: asgiref's ``sync_to_async``) and, through `djfire.threads`, into the threads and
#: executor work started during the hold.
HOLD: contextvars.ContextVar[int] = contextvars.ContextVar("djfire_hold", default=0)


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
        #: Counts the outermost holds: the number of the current (or last) one (`HOLD`).
        self.generation = 0
        #: (what, action) to run once the connections are free (`defer`), oldest first.
        self._deferred: list[tuple[str, Callable[[], object]]] = []

    @contextlib.contextmanager
    def hold(
        self,
        what: Holder,
        *,
        bounded: bool = True,
        timeout: float | None = None,
        limit: str | None = None,
    ) -> Iterator[None]:
        """Hold the connections for `what` ("HTTP GET /x/", "fire call …") inside the block.

        Raises `ServerBusy` when they stay held by something else for `timeout` seconds
        (the lock's own bound by default); with ``bounded=False`` waits as long as it
        takes. `limit` says what cut `timeout` under the lock's bound and how to raise it
        (the message names it instead of ``--lock-timeout``). Deferred work runs first,
        as the connections are taken.
        """
        wait = (self.timeout if timeout is None else timeout) if bounded else -1
        if not self._lock.acquire(timeout=wait):
            raise ServerBusy(self.busy_message(what, wait, limit))
        outermost = self._depth == 0
        try:
            if outermost:
                self._holder, self._since = what, time.monotonic()
                if self._deferred:
                    self._run_deferred()
                self.generation += 1  # before the depth: held always means this hold
                hold = HOLD.set(self.generation)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if outermost:
                    HOLD.reset(hold)
                    if self._deferred:
                        self._run_deferred()
                    self._holder = ""
        finally:
            self._lock.release()
        if outermost and self._deferred:
            self._try_deferred()  # deferred while this thread was letting go

    @property
    def held(self) -> bool:
        """Whether a fire call or a live request holds the connections now (any thread)."""
        return self._depth > 0

    @property
    def deferred(self) -> bool:
        """Whether deferred work waits for the connections."""
        return bool(self._deferred)

    def defer(self, what: str, action: Callable[[], object]) -> None:
        """Run `action` as soon as the connections are free, before anything else runs on them.

        Now, if they are free; otherwise in the thread that lets them go. A failure is
        logged (no caller is left to raise it to).
        """
        self._deferred.append((what, action))
        self._try_deferred()

    def _try_deferred(self) -> None:
        if self._lock.acquire(timeout=0):
            try:
                if self._depth == 0:
                    self._run_deferred()
            finally:
                self._lock.release()

    def _run_deferred(self) -> None:
        holder, since = self._holder, self._since
        try:
            while self._deferred:
                what, action = self._deferred.pop(0)
                self._holder, self._since = what, time.monotonic()
                try:
                    action()
                except Exception:
                    log.exception("%s failed", what)
        finally:
            self._holder, self._since = holder, since

    def holder(self) -> str:
        """What holds the connections and for how long ("" when free)."""
        holder, since = _text(self._holder), self._since
        return f"{holder} has held them for {time.monotonic() - since:.1f} s" if holder else ""

    def busy_message(
        self, what: Holder, waited: float | None = None, limit: str | None = None
    ) -> str:
        waited = self.timeout if waited is None or waited < 0 else waited
        raise_it = limit or "raise the bound with `runfireserver --lock-timeout SECONDS`"
        return (
            f"{_text(what)} waited {waited:g} s for the database connections: "
            f"{self.holder() or 'busy'}. "
            "A slow view or call holds them for as long as it runs; make it faster, or "
            f"{raise_it}"
        )
