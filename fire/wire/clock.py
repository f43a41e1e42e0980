"""The wall clock of fire's own deadlines: real time, whatever a test does to the clock.

A test may freeze or move time in a service, and in its own process
(``Remote.freeze_time``: time-machine patches ``time.time`` and the C-level clocks).
The deadlines a client sends (``begin_scope``'s) and the clock difference a server
measures at ``hello`` must not follow it: a service frozen a year ahead would drop
every begin as come too late. `wall_time` is ``time.time()`` as it was when fire was
imported, moved on by ``time.monotonic()``, which time-machine leaves alone.
"""

from __future__ import annotations

import time

__all__ = ["wall_time"]

_WALL_AT_IMPORT = time.time()
_MONOTONIC_AT_IMPORT = time.monotonic()


def wall_time() -> float:
    """Seconds since the epoch, from the real clock (never a frozen or shifted one)."""
    return _WALL_AT_IMPORT + (time.monotonic() - _MONOTONIC_AT_IMPORT)
