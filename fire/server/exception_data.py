"""An exception raised by served code, as plain data: the server's half of remote errors.

The server sends `describe_exception`'s data in a RAISED reply, and a class's
`class_hierarchy` in its shape; the client rebuilds the class from it
(`fire.errors.remote_exception_class`) and raises its twin.
"""

from __future__ import annotations

import os
import traceback
from types import TracebackType
from typing import Any

from tblib import Traceback

from ..wire.codec import plain_codec

__all__ = ["class_hierarchy", "describe_exception", "user_frames"]

_FIRE_DIR = os.path.dirname(os.path.abspath(__file__))
_plain = plain_codec()


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def user_frames(tb: TracebackType | None) -> TracebackType | None:
    """Skip fire's own dispatch frames, so the traceback starts in the user's code."""
    while tb is not None and os.path.dirname(tb.tb_frame.f_code.co_filename) == _FIRE_DIR:
        tb = tb.tb_next
    return tb


def class_hierarchy(cls: type) -> list[list[Any]]:
    """``[dotted name, [dotted bases]]`` for `cls` and each class in its MRO but `object`.

    Bases, not just the MRO, so the client can rebuild multiple inheritance faithfully.
    """
    return [
        [_dotted(klass), [_dotted(base) for base in klass.__bases__]]
        for klass in cls.__mro__
        if klass is not object
    ]


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """Plain data describing `exc`: type, class hierarchy, args when plain, message, traceback."""
    args: Any = list(exc.args)
    try:
        _plain.pack(args)
    except (TypeError, ValueError, OverflowError):
        args = None
    tb = user_frames(exc.__traceback__) or exc.__traceback__
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return {
        "type": _dotted(type(exc)),
        "hierarchy": class_hierarchy(type(exc)),
        "args": args,
        "message": str(exc),
        "notes": [str(n) for n in getattr(exc, "__notes__", ())],
        "traceback": Traceback(tb).to_dict() if tb is not None else None,
        "text": text,
    }
