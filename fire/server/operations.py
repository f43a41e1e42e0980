"""The operations a client may ask for, as a table from name to function.

Each function takes the session and the decoded arguments. Nothing here evaluates a
string: attribute names go through getattr, modules through importlib, and comparison
operators are looked up in a fixed table.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from ..errors import FireError
from . import clock, patches
from .exception_data import class_hierarchy
from .session import Session

__all__ = ["OPERATIONS", "first_batch_size"]

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
#: Iteration fetches 256 items first, then four times more each batch, up to 4096.
first_batch_size = 256
_MAX_BATCH = 4096


def _module(session: Session, name: object) -> Any:  # whatever the client sent
    if not isinstance(name, str) or not name:
        raise FireError("module() takes a dotted module name")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""  # the name asked for or its package, not an import inside
        if missing and (name == missing or name.startswith(missing + ".")):
            close = _close_modules(missing)
            if close:
                exc.add_note(f"(fire: did you mean {' or '.join(map(repr, close))}?)")
        raise


def _close_modules(missing: str) -> list[str]:
    """Importable modules named like `missing`: its package's, or top-level ones.

    Only on the error path: it lists the package's directory, or every entry of sys.path.
    """
    import difflib
    import pkgutil
    import sys

    package, _, last = missing.rpartition(".")
    if package:
        try:
            path = getattr(importlib.import_module(package), "__path__", None)
        except ImportError:
            return []
        if path is None:
            return []
        names = [module.name for module in pkgutil.iter_modules(path)]
    else:
        names = [module.name for module in pkgutil.iter_modules()]
        names += [*sys.builtin_module_names, *(n for n in sys.modules if "." not in n)]
    close = difflib.get_close_matches(last, sorted(set(names)), n=3)
    return [f"{package}.{found}" if package else found for found in close]


def _getattr(session: Session, target: Any, name: str) -> Any:
    return getattr(session.resolve(target), name)


def _setattr(session: Session, target: Any, name: str, value: Any) -> None:
    setattr(session.resolve(target), name, value)


def _delattr(session: Session, target: Any, name: str) -> None:
    delattr(session.resolve(target), name)


def _call(session: Session, target: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    return session.resolve(target)(*args, **kwargs)


def _getitem(session: Session, target: Any, key: Any) -> Any:
    return session.resolve(target)[key]


def _setitem(session: Session, target: Any, key: Any, value: Any) -> None:
    session.resolve(target)[key] = value


def _delitem(session: Session, target: Any, key: Any) -> None:
    del session.resolve(target)[key]


def _compare(session: Session, target: Any, name: str, other: Any) -> Any:
    try:
        compare = _COMPARISONS[name]
    except KeyError:
        raise FireError(f"unknown comparison {name!r}") from None
    return compare(session.resolve(target), other)


def _iter(session: Session, target: Any) -> list[Any]:
    """The first batch, the iterator (None once exhausted), the next batch size, the total
    length when known (so ``list(proxy)`` need not ask for ``len`` separately), and
    whether the object is its own iterator.

    An iterable the server's `ValueRules` call materialized (a queryset) is read whole.

    An object that is its own iterator (a generator) is not read here: every loop over
    it shares its position, so the client reads it through its own proxy (`_next`).
    Batches grow (256, 1024, 4096…) so 10,000 items take five round trips, while a
    short or endless iterator is not drained far ahead of what the client reads.
    """
    iterable = session.resolve(target)
    if session.values.materialized(iterable):
        items = list(iterable)
        return [items, None, 0, len(items), False]
    length = operator.length_hint(iterable, -1)
    iterator = iter(iterable)
    if iterator is iterable:
        return [[], None, 0, -1, True]
    batches = _Batches(iterator)
    items = batches.take(first_batch_size)
    if len(items) < first_batch_size and batches.error is None:
        return [items, None, 0, len(items), False]
    return [items, batches, min(first_batch_size * 4, _MAX_BATCH), length, False]


def _next(session: Session, target: Any, size: int) -> list[Any]:
    """The next `size` items of an iterator: the items, whether more may follow, the next
    batch size, and the `_Batches` to ask from now on when it holds an error to raise
    after these items (else None).

    `target` is a `_Batches` from `_iter`, or a remote iterator read through its proxy.
    """
    size = max(1, min(int(size), _MAX_BATCH))
    obj = session.resolve(target)
    if isinstance(obj, _Batches):
        batches = obj
    elif isinstance(obj, Iterator):
        batches = _Batches(obj)
    else:
        raise TypeError(f"'{type(obj).__name__}' object is not an iterator")
    items = batches.take(size)
    pending_error = batches.error is not None
    keep = batches if pending_error and batches is not obj else None
    return [items, len(items) == size or pending_error, min(size * 4, _MAX_BATCH), keep]


class _Batches:
    """A remote iterator read in batches. An error raised after some items of a batch
    is kept and raised by the next batch, so the client sees every item before it."""

    __slots__ = ("error", "iterator")

    def __init__(self, iterator: Any) -> None:
        self.iterator = iterator
        self.error: Exception | None = None

    def take(self, size: int) -> list[Any]:
        error = self.error
        if error is not None:
            self.error = None
            raise error
        items: list[Any] = []
        try:
            items.extend(islice(self.iterator, size))
        except Exception as exc:
            if not items:
                raise
            self.error = exc
        return items


def _exit(session: Session, target: Any, told: str | None) -> Any:
    """``__exit__`` of a remote context manager; a local exception arrives as its text."""
    manager = session.resolve(target)
    if told is None:
        return manager.__exit__(None, None, None)
    return manager.__exit__(Exception, Exception(told), None)


def _isinstance(session: Session, target: Any, obj: Any) -> bool:
    return isinstance(obj, session.resolve(target))


def _issubclass(session: Session, target: Any, cls: Any) -> bool:
    return issubclass(cls, session.resolve(target))


def _exception_hierarchy(session: Session, dotted: str) -> list[list[Any]]:
    """Import an exception class by dotted name (module, then attributes); its hierarchy."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        break
    else:
        raise FireError(f"cannot import {dotted!r}")
    if not (isinstance(obj, type) and issubclass(obj, BaseException)):
        raise FireError(f"{dotted} is not an exception class")
    return class_hierarchy(obj)


OPERATIONS: dict[str, Callable[..., Any]] = {
    "module": _module,
    "getattr": _getattr,
    "setattr": _setattr,
    "delattr": _delattr,
    "call": _call,
    "getitem": _getitem,
    "setitem": _setitem,
    "delitem": _delitem,
    "len": lambda session, target: len(session.resolve(target)),
    "contains": lambda session, target, item: item in session.resolve(target),
    "bool": lambda session, target: bool(session.resolve(target)),
    "repr": lambda session, target: repr(session.resolve(target)),
    "str": lambda session, target: str(session.resolve(target)),
    "hash": lambda session, target: hash(session.resolve(target)),
    "dir": lambda session, target: dir(session.resolve(target)),
    "compare": _compare,
    "iter": _iter,
    "next": _next,
    "exit": _exit,
    "isinstance": _isinstance,
    "issubclass": _issubclass,
    "exception_hierarchy": _exception_hierarchy,
    # changes to the process, undone with the scope they were made in (`fire.server.undo`)
    "patch": patches.patch,
    "freeze_time": clock.freeze_time,
}
