"""The objects the fuzzers' references point to: harmless, and covering the operations.

A list, a dict, a generator, a context manager, a callable that echoes, one that raises,
a class: each operation of `fire.server.operations` has something to work on, and none
of them touches files, processes or the network whatever the arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal


class Box:
    """An object with plain attributes, methods and a nested object."""

    label = "box"

    def __init__(self) -> None:
        self.items: list[Any] = [1, "two", 3.0, None]
        self.mapping: dict[Any, Any] = {"a": 1, 2: "b"}
        self.inner: Box | None = None

    def echo(self, *args: Any, **kwargs: Any) -> Any:
        """Its arguments back, as they arrived (values or references)."""
        return [list(args), kwargs]

    def fail(self, message: Any = "boom") -> None:
        """Raise: a remote exception's reply."""
        raise ValueError(str(message)[:200])

    def numbers(self, count: Any = 3) -> Iterator[int]:
        """A generator (its own iterator), bounded whatever is asked."""
        yield from range(min(int(count), 1000))

    def child(self) -> Box:
        """Another object (a reference)."""
        if self.inner is None:
            self.inner = Box()
        return self.inner

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        return False

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def __getitem__(self, key: Any) -> Any:
        return self.mapping[key]


def box() -> Box:
    """A fresh `Box` (the live fuzzer calls this through ``module("fuzz.playground")``)."""
    return Box()
