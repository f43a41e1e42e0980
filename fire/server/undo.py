"""What a client changed in a server's process, undone when the scope it was made in ends.

A patch (`fire.server.patches`) or a frozen clock (`fire.server.clock`) changes the
whole service process, not a database row: no rollback undoes it. So each session keeps
a stack of frames, one per open scope (and one under them all, the session's own): a
change is recorded in the innermost frame as it is made, and undone when that scope
ends, newest first, whatever ended it: ``end_scope`` after a failing test, a class's or
module's scope at its end, or the session closing because its client left or died (the
server's own clean-up, as for the databases' rollback).

The scope extension says when a scope of the session begins and ends
(`Session.undo`): fire's `fire.extensions.Scopes` and djfire's scopes both do, so a
plain fire server and a Django one undo alike. A scope asked for ahead and not taken
yet is no scope of the test's: it gets its frame when taken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Change", "ScopeUndo"]

log = logging.getLogger("fire.server")


@dataclass(eq=False)
class Change:
    """One change to undo: what it was (for messages), how to undo it, and on what.

    `key` names what was changed (an object and attribute): two changes of the same
    thing stack, and undoing the older one first undoes the newer (as `unittest.mock`'s
    patchers must be stopped in reverse order to put the original back).
    """

    what: str
    undo: Callable[[], object]
    key: object = None
    done: bool = False


class ScopeUndo:
    """A session's changes to undo, a frame per open scope, innermost last."""

    def __init__(self) -> None:
        self._frames: list[list[Change]] = [[]]

    @property
    def depth(self) -> int:
        """How many scopes are open (frames above the session's own)."""
        return len(self._frames) - 1

    def scope_began(self) -> None:
        """A scope of this session began: changes from now on are undone at its end."""
        self._frames.append([])

    def scope_ended(self) -> BaseException | None:
        """The innermost scope ended: undo its changes, newest first.

        Never raises: every change is undone even when one fails; the first failure is
        returned (with the others as notes), for the caller to raise once the scope's
        own clean-up (a rollback) is done.
        """
        frame = self._frames.pop() if len(self._frames) > 1 else self._frames[0]
        failures = self._undo_all(frame)
        frame.clear()
        return _first(failures)

    def add(self, change: Change) -> Change:
        """Record `change`, made now, in the innermost frame."""
        self._frames[-1].append(change)
        return change

    def undo(self, change: Change) -> None:
        """Undo `change` now (its context manager ended), and the newer changes of the
        same thing still in place first; one already undone is left alone."""
        if change.done:
            return
        newer = []
        seen = False
        for frame in self._frames:
            for other in frame:
                if other is change:
                    seen = True
                elif seen and not other.done and other.key is not None and other.key == change.key:
                    newer.append(other)
        failures = self._undo_all([change, *newer])
        for frame in self._frames:
            frame[:] = [c for c in frame if not c.done]
        error = _first(failures)
        if error is not None:
            raise error

    def close(self) -> None:
        """The session closes: undo every frame, innermost first (failures are logged)."""
        while len(self._frames) > 1:
            error = self.scope_ended()
            if error is not None:
                log.error("undoing a closed session's change failed: %r", error)
        error = self.scope_ended()
        if error is not None:
            log.error("undoing a closed session's change failed: %r", error)

    @staticmethod
    def _undo_all(changes: list[Change]) -> list[BaseException]:
        failures: list[BaseException] = []
        for change in reversed(changes):
            if change.done:
                continue
            change.done = True
            try:
                change.undo()
            except Exception as exc:
                exc.add_note(f"(fire: while undoing {change.what})")
                failures.append(exc)
        return failures


def _first(failures: list[BaseException]) -> BaseException | None:
    if not failures:
        return None
    for other in failures[1:]:
        failures[0].add_note(f"(fire: undoing the scope's changes also failed: {other!r})")
    return failures[0]
