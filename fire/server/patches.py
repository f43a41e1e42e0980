"""The ``patch`` operation: `unittest.mock` patches made in the server's process.

The mock lives in the service, where the code under test calls it (a fire call, or a
view served by the live HTTP server, in the same process); the client gets a reference
to it, and to the `ActivePatch` that undoes it. Every patch is recorded in the
session's innermost scope (`fire.server.undo`): it is undone when that scope ends, or
when the session closes (the client left or died), whatever the test did.

A target that does not exist is refused before anything is patched, naming the module
or object searched and its nearest names (``create=True`` patches it anyway, as
`unittest.mock` does). What a side effect may be, as the client sends it
(`fire.client.patches.side_effect_data`): ``["value", v]`` (a proxy of a remote
callable, say), ``["raise", "dotted.ExceptionClass", args or None]``, ``["call",
"dotted.callable"]`` (imported here), ``["each", [side effects…]]`` (a list: one per
call, exceptions raised in turn).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import types
from typing import Any
from unittest import mock

from ..errors import FireError
from .session import Session
from .undo import Change

__all__ = ["ActivePatch", "patch"]

#: The keyword arguments of `unittest.mock.patch` a client may give (``new`` included).
_PATCH_OPTIONS = frozenset(
    ("new", "spec", "create", "spec_set", "autospec", "new_callable", "return_value", "side_effect")
)
_DICT_OPTIONS = frozenset(("values", "clear"))
_CALL_LISTS = frozenset(("call_args_list", "mock_calls", "method_calls"))


class ActivePatch:
    """One patch in place on this server; the client's handle reaches it by reference."""

    def __init__(self, session: Session, what: str, patcher: Any, key: object) -> None:
        self.what = what
        self._session = session
        self._patcher = patcher
        self.mock = patcher.start()
        self._change = session.undo.add(Change(f"the patch of {what}", patcher.stop, key))

    @property
    def active(self) -> bool:
        return not self._change.done

    def stop(self) -> None:
        """Undo the patch now (and newer patches of the same target first)."""
        self._session.undo.undo(self._change)

    def calls(self, name: str) -> Any:
        """The mock's ``call_args`` (one call or None) or a list of calls, as plain data:
        ``[name, args, kwargs]`` each (arguments that are not plain data as references)."""
        if name == "call_args":
            found = self.mock.call_args
            return None if found is None else _call_data(found)
        if name not in _CALL_LISTS:
            raise FireError(f"calls() reads call_args or {', '.join(sorted(_CALL_LISTS))}")
        return [_call_data(call) for call in getattr(self.mock, name)]

    def __repr__(self) -> str:
        return f"<fire patch of {self.what} ({'active' if self.active else 'undone'})>"


def patch(
    session: Session, kind: str, target: Any, attribute: str | None, options: dict[str, Any]
) -> list[Any]:
    """Patch, and return ``[ActivePatch, the mock]`` (the dict, for ``kind="dict"``).

    `kind` is ``"patch"`` (`target` a dotted name, as `unittest.mock.patch` takes),
    ``"object"`` (`target` an object or a dotted name, and `attribute`) or ``"dict"``
    (`target` a mapping or a dotted name; ``values`` and ``clear`` in `options`).
    """
    if not isinstance(options, dict):
        raise FireError("patch options must be a dict of keyword arguments")
    if kind == "dict":
        return _patch_dict(session, target, options)
    if kind == "patch":
        if not isinstance(target, str) or "." not in target:
            raise FireError(
                f"patch() takes a dotted target 'package.module.name', not {target!r}; "
                "patch_object() takes an object and an attribute name"
            )
        target, attribute = target.rsplit(".", 1)
    elif kind != "object":
        raise FireError(f"unknown patch kind {kind!r}: patch, object or dict")
    if not isinstance(attribute, str) or not attribute:
        raise FireError("patch_object() needs the attribute's name")
    unknown = set(options) - _PATCH_OPTIONS
    if unknown:
        raise FireError(
            f"unknown patch option(s) {', '.join(sorted(unknown))}: it takes "
            f"{', '.join(sorted(_PATCH_OPTIONS))}"
        )
    owner = _resolve(target) if isinstance(target, str) else target
    if not options.get("create") and not hasattr(owner, attribute):
        raise AttributeError(
            _missing(owner, attribute, target, f"{_name(owner, target)}.{attribute}")
        )
    arguments = dict(options)
    if "side_effect" in arguments:
        arguments["side_effect"] = _side_effect(arguments["side_effect"])
    what = f"{_name(owner, target)}.{attribute}"
    patcher = mock.patch.object(owner, attribute, **arguments)
    active = ActivePatch(session, repr(what), patcher, (id(owner), attribute))
    return [active, active.mock]


