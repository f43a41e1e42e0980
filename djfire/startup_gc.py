"""A fire server's start-up without the cyclic garbage collector's passes over it.

Django's start-up (its modules, the project's apps, every model class) makes hundreds of
thousands of long-lived objects and almost no garbage, yet each allocation count reached
starts a collection, and the full ones walk everything made so far. On the 300-model
project of ``python -m bench -k schema`` (PostgreSQL, a cloned start) that was 0.1 s of
CPU in 0.97 s (median of ten alternating starts each way): most of what runfireserver
added to Django's own ``manage.py``.

So a process started as ``manage.py runfireserver`` pauses the collector as soon as
djfire's app is loaded (Django loads every app before any model), and the command
resumes it first thing in ``handle``, after freezing what start-up made
(``gc.freeze()``: moved out of the collector's way for the server's life, where it
stays anyway). Everything after that, a template's migration included, runs with the
collector on. Any other command, and a process whose collector was already off, is left
alone.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["pause_for_server_start", "resume_after_start"]

_paused = False


def pause_for_server_start() -> None:
    """Pause the collector if this process is ``manage.py runfireserver`` and the
    collector is on."""
    global _paused
    if sys.argv[1:2] == ["runfireserver"] and gc.isenabled():
        gc.disable()
        _paused = True


def resume_after_start() -> None:
    """Freeze what start-up made and turn the collector back on, if it was paused here."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False
