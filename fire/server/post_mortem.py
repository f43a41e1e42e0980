"""A remote post-mortem: pdb on the frame where served code raised, one command per request.

pytest's ``--pdb`` opens pdb on the failing test's traceback; for a remote exception that
traceback ends in fire's client, far from the service's frame. So a session that asks
for it (``debug_keep``) has the server keep the exception of its last failed call
(`Failures`), numbered (the number rides in the RAISED reply as ``failure``, so the
client can ask for that one and no other), and a client may then open pdb on it:
``debug_start`` sets pdb up on the traceback and answers its first lines,
``debug_input`` runs one command line and answers what pdb wrote and whether the
session ended (``c``, ``q``...).

pdb runs command by command (`Pdb.onecmd`), not in its own loop, so nothing blocks: each
command is a request like any fire call, in the dispatcher's thread, inside the
extensions' request context (djfire: under the connection lock, in the test's
transaction), so ``p Order.objects.count()`` sees what the failing call saw. No thread
waits on a terminal, and a client that goes away just leaves a session to close.

Keeping a traceback keeps its frames' locals alive (open cursors, half-read
generators): only for sessions that asked, only the last one, let go once its pdb
session ends, and handed to the dispatcher's release hook when dropped (djfire drops
them under its lock).
"""

from __future__ import annotations

import contextlib
import io
import pdb
from types import TracebackType
from typing import Any

from ..errors import FireError
from .exception_data import user_frames

__all__ = ["Failures", "PostMortem", "RemotePostMortemPdb"]


class RemotePostMortemPdb(pdb.Pdb):
    """pdb on a finished traceback, its output in a buffer, never touching the tracer.

    Its ``continue``, ``quit``, ``step``... end the session without `sys.settrace`: no
    frame runs under it (the call already failed), and the thread's tracer may be
    someone else's (coverage.py's, in a server measured with ``--cov``).
    """

    def __init__(self, output: io.StringIO) -> None:
        super().__init__(stdin=io.StringIO(), stdout=output, readrc=False, nosigint=True)
        self.prompt = "(Pdb) "

    def set_continue(self) -> None:
        self.quitting = False

    def set_quit(self) -> None:
        self.quitting = True

    def set_step(self) -> None:
        pass

    def set_next(self, frame: Any) -> None:
        pass

    def set_return(self, frame: Any) -> None:
        pass

    def set_until(self, frame: Any, lineno: int | None = None) -> None:
        pass


class PostMortem:
    """One remote pdb session on a kept exception: `start`, then `command` per line."""

    def __init__(self, exception: BaseException) -> None:
        self.output = io.StringIO()
        self.pdb = RemotePostMortemPdb(self.output)
        self.ended = False
        traceback: TracebackType | None = user_frames(exception.__traceback__)
        self._traceback = traceback or exception.__traceback__
        self._exception = exception

    def start(self) -> dict[str, Any]:
        """Set pdb up on the traceback; its first lines (where it stopped)."""
        self.pdb.reset()
        self.pdb.setup(None, self._traceback)
        self.pdb.print_stack_entry(self.pdb.stack[self.pdb.curindex])
        return self._answer()

    def command(self, line: str) -> dict[str, Any]:
        """Run one command line as pdb's own loop would; what it wrote, and whether it ended."""
        if self.ended:
            raise FireError("this remote debugger session has ended")
        pdb_ = self.pdb
        lines = [line]
        with contextlib.redirect_stdout(self.output), contextlib.redirect_stderr(self.output):
            while lines and not self.ended:
                current = pdb_.precmd(lines.pop(0))
                stop = pdb_.onecmd(current)
                self.ended = bool(pdb_.postcmd(stop, current))
                lines.extend(pdb_.cmdqueue)  # an alias expanding to several commands
                pdb_.cmdqueue.clear()
        if self.ended:
            pdb_.forget()
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        text = self.output.getvalue()
        self.output.seek(0)
        self.output.truncate()
        return {
            "output": text,
            "ended": self.ended,
            "quit": self.ended and self.pdb.quitting,
            "prompt": self.pdb.prompt,
        }


class Failures:
    """A session's kept failure and its open post-mortem (when the session asked for them)."""

    def __init__(self) -> None:
        self.keep = False
        self.count = 0
        self.number = 0
        self.exception: BaseException | None = None
        self.session: PostMortem | None = None

    def kept(self, exception: BaseException) -> tuple[int, BaseException | None]:
        """Keep `exception` as the last failure; its number, and what it replaces (to drop)."""
        self.count += 1
        dropped = self.exception
        self.number, self.exception, self.session = self.count, exception, None
        return self.number, dropped

    def start(self, number: int) -> dict[str, Any]:
        if self.exception is None or number != self.number:
            why = (
                "the service keeps a failed call's traceback only for a connection that "
                "asked for it (pytest --pdb does)"
                if not self.keep
                else "a later call failed after it, or its debugger session ended"
            )
            raise FireError(
                f"the service no longer has the traceback of failure {number}: {why}; "
                "debug it again by running the test again"
            )
        self.session = PostMortem(self.exception)
        return self.session.start()

    def command(self, line: str) -> dict[str, Any]:
        if self.session is None:
            raise FireError("no remote debugger session is open: debug_start first")
        answer = self.session.command(line)
        if self.session.ended:
            self.session = None
        return answer

    def drop(self) -> BaseException | None:
        """Forget the kept failure; it is returned, for the caller to drop where it must."""
        dropped, self.exception, self.session = self.exception, None, None
        return dropped
