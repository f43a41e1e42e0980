"""Objects the test servers serve: their processes get this directory on PYTHONPATH.

The tests also import this module locally, to compare with what the server does and to
find line numbers of remote frames.
"""

from __future__ import annotations

import enum
import functools
import os
import time
from typing import Any


class Thing:
    """An ordinary object: data attributes, methods, a parent link."""

    def __init__(self, name: str = "thing", value: Any = None) -> None:
        self.name = name
        self.value = value
        self.parent: Thing | None = None
        self.saved: list[str] = []

    def save(self) -> str:
        self.saved.append(self.name)
        return self.name

    def rename(self, name: str) -> Thing:
        self.name = name
        return self

    def describe(self, prefix: str = "", *, suffix: str = "") -> str:
        return f"{prefix}{self.name}{suffix}"

    def __str__(self) -> str:
        return f"Thing named {self.name}"

    def __repr__(self) -> str:
        return f"Thing({self.name!r})"


class Widget(Thing):
    """A class with a classmethod and a staticmethod (both safe to pipeline)."""

    created = 0

    @classmethod
    def create(cls, name: str) -> Widget:
        cls.created += 1
        return cls(name)

    @staticmethod
    def kind() -> str:
        return "widget"


class Outer:
    """Nested classes, for a chain of three attributes ending in a call."""

    class Inner:
        @classmethod
        def make(cls, name: str) -> Thing:
            return Thing(name)


class Bag(dict):
    """A dict subclass: not plain data, so it stays on the server (a remote mapping)."""


@functools.total_ordering
class Version:
    """Compares and hashes by its number."""

    def __init__(self, number: int) -> None:
        self.number = number

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Version):
            return self.number == other.number
        if isinstance(other, int):
            return self.number == other
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Version):
            return self.number < other.number
        if isinstance(other, int):
            return self.number < other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.number)


class AppError(Exception):
    """The root of an application's exception hierarchy."""


class NotFound(AppError):
    pass


class OtherError(Exception):
    pass


class MissingItem(AppError, KeyError):
    """Multiple inheritance: an application error that is also a KeyError."""


class Unrelated(Exception):
    pass


SINGLETON = Thing("singleton")
PLAIN_CONSTANT = {"answer": 42, "when": (1, 2)}


def echo(value: Any) -> Any:
    return value


def type_names(value: Any) -> Any:
    """The server-side types of a nested value, as plain data."""
    if isinstance(value, dict):
        return {"dict": [[type_names(k), type_names(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return {type(value).__name__: [type_names(item) for item in value]}
    if isinstance(value, set | frozenset):
        return {type(value).__name__: sorted(type_names(item) for item in value)}
    return type(value).__name__


class Markup(str):
    """A str subclass, as Django's SafeString: travels as str."""


def markup(text: str) -> Markup:
    return Markup(text)


def is_markup(value: Any) -> bool:
    return isinstance(value, Markup)


def make_things(count: int) -> list[Thing]:
    return [Thing(f"thing-{i}") for i in range(count)]


def things_by_name(count: int) -> dict[str, Thing]:
    return {f"thing-{i}": Thing(f"thing-{i}") for i in range(count)}


def is_thing(value: Any) -> bool:
    return isinstance(value, Thing)


def same(a: Any, b: Any) -> bool:
    return a is b


def names_of(things: list[Thing]) -> list[str]:
    return [thing.name for thing in things]


def is_class(value: Any) -> bool:
    return isinstance(value, type)


def fail_key(key: str) -> Any:
    data: dict[str, Any] = {}
    return data[key]  # fail_key raises here


def raise_not_found(what: str) -> None:
    raise NotFound(what, 404)  # raise_not_found raises here


def raise_app_error(message: str) -> None:
    raise AppError(message)


def raise_missing_item(key: str) -> None:
    raise MissingItem(key)


def raise_unplain_args() -> None:
    raise ValueError(Thing("inside"))


def numbers_then_fail(count: int):
    """Yield `count` numbers, then raise ValueError."""
    yield from range(count)
    raise ValueError(f"failed after {count}")


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def pid() -> int:
    return os.getpid()


class Color(str, enum.Enum):  # noqa: UP042 (not StrEnum: its str() is not its value)
    """A str mixin enum: its str() is "Color.RED", its value "red"."""

    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Permission(enum.IntFlag):
    READ = 4
    WRITE = 2


def color() -> Color:
    return Color.RED


def level() -> Level:
    return Level.HIGH


def permissions() -> Permission:
    return Permission.READ | Permission.WRITE


def counting(count: int):
    """A generator: its own iterator, so every loop over it shares its position."""
    yield from range(count)


def rest_of(iterator: Any) -> list[Any]:
    """Consume an iterator on the server."""
    return list(iterator)


def errors() -> dict[str, type]:
    """Exception classes as a value (not through an attribute read)."""
    return {"not_found": NotFound, "key": KeyError}


class Guard:
    """A context manager that records how each block ended, and may suppress errors."""

    def __init__(self, suppress: bool = False) -> None:
        self.suppress = suppress
        self.ends: list[str | None] = []

    def __enter__(self) -> str:
        self.ends.append("open")
        return "entered"

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        self.ends[-1] = None if exc is None else f"{exc_type.__name__}: {exc}"
        return self.suppress


class Related:
    """What `Holder.related` returns (as Django's related manager is for a model)."""

    def count(self) -> int:
        return 3


class RelatedDescriptor:
    """A descriptor fire cannot tell always yields an object (as Django's managers do)."""

    def __get__(self, obj: Any, owner: Any = None) -> Related:
        return Related()


class Holder:
    related = RelatedDescriptor()


class Rows:
    """An iterable that reads every item anyway (as a Django queryset does)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __iter__(self) -> Any:
        return iter(range(self.count))
