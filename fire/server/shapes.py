"""Shapes: which attributes of an object are certainly references, so clients may pipeline.

A shape belongs to a module, a class (read as an object) or an instance type. It maps
attribute names to the shape id of their value when that is known, or to None. A name
is in a shape only when reading it can never yield plain data:

- on a module: its submodules, classes, functions and builtins;
- on a class or an instance: functions and methods (bound on access), classmethods,
  staticmethods of functions, nested classes, modules, builtin method descriptors, and
  the server's reference descriptors (`fire.extensions.ValueRules`: djfire's are
  Django's managers);
- never a data attribute, a property, a field, or an instance attribute shadowing one of
  the above (those names travel with the reference itself); and nothing at all for a
  type that overrides ``__getattribute__``.

Every other attribute read is fetched at once, so plain values arrive as real values.

A shape also tells what Python asks of an object's *type* without reading any attribute:
whether it is callable, an iterator, sized, a context manager (`CALLABLE`, `ITERATOR`,
`SIZED`, `CONTEXT_MANAGER`), so ``callable(proxy)``, ``iter()``, ``next()``, ``len()``
and ``with`` answer as the object would, without a round trip. And the shape of an
exception class carries its class hierarchy instead of names: the client stands a local
class for it (see `fire.errors`), so ``except User.DoesNotExist`` works. A module's
shape names every exception class it holds (``django.db.IntegrityError`` is defined
elsewhere), with its shape.

A shape travels as ``[dotted name, {name: shape id or None}, flags, hierarchy or None]``.

Shapes are computed lazily and sent once per client, with the shapes they lead to two
steps away (module -> class -> manager), so ``auth.User.objects.get`` and
``user.groups.count`` are known to be references without asking, even when pytest's
assertion rewriting splits ``user.groups.count()`` into separate attribute reads.
"""

from __future__ import annotations

import threading
import types
from typing import Any

from ..wire.protocol import CALLABLE, CONTEXT_MANAGER, ITERATOR, SIZED
from ..wire.values import ValueRules
from .exception_data import class_hierarchy

__all__ = ["ShapeTable"]

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
_SEND_DEPTH = 2
_MODULE, _CLASS, _INSTANCE = 0, 1, 2


def _is_reference(raw: Any, rules: ValueRules) -> bool:
    if isinstance(raw, _ALWAYS_REFERENCE):
        return True
    if isinstance(raw, staticmethod):
        return isinstance(raw.__func__, types.FunctionType | types.BuiltinFunctionType)
    return rules.reference_descriptor(raw)[0]


