"""The ``freeze_time`` operation: the server process's clock set by the test, with time-machine.

time-machine, not freezegun: it patches the C-level clocks (``time.time``,
``time.time_ns``, ``datetime.now``, ``time.localtime``, ``time.strftime``, …) once,
where freezegun replaces Python names module by module, so code that imported
``datetime`` or ``time`` before the freeze (Django, the live HTTP server's threads,
libraries) sees the frozen time too; and it costs nothing per call while off. It
leaves ``time.monotonic`` and ``time.perf_counter`` alone, so timeouts and sleeps keep
real time (and so do fire's own deadlines: `fire.wire.clock`).

The destination is an aware datetime; the process travels to that instant in UTC (its
own time zone, ``TZ``, stays as it is). The travel is recorded in the session's
innermost scope (`fire.server.undo`) and undone at its end, or when the session closes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import FireError
from .session import Session
from .undo import Change

__all__ = ["ServerClock", "freeze_time"]

#: What to install where time-machine is missing (the distribution's extra).
TIME_EXTRA = "djfire[time]"
#: Two travels of one process stack: undoing an older one first undoes the newer ones.
_CLOCK_KEY = "fire: the process clock"


class ServerClock:
    """The clock this server travelled to for a client; reached by reference."""

    def __init__(self, session: Session, destination: dt.datetime, tick: bool) -> None:
        time_machine = _time_machine()
        self._travel = time_machine.travel(destination, tick=tick)
        self._traveller = self._travel.start()
        self._session = session
        self._change = session.undo.add(
            Change(f"the clock set to {destination.isoformat()}", self._travel.stop, _CLOCK_KEY)
        )

    @property
    def active(self) -> bool:
        return not self._change.done

    def shift(self, seconds: float) -> dt.datetime:
        """Move the clock by `seconds` (negative: back); returns the time it shows now."""
        self._check_active()
        self._traveller.shift(dt.timedelta(seconds=seconds))
        return dt.datetime.now(dt.UTC)

    def move_to(self, destination: dt.datetime) -> dt.datetime:
        """Set the clock to `destination` (an aware datetime); returns the time it shows."""
        self._check_active()
        self._traveller.move_to(aware_utc(destination))
        return dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        """What ``datetime.now(UTC)`` gives in this process."""
        return dt.datetime.now(dt.UTC)

    def stop(self) -> None:
        """Give the process its real clock back (and undo newer travels first)."""
        self._session.undo.undo(self._change)

    def _check_active(self) -> None:
        if not self.active:
            raise FireError(
                "this clock was given back already (its scope ended, or stop() was called): "
                "freeze the time again"
            )


def freeze_time(session: Session, destination: Any, tick: bool = False) -> ServerClock:
    """Set this process's clock to `destination` (frozen, or running on with `tick`)."""
    return ServerClock(session, aware_utc(destination), bool(tick))


def aware_utc(destination: Any) -> dt.datetime:
    """`destination` in UTC; a naive datetime (no time zone: which instant?) is refused."""
    if not isinstance(destination, dt.datetime):
        raise FireError(
            f"the clock needs a datetime with a time zone, not {type(destination).__name__} "
            f"{destination!r}"
        )
    if destination.tzinfo is None or destination.utcoffset() is None:
        raise FireError(
            f"the clock needs an aware datetime, not the naive {destination.isoformat()!r}: "
            "say which instant it is ('2026-01-01T12:00Z', or tzinfo=datetime.UTC)"
        )
    return destination.astimezone(dt.UTC)


def _time_machine() -> Any:
    try:
        import time_machine
    except ModuleNotFoundError as exc:
        if exc.name != "time_machine":
            raise
        raise FireError(
            "this server cannot set its clock: time-machine is not installed in its "
            f"environment; install it there with `pip install '{TIME_EXTRA}'` (or "
            "`pip install time-machine`), then restart the server"
        ) from None
    return time_machine
