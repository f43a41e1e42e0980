"""Patches and a clock declared for a test, as both runners apply them.

The pytest marker (``@pytest.mark.fire(patch=..., freeze_time=...)``) and
`FireTestCase`'s class attributes (``fire_patch``, ``fire_time``) declare them;
the runner applies them once the test's scope is open on every server, so each server
undoes them when that scope ends (`fire.server.undo`), whatever the test did.

``patch`` is ``{server name: {dotted target: {option: value}}}``, the options those of
`fire.Remote.patch` (``return_value``, ``side_effect``, ``autospec``, …).
``freeze_time`` is an ISO 8601 string with a time zone (or an aware datetime), or
``{"at": …, "tick": bool, "here": bool}`` (``here``: the test process's clock too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..client.clock import Clocks, freeze_time
from ..errors import FireError

if TYPE_CHECKING:
    from ..client.patches import Patch
    from ..client.remote import Remote

__all__ = ["apply_patches", "declared_clock"]

_CLOCK_KEYS = frozenset(("at", "tick", "here"))


def apply_patches(
    remotes: Mapping[str, Remote], declared: Any, where: str
) -> dict[str, dict[str, Patch]]:
    """Patch what `declared` says on each server; server name -> target -> `Patch`.

    `where` names the declaration in errors (``@pytest.mark.fire(patch=...)``).
    """
    if not declared:
        return {}
    if not isinstance(declared, Mapping):
        raise FireError(
            f"{where} takes {{server name: {{dotted target: {{option: value}}}}}}, "
            f"not {type(declared).__name__}"
        )
    patches: dict[str, dict[str, Patch]] = {}
    for name, targets in declared.items():
        if name not in remotes:
            raise FireError(
                f"{where} patches server {name!r}, which is not among this test's servers "
                f"({', '.join(remotes) or 'none'})"
            )
        if not isinstance(targets, Mapping):
            raise FireError(f"{where}[{name!r}] takes {{dotted target: {{option: value}}}}")
        made = patches.setdefault(name, {})
        for target, options in targets.items():
            if not isinstance(options, Mapping):
                raise FireError(
                    f"{where}[{name!r}][{target!r}] takes the patch's options as a dict "
                    f"(return_value=..., side_effect=..., autospec=...), not {options!r}"
                )
            made[target] = remotes[name].patch(target, **dict(options))
    return patches


def declared_clock(remotes: Mapping[str, Remote], declared: Any, where: str) -> Clocks | None:
    """Freeze the clock of every server in `remotes` as `declared` says (or None)."""
    if declared is None:
        return None
    if isinstance(declared, str | dt.datetime):
        return freeze_time(dict(remotes), declared)
    if isinstance(declared, Mapping) and "at" in declared and set(declared) <= _CLOCK_KEYS:
        return freeze_time(
            dict(remotes),
            declared["at"],
            tick=bool(declared.get("tick", False)),
            here=bool(declared.get("here", False)),
        )
    raise FireError(
        f"{where} takes an ISO 8601 time with a time zone ('2026-01-01T12:00Z'), an aware "
        f"datetime, or {{'at': ..., 'tick': bool, 'here': bool}}; not {declared!r}"
    )
