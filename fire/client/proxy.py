"""Proxies: local stand-ins for objects that stay on a fire server.

Reading an attribute either waits for the server or, when the result is certainly a
reference, makes a *pending* proxy (a path from a live reference) without waiting:

- names in the object's shape (see `fire.server.shapes`): modules, classes, methods, managers;
- any name read to be called at once (``obj.method(...)``), as Python's own
  ``LOAD_METHOD`` tells: the value is called before anyone can look at it.

Every other read is fetched at once, so plain data reads as real local values
(``user.username`` is a ``str``, ``obj.parent is None`` is honest), and operations run
on the server in the order Python evaluates them, but for the deferred reads: a pending
path (or the method of ``obj.name(...)``) is read by the server in the same round trip
as the operation that needs it, after that operation's arguments were evaluated. So
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
from collections import deque
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..wire.codec import CannotSend
from ..wire.protocol import CONTEXT_MANAGER, ITERATOR, SIZED
from .stepping import traced_call

if TYPE_CHECKING:
    from .remote import Remote

__all__ = ["CallableProxy", "Proxy", "is_proxy"]

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
        items, more, size, _ = remote._request("next", [iterator._fire_target, size])
        yield items
        if not more:
            break


class _ReadAhead:
    """The items a proxy of a remote *iterator* has fetched but not yet handed out.

    It belongs to the proxy, not to one local loop: ``it = iter(g); next(it); list(g)``
    sees every item once, in order, since ``iter(g)`` is ``g`` (as locally). ``next()``
    alone fetches one item at a time, so the remote iterator runs exactly as far as the
    client has read (remote code handed the iterator goes on from there). Once a loop
    has asked for it (``iter()``: ``for``, ``list()``…), batches grow fourfold from one
    item, so a whole loop takes few round trips; a loop that stops early leaves up to
    one batch here, for the proxy's next reader.
    """

    __slots__ = ("exhausted", "items", "looping", "size", "source")

    def __init__(self, source: Proxy) -> None:
        self.items: deque[Any] = deque()
        self.source = source  # what to ask for the next batch: the proxy, or a _Batches
        self.size = 1
        self.looping = False
        self.exhausted = False

    def next(self) -> Any:
        items = self.items
        if not items:
            if self.exhausted:  # an iterator that raised StopIteration stays exhausted
                raise StopIteration
            source = self.source
            fetched, more, size, keep = source._fire_remote._request(
                "next", [source._fire_target, self.size]
            )
            if self.looping:
                self.size = size
            if keep is not None:  # an error to raise after these items: ask it
                self.source = keep
            self.exhausted = not more
            if not fetched:
                raise StopIteration
            items.extend(fetched)
        return items.popleft()


def is_proxy(value: Any) -> bool:
    """Whether `value` is a fire proxy (``isinstance`` on a proxy asks the server nothing)."""
    return isinstance(value, Proxy)


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
        "_fire_iteration",
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
    _fire_iteration: _ReadAhead | None  # set once the proxy is read as an iterator
    _fire_length_hint: tuple[int, int] | None  # (length, id of the request that told it)


#: A proxy's real instance dict, the cache of its pending paths (see `_ProxyState`).
_children: Callable[[_ProxyState], dict[str, Proxy]] = _ProxyState.__dict__["__dict__"].__get__


class _NewProxy(_ProxyState):
    """A proxy being made (see `_ProxyState`); it is a `Proxy` (or `CallableProxy`, as
    `proxy_class` says) when ``__init__`` returns."""

    __slots__ = ()

    def __init__(
        self,
        remote: Remote,
        target: Any,
        ref: int | None,
        owner: _Reference | None,
        shape: int | None,
        shadow: tuple[str, ...],
        proxy_class: type[Proxy],
    ) -> None:
        self._fire_remote = remote
        self._fire_target = target
        self._fire_ref = ref
        self._fire_owner = owner
        self._fire_shape = shape
        self._fire_shadow = shadow
        self._fire_hash = None
        self._fire_iteration = None
        self._fire_length_hint = None
        # Becomes a proxy, which cannot be constructed (Proxy.__new__ refuses); same slots.
        self.__class__ = proxy_class  # type: ignore[assignment]


class Proxy(_ProxyState):
    """A remote object. Don't construct one: `Remote.module()` and remote calls return them.

    A proxy of a callable object is a `CallableProxy`, so ``callable(proxy)`` tells.
    """

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
        proxy_class: type[Proxy] | None = None,
    ) -> Proxy:
        """A proxy; one that owns reference `ref` gets the `_Reference` that releases it."""
        if ref is not None and owner is None:
            owner = _Reference(remote, ref)
        return _NewProxy(  # type: ignore[return-value]  # a `proxy_class` once __init__ returns
            remote, target, ref, owner, shape, shadow, proxy_class or CallableProxy
        )

    def _fire_flags(self) -> int | None:
        """What the object's type makes of it (`fire.server.shapes` flags); None when unknown."""
        content = self._fire_remote._shapes.get(self._fire_shape)
        return content[2] if content is not None else None

    def _fire_type_name(self) -> str:
        content = self._fire_remote._shapes[self._fire_shape]
        return content[0].rpartition(".")[2]

    def _fire_request(self, operation: str, *args: Any) -> Any:
        return self._fire_remote._request(operation, [self._fire_target, *args])

    def _fire_method(self, name: str) -> Callable[..., Any]:
        """``self.name(...)``: one request that reads `name` on the server and calls it."""
        ref = self._fire_ref
        target = [ref, name] if ref is not None else [*self._fire_target, name]

        def call(*args: Any, **kwargs: Any) -> Any:
            # `self` (not just its target) is used here, so its reference stays alive.
            if sys.gettrace() is not None:  # a debugger may step onto it
                return traced_call(self._fire_remote, target, list(args), kwargs)
            return self._fire_remote._request("call", [target, list(args), kwargs])

        return call

    # attributes
    @property
    def __dict__(self) -> Any:  # type: ignore[override]  # the remote object's, on purpose
        """The remote object's ``__dict__`` (the local one caches pending paths)."""
        return self._fire_request("getattr", "__dict__")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_fire_"):
            raise AttributeError(name)
        remote = self._fire_remote
        shape = remote._shapes.get(self._fire_shape)
        if shape is not None:
            names = shape[1]
            if name in names and name not in self._fire_shadow:
                # A pending path, kept: a path is evaluated afresh each time it is used.
                # Its class comes from its shape: a proxy class, or the local class that
                # stands for a remote exception class. A name without a shape is a
                # function or method: callable.
                child_shape = names[name]
                child: Any = remote._shape_classes.get(child_shape, CallableProxy)
                if child is Proxy or child is CallableProxy:
                    ref = self._fire_ref
                    target = [ref, name] if ref is not None else [*self._fire_target, name]
                    child = _NewProxy(
                        remote, target, None, self._fire_owner, child_shape, (), child
                    )
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

    # calls and containers (`CallableProxy` adds ``__call__``)
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
            if hint[1] == self._fire_remote._last_id:
                return hint[0]
        flags = self._fire_flags()
        if flags is not None and not flags & SIZED:
            raise TypeError(f"object of type '{self._fire_type_name()}' has no len()")
        return self._fire_request("len")

    def __contains__(self, item: Any) -> bool:
        read_ahead = self._fire_iteration
        if read_ahead is not None and read_ahead.items:
            # `in` consumes an iterator up to the match; the items read ahead come first.
            return any(value is item or value == item for value in self)
        return self._fire_request("contains", item)

    def __bool__(self) -> bool:
        return self._fire_request("bool")

    def __iter__(self) -> Iterator[Any]:
        read_ahead = self._fire_iteration
        if read_ahead is None:
            flags = self._fire_flags()
            if flags is None or not flags & ITERATOR:
                items, iterator, size, length, own = self._fire_request("iter")
                if not own:
                    # A fresh remote iterator that only this loop sees: read ahead freely.
                    hint = (length, self._fire_remote._last_id) if length >= 0 else None
                    object.__setattr__(self, "_fire_length_hint", hint)
                    return _batches(self._fire_remote, items, iterator, size)
            read_ahead = _ReadAhead(self)
            object.__setattr__(self, "_fire_iteration", read_ahead)
        read_ahead.looping = True
        return self  # a remote iterator is its own iterator, as locally

    def __next__(self) -> Any:
        read_ahead = self._fire_iteration
        if read_ahead is None:
            flags = self._fire_flags()
            if flags is not None and not flags & ITERATOR:
                raise TypeError(f"'{self._fire_type_name()}' object is not an iterator")
            read_ahead = _ReadAhead(self)
            object.__setattr__(self, "_fire_iteration", read_ahead)
        return read_ahead.next()

    # isinstance(x, proxy) and issubclass(c, proxy) call these on type(proxy), Proxy
    def __instancecheck__(self, instance: Any) -> bool:
        try:
            return self._fire_request("isinstance", instance)
        except CannotSend:  # a local object is no instance of a remote class
            return False

    def __subclasscheck__(self, subclass: Any) -> bool:
        try:
            return self._fire_request("issubclass", subclass)
        except CannotSend:
            return False

    # comparisons: compare on the server, where the real objects are
    def _fire_compare(self, operator: str, other: object) -> Any:
        try:
            return self._fire_request("compare", operator, other)
        except CannotSend:  # `other` cannot travel: Python's fallback (mock.ANY, identity)
            return NotImplemented

    def __eq__(self, other: object) -> Any:
        return self._fire_compare("eq", other)

    def __ne__(self, other: object) -> Any:
        return self._fire_compare("ne", other)

    def __lt__(self, other: object) -> Any:
        return self._fire_compare("lt", other)

    def __le__(self, other: object) -> Any:
        return self._fire_compare("le", other)

    def __gt__(self, other: object) -> Any:
        return self._fire_compare("gt", other)

    def __ge__(self, other: object) -> Any:
        return self._fire_compare("ge", other)

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

    # copies: the object stays where it is, so a copy is the proxy itself
    # the context manager protocol: ``with remote_cursor as cursor:``
    def __enter__(self) -> Any:
        flags = self._fire_flags()
        if flags is not None and not flags & CONTEXT_MANAGER:
            raise TypeError(
                f"'{self._fire_type_name()}' object does not support the context manager protocol"
            )
        return self._fire_method("__enter__")()

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        """Exit remotely; an exception passing is told as a remote ``Exception(message)``.

        Local exceptions (and their tracebacks) cannot travel, so the remote ``__exit__``
        sees an ``Exception`` with the local one's text: enough for a cursor to close or a
        lock to release, and true to whether the block failed. What it returns decides,
        as locally, whether the exception is suppressed.
        """
        told = None if exc_type is None else f"{exc_type.__name__}: {exc}"
        return bool(self._fire_request("exit", told))

    def __copy__(self) -> Proxy:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Proxy:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("fire proxies cannot be pickled: the object lives on its server")


class CallableProxy(Proxy):
    """A proxy of a callable remote object (a function, a class, a bound method…)."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if sys.gettrace() is not None:  # a debugger may step onto it
            return traced_call(self._fire_remote, self._fire_target, list(args), kwargs)
        return self._fire_remote._request("call", [self._fire_target, list(args), kwargs])
