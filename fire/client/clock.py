"""One clock for the services of a test: `RemoteClock` (one server) and `Clocks` (several).

``Remote.freeze_time("2026-01-01T12:00Z")`` sets the server's process clock
(`fire.server.clock`, time-machine) and returns a `RemoteClock`; `freeze_time` does it
on several servers at once, and optionally in the test's own process (``here=True``),
and returns `Clocks`, whose `~Clocks.shift`, `~Clocks.tick` and `~Clocks.move_to` move
them all together. Every server gives its real clock back at the end of the scope the
freeze was made in (or when its client leaves), whatever happened; `Clocks.stop` (or
the ``with`` block's end) gives it back sooner, here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import FireError

if TYPE_CHECKING:
    from .proxy import Proxy
    from .remote import Remote

__all__ = ["Clocks", "RemoteClock", "freeze_time", "parse_destination"]

#: `Clocks.tick`'s step when none is given, as freezegun's ``tick()``.
DEFAULT_TICK = dt.timedelta(seconds=1)


def parse_destination(destination: str | dt.datetime) -> dt.datetime:
    """An aware datetime from an ISO 8601 string or a datetime; naive or unreadable: an error."""
    if isinstance(destination, str):
        text = destination.strip()
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise FireError(
                f"cannot read {destination!r} as a date and time: give ISO 8601 with a time "
                "zone, e.g. '2026-01-01T12:00Z' or '2026-01-01T13:00+01:00'"
            ) from None
    elif isinstance(destination, dt.datetime):
        parsed = destination
    else:
        raise FireError(
            f"freeze_time takes an ISO 8601 string or an aware datetime, not "
            f"{type(destination).__name__}"
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise FireError(
            f"freeze_time needs a time zone: {destination!r} is naive, so which instant it "
            "means depends on each service's TZ; add one ('2026-01-01T12:00Z', "
            "tzinfo=datetime.UTC)"
        )
    return parsed


class RemoteClock:
    """A server's clock, set by `Remote.freeze_time`; reached through its server object."""

    def __init__(self, remote: Remote, handle: Proxy) -> None:
        self.remote = remote
        self._handle = handle

    def shift(self, delta: dt.timedelta | float) -> dt.datetime:
        """Move the server's clock by `delta` (seconds, or a timedelta); returns its time."""
        return self._handle.shift(_seconds(delta))

    def move_to(self, destination: str | dt.datetime) -> dt.datetime:
        """Set the server's clock to `destination`; returns the time it shows."""
        return self._handle.move_to(parse_destination(destination))

    def now(self) -> dt.datetime:
        """The server's ``datetime.now(UTC)``."""
        return self._handle.now()

    def stop(self) -> None:
        """Give the server its real clock back now (else at the scope's end)."""
        if not self.remote.closed and self._handle.active:
            self._handle.stop()

    def __repr__(self) -> str:
        return f"<fire.RemoteClock of {self.remote.name!r}>"


class Clocks:
    """The clocks of a test's servers (and of the test process, with ``here=True``), set
    and moved together. Use as a context manager, or leave it to the scope's end."""

    def __init__(self, clocks: dict[str, RemoteClock], local: Any = None) -> None:
        #: Server name -> its clock.
        self.servers = clocks
        self._local = local  # time-machine's traveller in this process, or None
        self._local_travel: Any = None

    def shift(self, delta: dt.timedelta | float) -> None:
        """Move every clock by `delta` (a timedelta, or seconds; negative moves back)."""
        for clock in self.servers.values():
            clock.shift(delta)
        if self._local is not None:
            self._local.shift(dt.timedelta(seconds=_seconds(delta)))

    def tick(self, delta: dt.timedelta | float = DEFAULT_TICK) -> None:
        """Move every clock on by `delta` (one second by default), as freezegun's ``tick``."""
        self.shift(delta)

    def move_to(self, destination: str | dt.datetime) -> None:
        """Set every clock to `destination` (ISO 8601 with a time zone, or aware datetime)."""
        when = parse_destination(destination)
        for clock in self.servers.values():
            clock.move_to(when)
        if self._local is not None:
            self._local.move_to(when.astimezone(dt.UTC))

    def stop(self) -> None:
        """Give every clock its real time back now (servers do at their scope's end anyway)."""
        try:
            for clock in self.servers.values():
                clock.stop()
        finally:
            self.stop_here()

    def stop_here(self) -> None:
        """Give the test process its real clock back (the runners do as the test ends)."""
        travel, self._local, self._local_travel = self._local_travel, None, None
        if travel is not None:
            travel.stop()

    def __enter__(self) -> Clocks:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        here = " and here" if self._local is not None else ""
        return f"<fire.Clocks of {', '.join(self.servers) or 'no server'}{here}>"


def freeze_time(
    remotes: dict[str, Remote] | Iterable[Remote],
    destination: str | dt.datetime,
    *,
    tick: bool = False,
    here: bool = False,
) -> Clocks:
    """Set the clock of every server in `remotes` (name -> Remote, or Remotes) to
    `destination`, frozen (or running on from there, with `tick`); with `here`, the test
    process's too. Each server gives it back at the end of its innermost scope."""
    when = parse_destination(destination)
    named = (
        dict(remotes) if isinstance(remotes, dict) else {remote.name: remote for remote in remotes}
    )
    clocks = Clocks({})
    try:
        for name, remote in named.items():
            clocks.servers[name] = remote.freeze_time(when, tick=tick)
        if here:
            travel = _local_time_machine().travel(when.astimezone(dt.UTC), tick=tick)
            clocks._local = travel.start()
            clocks._local_travel = travel
    except BaseException:
        clocks.stop()
        raise
    return clocks


def _seconds(delta: Any) -> float:
    if isinstance(delta, dt.timedelta):
        return delta.total_seconds()
    if isinstance(delta, int | float) and not isinstance(delta, bool):
        return float(delta)
    raise FireError(f"a clock moves by a timedelta or seconds, not {delta!r}")


def _local_time_machine() -> Any:
    try:
        import time_machine
    except ModuleNotFoundError as exc:
        if exc.name != "time_machine":
            raise
        raise FireError(
            "freeze_time(here=True) sets the test process's clock with time-machine, which "
            "is not installed here: `pip install 'djfire[time]'`"
        ) from None
    return time_machine
