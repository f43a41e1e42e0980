"""`Patch`: the test's handle on a `unittest.mock` patch made in a server's process.

``Remote.patch(...)`` patches at once and returns one. It stands for the mock: reading
an attribute or calling it goes to the mock, in the service (``charge.call_count``,
``charge.return_value``, ``charge.assert_called_once_with(42, currency="EUR")``), and
the call records come back as local `unittest.mock.call` objects, so
``charge.call_args_list == [call(42, currency="EUR")]`` compares here. ``mock.ANY`` and
``call(...)`` given to the mock's ``assert_*`` methods are sent as their counterparts in
the service. As a context manager it undoes the patch at the block's end; the server
undoes it anyway at the end of the scope it was made in (`fire.server.undo`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from unittest import mock

from ..errors import FireError
from .proxy import Proxy

if TYPE_CHECKING:
    from .remote import Remote

__all__ = ["Patch", "side_effect_data"]

#: What the handle answers itself, from the call records it reads in one round trip.
_CALL_RECORDS = frozenset(("call_args", "call_args_list", "mock_calls", "method_calls"))
_OWN = frozenset(("_remote", "_active", "mock", "target"))


class Patch:
    """A patch in place on a server: stands for its mock (see the module's docstring)."""

    __slots__ = ("_active", "_remote", "mock", "target")

    def __init__(self, remote: Remote, target: str, active: Proxy, patched: Any) -> None:
        object.__setattr__(self, "_remote", remote)
        object.__setattr__(self, "_active", active)
        #: The mock (a proxy of it in the service), or the patched dict for ``patch_dict``.
        object.__setattr__(self, "mock", patched)
        #: What was patched, as the test named it.
        object.__setattr__(self, "target", target)

    def stop(self) -> None:
        """Undo the patch now (and any newer patch of the same target, first)."""
        if not self._remote.closed:
            self._active.stop()

    @property
    def active(self) -> bool:
        """Whether the patch is still in place (its scope has not ended, nor `stop` run)."""
        return not self._remote.closed and bool(self._active.active)

    def __enter__(self) -> Patch:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __getattr__(self, name: str) -> Any:
        if name in _CALL_RECORDS:
            return _local_calls(self._active.calls(name))
        if name.startswith("assert_"):
            return _assertion(self._remote, getattr(self.mock, name))
        return getattr(self.mock, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            raise AttributeError(f"Patch.{name} cannot be set")
        setattr(self.mock, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.mock(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<fire.Patch of {self.target!r} on {self._remote.name!r}>"


def _local_calls(data: Any) -> Any:
    """Call records as the server sent them (``[name, args, kwargs]``) -> local calls."""
    if data is None:
        return None
    if data and isinstance(data[0], str):  # call_args: one call
        return _call(data)
    return mock._CallList(_call(item) for item in data)


def _call(item: list[Any]) -> Any:
    name, args, kwargs = item
    return mock._Call((name, tuple(args), kwargs))


def _assertion(remote: Remote, method: Callable[..., Any]) -> Callable[..., Any]:
    """A mock's ``assert_*`` method, whose ``ANY`` and ``call(...)`` arguments are sent
    as the service's own (they are no plain data)."""

    def assertion(*args: Any, **kwargs: Any) -> Any:
        return method(
            *(_remote_matcher(remote, arg) for arg in args),
            **{key: _remote_matcher(remote, value) for key, value in kwargs.items()},
        )

    return assertion


def _remote_matcher(remote: Remote, value: Any) -> Any:
    if value is mock.ANY:
        return remote.module("unittest.mock").ANY
    if isinstance(value, mock._Call):
        name, args, kwargs = value if len(value) == 3 else ("", *value)
        return remote.module("unittest.mock")._Call(
            (
                name,
                tuple(_remote_matcher(remote, arg) for arg in args),
                {key: _remote_matcher(remote, item) for key, item in kwargs.items()},
            )
        )
    if type(value) in (list, tuple):
        return type(value)(_remote_matcher(remote, item) for item in value)
    if type(value) is dict:
        return {key: _remote_matcher(remote, item) for key, item in value.items()}
    return value


def side_effect_data(value: Any) -> list[Any]:
    """A side effect as plain data for the server (`fire.server.patches`).

    An exception class or instance travels by its dotted name (and its arguments): the
    service raises its own class of that name. A string names a callable the service
    imports (``"shop.fakes.declined_charge"``); a proxy is a remote object already; a
    list or tuple gives one return value per call (exceptions in it are raised).
    """
    if isinstance(value, type) and issubclass(value, BaseException):
        return ["raise", _exception_name(value), None]
    if isinstance(value, BaseException):
        return ["raise", _exception_name(type(value)), list(value.args)]
    if isinstance(value, str):
        return ["call", value]
    if type(value) in (list, tuple):  # one per call: values (strings too), or exceptions
        return ["each", [_returned_or_raised(item) for item in value]]
    if isinstance(value, Proxy) or value is None:
        return ["value", value]
    if callable(value):
        raise FireError(
            f"side_effect {value!r} is a function of the test process: the mock lives in the "
            "service, which cannot call it; name a function of the service "
            "(side_effect='package.module.function'), or give a proxy of one"
        )
    return ["value", value]


def _returned_or_raised(item: Any) -> list[Any]:
    if isinstance(item, BaseException) or (
        isinstance(item, type) and issubclass(item, BaseException)
    ):
        return side_effect_data(item)
    return ["value", item]


def _exception_name(cls: type[BaseException]) -> str:
    """The dotted name of the service's class `cls` stands for."""
    remote_name = cls.__dict__.get("remote_type")  # a remote exception's local class
    if isinstance(remote_name, str):
        return remote_name
    if getattr(builtins, cls.__name__, None) is cls:
        return f"builtins.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"
