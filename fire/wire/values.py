"""`ValueRules`: a framework's knowledge of its own value types, given to one server.

fire cannot tell from a descriptor's type that reading it always yields an object (a
reference), nor that iterating an object reads every item anyway; a framework can. Its
rules belong to the `fire.Server` it builds (``Server(values=ValueRules(...))``), so two
servers in one process never see each other's, and importing a framework changes no
server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ValueRules"]

#: Given a descriptor, the class of what it returns on an instance, or None if unknown.
ResultType = Callable[[Any], type | None]


@dataclass(frozen=True)
class ValueRules:
    """How a server's framework-specific values travel.

    Attributes:
        reference_descriptors: descriptor type -> function naming the class of what the
            descriptor's ``__get__`` returns on an instance (or None when that is not
            known). Reading such a descriptor always yields a reference, so clients
            pipeline through it (djfire: Django's managers, ``User.objects``); with a
            class, clients also know that object's shape without asking
            (``user.groups.count`` is a method).
        materialized_iterables: iterable types whose iteration reads every item anyway
            (djfire: ``QuerySet``): ``list(proxy)`` gets every item in one reply, at any
            size, instead of growing batches.
    """

    reference_descriptors: Mapping[type, ResultType | None] = field(default_factory=dict)
    materialized_iterables: tuple[type, ...] = ()

    def __post_init__(self) -> None:
        # Frozen for real: a server reads them per request, no one may change them after.
        object.__setattr__(
            self, "reference_descriptors", MappingProxyType(dict(self.reference_descriptors))
        )
        object.__setattr__(self, "materialized_iterables", tuple(self.materialized_iterables))

    def reference_descriptor(self, raw: Any) -> tuple[bool, ResultType | None]:
        """Whether `raw` is one of the reference descriptors, and its result-type function."""
        for descriptor_type, result in self.reference_descriptors.items():
            if isinstance(raw, descriptor_type):
                return True, result
        return False, None

    def materialized(self, iterable: Any) -> bool:
        """Whether `iterable` is read whole anyway (so one reply carries all its items)."""
        types = self.materialized_iterables
        return bool(types) and isinstance(iterable, types)
