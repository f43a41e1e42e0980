"""Proxies: local stand-ins for objects that stay on a fire server.

Reading an attribute either waits for the server or, when the result is certainly a
reference, makes a *pending* proxy (a path from a live reference) without waiting:

- names in the object's shape (see `fire.shapes`): modules, classes, methods, managers;
- any name read to be called at once (``obj.method(...)``), as Python's own
  ``LOAD_METHOD`` tells: the value is called before anyone can look at it.

Every other read is fetched at once, so plain data reads as real local values
(``user.username`` is a ``str``, ``obj.parent is None`` is honest), and operations run
on the server in the order Python evaluates them. A pending path is evaluated by the
server in the same round trip as the operation that needs it, so
``User.objects.get()`` and ``os.path.join("a", "b")`` wait for one round trip.

Attribute chains are the hottest path there is, so they are cheap: a pending proxy made
for a name in the shape is kept by the proxy it came from and handed out again (a path
is evaluated afresh each time it is used, so one object serves every read), and a name
outside the shape that is read to be called gives a plain function instead of a proxy
(nobody can see the value between the read and the call). A server reference is
released when the last proxy needing it is gone: see `_Reference`.
"""

from __future__ import annotations

import dis
import itertools
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .remote import Remote

__all__ = ["Proxy", "is_proxy"]

if sys.version_info >= (3, 12):
    _LOAD_ATTR = dis.opmap["LOAD_ATTR"]

    def _read_for_call(frame: FrameType) -> bool:
        code, at = frame.f_code.co_code, frame.f_lasti
        return code[at] == _LOAD_ATTR and bool(code[at + 1] & 1)
else:
    _LOAD_METHOD = dis.opmap["LOAD_METHOD"]

    def _read_for_call(frame: FrameType) -> bool:
        return frame.f_code.co_code[frame.f_lasti] == _LOAD_METHOD


def _batches(remote: Remote, items: list[Any], iterator: Proxy | None, size: int) -> Iterator[Any]:
    """A remote iterator's items, fetched in growing batches when the previous runs out.

    Items are read from each batch by `itertools.chain` (in C), not yielded one by one
    by a generator: that is a third of what ``list()`` of 10,000 remote items costs.
    """
    return itertools.chain.from_iterable(_batch_lists(remote, items, iterator, size))


def _batch_lists(
    remote: Remote, items: list[Any], iterator: Proxy | None, size: int
) -> Iterator[list[Any]]:
    yield items
    while iterator is not None:
        items, more, size = remote._request("next", [iterator._fire_target, size])
        yield items
        if not more:
            break


def is_proxy(value: Any) -> bool:
    """Whether `value` is a fire proxy (``isinstance`` on a proxy asks the server nothing)."""
    return type(value) is Proxy


class _Reference:
    """The lifetime of one server reference, shared by the proxies that need it.

    The proxy the reference came with and every pending path from it hold this object;
    when the last of them is gone, the reference is released with the next request.
    Keeping the release here (not in a ``Proxy.__del__``) lets a proxy cache its pending
    paths without a reference cycle, and spares pending proxies a finalizer call.
    """

    __slots__ = ("ref_id", "remote")

    def __init__(self, remote: Remote, ref_id: int) -> None:
        self.remote = remote
        self.ref_id = ref_id

    def __del__(self) -> None:
        self.remote._release(self.ref_id)


class _ProxyState:
    """A proxy's own attributes, in a base class of their own so `_NewProxy` can fill them.

    `Proxy` overrides ``__setattr__`` (it sets attributes on the server), so filling a
    proxy through ``object.__setattr__`` costs a call per attribute. `_NewProxy` has the
    same layout and plain attribute assignment, and turns into a `Proxy` by
    ``__class__`` assignment once filled: half the cost, paid on every attribute chain.
    """

    # The instance __dict__ holds only the pending paths already made from this proxy
    # (`User.objects` is made once): a name found there is read without calling
    # `__getattr__` at all. `Proxy.__dict__` itself still reads the remote object's.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_fire_hash",
        "_fire_length_hint",
        "_fire_owner",
        "_fire_ref",
        "_fire_remote",
        "_fire_shadow",
        "_fire_shape",
        "_fire_target",
    )

    _fire_remote: Remote
    _fire_target: Any  # a reference id, or [reference id, name, name…] for a pending path
    _fire_ref: int | None  # set on proxies that own a server reference
    _fire_owner: _Reference | None  # keeps the reference this proxy starts from alive
    _fire_shape: int | None
    _fire_shadow: tuple[str, ...]
    _fire_hash: int | None
    _fire_length_hint: tuple[int, int] | None  # (length, id of the request that told it)


#: A proxy's real instance dict, the cache of its pending paths (see `_ProxyState`).
_children: Callable[[_ProxyState], dict[str, Proxy]] = _ProxyState.__dict__["__dict__"].__get__


class _NewProxy(_ProxyState):
    """A proxy being made (see `_ProxyState`); it is a `Proxy` when ``__init__`` returns."""

    __slots__ = ()

    def __init__(
        self,
        remote: Remote,
        target: Any,
        ref: int | None,
        owner: _Reference | None,
        shape: int | None,
        shadow: tuple[str, ...],
    ) -> None:
        self._fire_remote = remote
        self._fire_target = target
        self._fire_ref = ref
        self._fire_owner = owner
        self._fire_shape = shape
        self._fire_shadow = shadow
        self._fire_hash = None
        self._fire_length_hint = None
        self.__class__ = Proxy  # type: ignore[assignment]