def _patch_dict(session: Session, target: Any, options: dict[str, Any]) -> list[Any]:
    unknown = set(options) - _DICT_OPTIONS
    if unknown:
        raise FireError(
            f"unknown patch_dict option(s) {', '.join(sorted(unknown))}: it takes values, clear"
        )
    mapping = _resolve(target) if isinstance(target, str) else target
    values = options.get("values") or {}
    patcher = mock.patch.dict(mapping, values, clear=bool(options.get("clear")))
    what = target if isinstance(target, str) else f"a {type(mapping).__name__}"
    active = ActivePatch(session, f"the dict {what!r}", patcher, (id(mapping), None))
    return [active, active.mock]


def _resolve(dotted: str) -> Any:
    """The object `dotted` names (a module, then attributes), or an error naming the
    module searched and its nearest names."""
    try:
        return pkgutil.resolve_name(dotted)
    except ModuleNotFoundError as exc:
        from .operations import _close_modules

        missing = exc.name or dotted
        close = _close_modules(missing)
        if close:
            exc.add_note(f"(fire: did you mean {' or '.join(map(repr, close))}?)")
        raise
    except AttributeError:
        pass
    except ValueError as exc:
        raise FireError(f"cannot patch {dotted!r}: {exc}") from None
    # An attribute on the way is missing: find the last object that exists.
    parts = dotted.split(".")
    owner: Any = None
    for cut in range(len(parts), 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        found = cut
        break
    else:
        raise FireError(f"cannot patch {dotted!r}: no module of it can be imported")
    for step in range(found, len(parts)):
        if not hasattr(owner, parts[step]):
            raise AttributeError(_missing(owner, parts[step], ".".join(parts[:step]), dotted))
        owner = getattr(owner, parts[step])
    return owner


def _missing(owner: Any, attribute: str, named: Any, patching: str) -> str:
    """Why `patching` cannot be patched: `owner` (what `named` names) lacks `attribute`,
    and the names of `owner` nearest to it."""
    close = difflib.get_close_matches(attribute, [n for n in dir(owner) if n[:2] != "__"], n=3)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return (
        f"cannot patch {patching!r}: {_describe(owner, named)} has no attribute "
        f"{attribute!r}{hint}; create=True patches a missing attribute anyway"
    )


def _describe(owner: Any, named: Any) -> str:
    if isinstance(owner, types.ModuleType):
        return f"module {owner.__name__!r}"
    if isinstance(owner, type):
        return f"class {owner.__module__}.{owner.__qualname__}"
    return f"{named!r}" if isinstance(named, str) else f"the {type(owner).__name__} object"


def _name(owner: Any, named: Any) -> str:
    if isinstance(named, str):
        return named
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}"
    return f"<{type(owner).__name__} object>"


def _side_effect(described: Any) -> Any:
    """The side effect `described` names (see the module's docstring)."""
    if not isinstance(described, list) or not described:
        raise FireError(f"bad side_effect {described!r}")
    kind = described[0]
    if kind == "value":
        return described[1]
    if kind == "call":
        return _resolve(described[1])
    if kind == "raise":
        cls = _resolve(described[1])
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise FireError(f"side_effect {described[1]!r} is not an exception class")
        return cls if described[2] is None else cls(*described[2])
    if kind == "each":
        return [_side_effect(item) for item in described[1]]
    raise FireError(f"bad side_effect kind {kind!r}")


def _call_data(call: Any) -> list[Any]:
    name = call[0] if len(call) == 3 else ""
    return [name, tuple(call.args), dict(call.kwargs)]
