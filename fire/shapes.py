"""Shapes: which attributes of an object are certainly references, so clients may pipeline.

A shape is computed once per module, class or instance type, and sent to each client
once. It maps attribute names to the shape id of their value when that is known (a
class inside a module), or to None. A name is in a shape only when reading it can never
yield plain data:

- on a module: its submodules, classes, functions and builtins;
- on a class or an instance: functions and methods (bound on access), classmethods,
  staticmethods of functions, nested classes, modules, builtin method descriptors, and
  descriptors registered with `register_reference_descriptor` (Django's managers);
- never a data attribute, a property, a field, or an instance attribute shadowing one of
  the above (those names travel with the reference itself); and nothing at all for a
  type that overrides ``__getattribute__``.

Every other attribute read is fetched at once, so plain values arrive as real values.
"""

from __future__ import annotations

import threading
import types
from typing import Any

__all__ = ["ShapeTable", "register_reference_descriptor"]

_ALWAYS_REFERENCE = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.ModuleType,
    type,
    classmethod,
)
_reference_descriptors: tuple[type, ...] = ()


def register_reference_descriptor(*descriptor_types: type) -> None:
    """Declare descriptor types whose `__get__` always returns a non-plain object.

    djfire registers Django's manager descriptors this way, so `user.groups.count()`
    and `User.objects.get()` take one round trip.
    """
    global _reference_descriptors
    _reference_descriptors = tuple(dict.fromkeys(_reference_descriptors + descriptor_types))


def _is_reference(raw: Any) -> bool:
    if isinstance(raw, _ALWAYS_REFERENCE):
        return True
    if isinstance(raw, staticmethod):
        return isinstance(raw.__func__, types.FunctionType | types.BuiltinFunctionType)
    return isinstance(raw, _reference_descriptors)


def _class_names(cls: type) -> dict[str, None]:
    """Names that read as references on `cls` and on its instances."""
    if cls.__getattribute__ not in (object.__getattribute__, type.__getattribute__):
        return {}
    names: dict[str, None] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, raw in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            if _is_reference(raw):
                names[name] = None
    return names


def _dotted(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


class ShapeTable:
    """Process-wide cache of shapes by module, class or type, with stable small ids."""

    def __init__(self) -> None:
        self._ids: dict[tuple[int, bool], int] = {}
        self._keep: list[Any] = []  # keeps keys alive so their id() is never reused
        self._contents: dict[int, list[Any]] = {}
        self._nested: dict[int, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def shape_id(self, obj: Any) -> int:
        """The id of `obj`'s shape, computing the shape the first time."""
        if isinstance(obj, types.ModuleType | type):
            key, lookup = obj, (id(obj), True)
        else:
            key, lookup = type(obj), (id(type(obj)), False)
        found = self._ids.get(lookup)
        if found is not None:
            return found
        with self._lock:
            found = self._ids.get(lookup)
            if found is None:
                found = self._build(key, obj)
        return found

    def _build(self, key: Any, obj: Any) -> int:
        """Compute a shape: `key` is a module, a class, or the type of instance `obj`."""
        shape_id = len(self._keep)
        self._keep.append(key)
        self._ids[(id(key), key is obj)] = shape_id
        nested: list[int] = []
        if isinstance(key, types.ModuleType):
            names: dict[str, int | None] = {}
            for name, value in vars(key).items():
                if isinstance(value, type) and getattr(value, "__module__", None) == key.__name__:
                    nested_id = self._ids.get((id(value), True))
                    if nested_id is None:
                        nested_id = self._build(value, value)
                    names[name] = nested_id
                    nested.append(nested_id)
                elif _is_reference(value):
                    names[name] = None
        else:
            names = dict(_class_names(key))
            if isinstance(key, type) and isinstance(obj, type):
                # On a class itself, its metaclass's methods are references too.
                names.update((n, None) for n in _class_names(type(key)) if not n.startswith("__"))
        self._contents[shape_id] = [_dotted(obj), names]
        self._nested[shape_id] = tuple(nested)
        return shape_id

    def content(self, shape_id: int) -> list[Any]:
        """``[dotted type name, {name: nested shape id or None}]``."""
        return self._contents[shape_id]

    def nested(self, shape_id: int) -> tuple[int, ...]:
        """Shapes sent along with this one (the classes a module defines)."""
        return self._nested[shape_id]

    def shadowed(self, shape_id: int, obj: Any) -> list[str]:
        """Instance attributes of `obj` that hide names of its type's shape."""
        names = self._contents[shape_id][1]
        if not names or isinstance(obj, types.ModuleType | type):
            return []
        try:
            own = vars(obj)
        except TypeError:
            return []
        return [name for name in own.keys() & names.keys()] if own else []