class Proxy(_ProxyState):
    """A remote object. Don't construct one: `Remote.module()` and remote calls return them."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Proxy:
        # Refused in __new__, not __init__: no half-made proxy ever exists.
        raise TypeError(
            "fire proxies come from Remote.module() and remote calls; don't create them"
        )

    @classmethod
    def _fire_new(
        cls,
        remote: Remote,
        target: Any,
        ref: int | None,
        owner: _Reference | None,
        shape: int | None,
        shadow: tuple[str, ...] = (),
    ) -> Proxy:
        """A proxy; one that owns reference `ref` gets the `_Reference` that releases it."""
        if ref is not None and owner is None:
            owner = _Reference(remote, ref)
        return _NewProxy(remote, target, ref, owner, shape, shadow)  # type: ignore[return-value]

    def _fire_request(self, operation: str, *args: Any) -> Any:
        return self._fire_remote._request(operation, [self._fire_target, *args])

    def _fire_method(self, name: str) -> Callable[..., Any]:
        """``self.name(...)``: one request that reads `name` on the server and calls it."""
        ref = self._fire_ref
        target = [ref, name] if ref is not None else [*self._fire_target, name]

        def call(*args: Any, **kwargs: Any) -> Any:
            # `self` (not just its target) is used here, so its reference stays alive.
            return self._fire_remote._request("call", [target, list(args), kwargs])

        return call

    # attributes
    @property
    def __dict__(self) -> Any:  # type: ignore[override]
        """The remote object's ``__dict__`` (the local one caches pending paths)."""
        return self._fire_request("getattr", "__dict__")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_fire_"):
            raise AttributeError(name)
        remote = self._fire_remote
        shape = remote._shapes.get(self._fire_shape)  # type: ignore[arg-type]
        if shape is not None:
            names = shape[1]
            if name in names and name not in self._fire_shadow:
                # A pending path, kept: a path is evaluated afresh each time it is used.
                ref = self._fire_ref
                target = [ref, name] if ref is not None else [*self._fire_target, name]
                child = _NewProxy(remote, target, None, self._fire_owner, names[name], ())
                _children(self)[name] = child  # read from there next time
                return child
        if _read_for_call(sys._getframe(1)):
            return self._fire_method(name)
        return self._fire_request("getattr", name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_fire_"):
            raise AttributeError(f"{name} is fire's own attribute")
        self._fire_request("setattr", name, value)
        _children(self).pop(name, None)
        if name not in self._fire_shadow:
            # The object's own attribute now hides what its shape says (a method).
            object.__setattr__(self, "_fire_shadow", (*self._fire_shadow, name))

    def __delattr__(self, name: str) -> None:
        self._fire_request("delattr", name)
        _children(self).pop(name, None)
        if name in self._fire_shadow:
            shadow = tuple(n for n in self._fire_shadow if n != name)
            object.__setattr__(self, "_fire_shadow", shadow)

    def __dir__(self) -> list[str]:
        return self._fire_request("dir")

    # calls and containers
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fire_remote._request("call", [self._fire_target, list(args), kwargs])

    def __getitem__(self, key: Any) -> Any:
        return self._fire_request("getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._fire_request("setitem", key, value)

    def __delitem__(self, key: Any) -> None:
        self._fire_request("delitem", key)

    def __len__(self) -> int:
        hint = self._fire_length_hint
        if hint is not None:
            object.__setattr__(self, "_fire_length_hint", None)
            # `list(proxy)` asks for the length right after `iter()`, which already told
            # it; after any other request (a loop that changed the object) it is stale.
            if hint[1] == self._fire_remote._transport._next_id:
                return hint[0]
        return self._fire_request("len")

    def __contains__(self, item: Any) -> bool:
        return self._fire_request("contains", item)

    def __bool__(self) -> bool:
        return self._fire_request("bool")

    def __iter__(self) -> Iterator[Any]:
        items, iterator, size, length = self._fire_request("iter")
        hint = (length, self._fire_remote._transport._next_id) if length >= 0 else None
        object.__setattr__(self, "_fire_length_hint", hint)
        return _batches(self._fire_remote, items, iterator, size)

    # comparisons: compare on the server, where the real objects are
    def __eq__(self, other: object) -> Any:
        return self._fire_request("compare", "eq", other)

    def __ne__(self, other: object) -> Any:
        return self._fire_request("compare", "ne", other)

    def __lt__(self, other: object) -> Any:
        return self._fire_request("compare", "lt", other)

    def __le__(self, other: object) -> Any:
        return self._fire_request("compare", "le", other)

    def __gt__(self, other: object) -> Any:
        return self._fire_request("compare", "gt", other)

    def __ge__(self, other: object) -> Any:
        return self._fire_request("compare", "ge", other)

    def __hash__(self) -> int:
        cached = self._fire_hash
        if cached is None:
            cached = self._fire_request("hash")
            object.__setattr__(self, "_fire_hash", cached)
        return cached

    # text
    def __repr__(self) -> str:
        remote = self._fire_remote
        try:
            text = self._fire_request("repr")
        except Exception as exc:
            text = f"(repr unavailable: {exc})"
        return f"<fire proxy from {remote.name!r}: {text}>"

    def __str__(self) -> str:
        return self._fire_request("str")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("fire proxies cannot be pickled: the object lives on its server")
