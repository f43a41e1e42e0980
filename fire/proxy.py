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
"""

from __future__ import annotations

import dis
import sys
from collections.abc import Iterator
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
    """Yield a remote iterator's items, fetching them in growing batches."""
    yield from items
    while iterator is not None:
        items, more, size = remote._request("next", [iterator._fire_target, size])
        yield from items
        if not more:
            break


def is_proxy(value: Any) -> bool:
    """Whether `value` is a fire proxy (``isinstance`` on a proxy asks the server nothing)."""
    return type(value) is Proxy


class Proxy:
    """A remote object. Don't construct one: `Remote.module()` and remote calls return them."""

    __slots__ = ("__weakref__", "_fire_hash", "_fire_length_hint", "_fire_owner", "_fire_ref", "_fire_remote",
                 "_fire_shadow", "_fire_shape", "_fire_target")

    _fire_remote: Remote
    _fire_target: Any  # a reference id, or [reference id, name, name…] for a pending path
    _fire_ref: int | None  # set on proxies that own a server reference
    _fire_owner: Proxy | None  # keeps the reference a pending path starts from alive
    _fire_shape: int | None
    _fire_shadow: tuple[str, ...]
    _fire_hash: int | None
    _fire_length_hint: int | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("fire proxies come from Remote.module() and remote calls; don't create them")

    @classmethod
    def _fire_new(
        cls, remote: Remote, target: Any, ref: int | None, owner: Proxy | None,
        shape: int | None, shadow: tuple[str, ...] = (),
    ) -> Proxy:
        proxy = object.__new__(cls)
        setter = object.__setattr__
        setter(proxy, "_fire_remote", remote)
        setter(proxy, "_fire_target", target)
        setter(proxy, "_fire_ref", ref)
        setter(proxy, "_fire_owner", owner)
        setter(proxy, "_fire_shape", shape)
        setter(proxy, "_fire_shadow", shadow)
        setter(proxy, "_fire_hash", None)
        setter(proxy, "_fire_length_hint", None)
        return proxy

    def __del__(self) -> None:
        ref = self._fire_ref
        if ref is not None:
            self._fire_remote._release(ref)

    def _fire_request(self, operation: str, *args: Any) -> Any:
        return self._fire_remote._request(operation, [self._fire_target, *args])

    def _fire_path(self, name: str, shape: int | None) -> Proxy:
        if self._fire_ref is not None:
            return Proxy._fire_new(self._fire_remote, [self._fire_ref, name], None, self, shape)
        return Proxy._fire_new(
            self._fire_remote, [*self._fire_target, name], None, self._fire_owner, shape
        )

    # attributes
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_fire_"):
            raise AttributeError(name)
        shape = self._fire_remote._shapes.get(self._fire_shape)  # type: ignore[arg-type]
        if shape is not None and name in shape[1] and name not in self._fire_shadow:
            return self._fire_path(name, shape[1][name])
        if _read_for_call(sys._getframe(1)):
            return self._fire_path(name, None)
        return self._fire_request("getattr", name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_fire_"):
            raise AttributeError(f"{name} is fire's own attribute")
        self._fire_request("setattr", name, value)

    def __delattr__(self, name: str) -> None:
        self._fire_request("delattr", name)

    def __dir__(self) -> list[str]:
        return self._fire_request("dir")

    # calls and containers
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fire_request("call", list(args), kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self._fire_request("getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._fire_request("setitem", key, value)

    def __delitem__(self, key: Any) -> None:
        self._fire_request("delitem", key)

    def __len__(self) -> int:
        hint = self._fire_length_hint
        if hint is not None:
            # `list(proxy)` asks for the length right after `iter()`, which already told it.
            object.__setattr__(self, "_fire_length_hint", None)
            return hint
        return self._fire_request("len")

    def __contains__(self, item: Any) -> bool:
        return self._fire_request("contains", item)

    def __bool__(self) -> bool:
        return self._fire_request("bool")

    def __iter__(self) -> Iterator[Any]:
        items, iterator, size, length = self._fire_request("iter")
        object.__setattr__(self, "_fire_length_hint", length if length >= 0 else None)
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