def _defines(cls: type, name: str) -> bool:
    """Whether `cls` has special method `name` (found on the type, not set to None)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name] is not None
    return False


def _flags(cls: type) -> int:
    """The shape flags of an object whose type is `cls` (as Python's slots see it)."""
    return (
        (CALLABLE if _defines(cls, "__call__") else 0)
        | (ITERATOR if _defines(cls, "__next__") else 0)
        | (SIZED if _defines(cls, "__len__") else 0)
        | (CONTEXT_MANAGER if _defines(cls, "__enter__") and _defines(cls, "__exit__") else 0)
    )


def _is_exception_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def _dotted(key: Any) -> str:
    if isinstance(key, types.ModuleType):
        return key.__name__
    return f"{key.__module__}.{key.__qualname__}"


class ShapeTable:
    """One server's cache of shapes with stable small ids; contents computed on demand.

    `rules` are the server's reference descriptors (`ValueRules`).
    """

    def __init__(self, rules: ValueRules | None = None) -> None:
        self._rules = rules or ValueRules()
        self._ids: dict[tuple[int, int], int] = {}
        self._keys: list[tuple[Any, int]] = []  # keeps keys alive so id() is never reused
        self._contents: dict[int, list[Any]] = {}
        self._nested: dict[int, tuple[int, ...]] = {}
        self._lock = threading.RLock()

    def shape_id(self, obj: Any) -> int:
        """The id of `obj`'s shape (its content is computed when first needed)."""
        if isinstance(obj, types.ModuleType):
            return self._id_for(obj, _MODULE)
        if isinstance(obj, type):
            return self._id_for(obj, _CLASS)
        return self._id_for(type(obj), _INSTANCE)

    def _id_for(self, key: Any, kind: int) -> int:
        lookup = (id(key), kind)
        found = self._ids.get(lookup)
        if found is None:
            with self._lock:
                found = self._ids.get(lookup)
                if found is None:
                    found = len(self._keys)
                    self._keys.append((key, kind))
                    self._ids[lookup] = found
        return found

    def content(self, shape_id: int) -> list[Any]:
        """``[dotted name, {name: shape id of its value, or None}, flags, hierarchy]``."""
        found = self._contents.get(shape_id)
        if found is None:
            with self._lock:
                found = self._contents.get(shape_id)
                if found is None:
                    found = self._compute(shape_id)
        return found

    def _compute(self, shape_id: int) -> list[Any]:
        key, kind = self._keys[shape_id]
        names: dict[str, int | None] = {}
        hierarchy = None
        if kind == _MODULE:
            flags = _flags(types.ModuleType)
            for name, value in vars(key).items():
                if isinstance(value, type) and (
                    getattr(value, "__module__", None) == key.__name__
                    or issubclass(value, BaseException)
                ):
                    names[name] = self._id_for(value, _CLASS)
                elif isinstance(value, types.ModuleType):
                    names[name] = self._id_for(value, _MODULE)
                elif _is_reference(value, self._rules):
                    names[name] = None
        elif kind == _CLASS and _is_exception_class(key):
            # The client reads it as a local class: no names, the hierarchy instead.
            flags, hierarchy = _flags(type(key)), class_hierarchy(key)
        else:
            names = self._class_names(key, on_class=kind == _CLASS)
            flags = _flags(key if kind == _INSTANCE else type(key))
            if kind == _CLASS:  # on a class itself, its metaclass's methods are references too
                meta = self._class_names(type(key), on_class=False)
                names.update((n, v) for n, v in meta.items() if not n.startswith("__"))
        content = [_dotted(key), names, flags, hierarchy]
        self._nested[shape_id] = tuple(sorted({v for v in names.values() if v is not None}))
        self._contents[shape_id] = content
        return content

    def _class_names(self, cls: type, *, on_class: bool) -> dict[str, int | None]:
        """Names that read as references on `cls` (``on_class``) or on its instances."""
        # The instances' __getattribute__, found on the class's own MRO before its metaclass
        # (mypy reads it as the metaclass's, bound to the class).
        getattribute: object = cls.__getattribute__
        if getattribute not in (object.__getattribute__, type.__getattribute__):
            return {}
        names: dict[str, int | None] = {}
        seen: set[str] = set()
        for klass in cls.__mro__:
            for name, raw in vars(klass).items():
                if name in seen:
                    continue
                seen.add(name)
                if isinstance(raw, type):
                    names[name] = self._id_for(raw, _CLASS)
                elif isinstance(raw, types.ModuleType):
                    names[name] = self._id_for(raw, _MODULE)
                elif _is_reference(raw, self._rules):
                    names[name] = self._descriptor_result(raw, on_class)
        return names

    def _descriptor_result(self, raw: Any, on_class: bool) -> int | None:
        registered, result = self._rules.reference_descriptor(raw)
        if not registered or result is None:
            return None
        try:
            result_type = result(raw)
        except Exception:
            return None
        return None if result_type is None else self._id_for(result_type, _INSTANCE)

    def to_send(self, shape_id: int, sent: set[int]) -> list[int]:
        """`shape_id` and the shapes it leads to (two steps), less those in `sent`."""
        out: list[int] = []
        queue = [(shape_id, 0)]
        while queue:
            current, depth = queue.pop()
            if current in sent:
                continue
            sent.add(current)
            out.append(current)
            self.content(current)
            # A module reached through another object is sent, but not followed.
            if depth < _SEND_DEPTH and (depth == 0 or self._keys[current][1] != _MODULE):
                queue.extend((nested, depth + 1) for nested in self._nested[current])
        return out

    def shadowed(self, shape_id: int, obj: Any) -> list[str]:
        """Instance attributes of `obj` that hide names of its type's shape."""
        if self._keys[shape_id][1] != _INSTANCE:
            return []
        names = self.content(shape_id)[1]
        if not names:
            return []
        try:
            own = vars(obj)
        except TypeError:
            return []
        return [name for name in own.keys() & names.keys()] if own else []
