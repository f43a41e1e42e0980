"""A server's output that outlives its reader: writes never fail once the reader is gone.

A spawned server's standard output and error are a pipe to whoever started it (the
runner's supervisor, `fire.runners.supervise`). When that process dies (a test run or
an xdist worker killed), the server gets SIGTERM (``PR_SET_PDEATHSIG``, or the gateway's
supervisor) and tears down: it rolls back, drops its test databases, removes its
socket. Teardown prints too (Django: "Destroying test database for alias …"), and a
write into a pipe nobody reads raises `BrokenPipeError`, which would abort the teardown
half-way and leave the databases behind. So the streams are wrapped: the first write
that finds the reader gone points the descriptor at ``/dev/null`` (later writes, also
from C code or child processes, go there) and the text is dropped. Nothing the server
does ever depends on being heard.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO

__all__ = ["Tolerant", "tolerate_lost_reader"]


class Tolerant:
    """A text stream whose writes and flushes drop the text once the reader is gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        #: Whether the reader was found gone (the descriptor now points at /dev/null).
        self.lost = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._lose()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._lose()

    def _lose(self) -> None:
        """Point the descriptor at /dev/null, so that what is buffered and what follows goes."""
        self.lost = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()  # what the failed write left in the buffer: to /dev/null

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, …
        return getattr(self._stream, name)


def tolerate_lost_reader() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in `Tolerant` (once; call it before making
    anything that keeps a reference to them, such as logging handlers)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, Tolerant):
            setattr(sys, name, Tolerant(stream))
