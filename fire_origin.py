"""Detect a foreign package named ``fire`` (Google's python-fire) shadowing ours.

A top-level module of the djfire distribution, outside every package: it must work when
``import fire`` gives python-fire (so it cannot live in ``fire/``), and both the pytest
plugin and djfire use it without importing each other.

Two checks: `check_fire_package` imports ``fire`` and reads its mark (for code that is
about to use fire anyway); `foreign_fire` reads the mark from the source without
importing anything (for the pytest plugin's start-up, which must stay cheap when fire is
not used). The advice names the command that reinstalls djfire from where it came
from: djfire is not on the package index, so ``pip install djfire`` cannot fix it.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

#: The line of fire/__init__.py that marks it as ours (``fire.__fire_origin__``).
ORIGIN_MARK = '__fire_origin__ = "djfire"'


class ForeignFireError(ImportError):
    """The importable ``fire`` package is not the one from the djfire distribution."""


def check_fire_package() -> None:
    """Raise `ForeignFireError` with the fix when ``import fire`` is not our fire."""
    fire = importlib.import_module("fire")
    if getattr(fire, "__fire_origin__", None) == "djfire":
        return
    raise ForeignFireError(foreign_fire_message(getattr(fire, "__file__", None)))


def foreign_fire() -> str | None:
    """None when the importable ``fire`` is ours, else the message; imports nothing.

    It finds ``fire`` as ``import fire`` would and looks for `ORIGIN_MARK` in its
    ``__init__.py``, so it costs a file read, not zmq, msgpack and asyncio.
    """
    spec = importlib.util.find_spec("fire")
    if spec is None:
        return foreign_fire_message(None, missing=True)
    origin = spec.origin if spec.has_location else None
    try:
        source = Path(origin).read_text(encoding="utf-8") if origin else ""
    except OSError:
        source = ""
    if ORIGIN_MARK in source:
        return None
    where = origin or ", ".join(spec.submodule_search_locations or []) or None
    return foreign_fire_message(where)


def foreign_fire_message(where: str | None, *, missing: bool = False) -> str:
    """What is wrong with the importable ``fire``, and the commands that fix it."""
    if missing:
        problem = "no package named 'fire' can be imported: djfire's fire package is missing"
    else:
        problem = (
            f"the 'fire' package imported from {where or 'an unknown location'} is not fire "
            "from djfire; it is probably Google's python-fire, which installs a package "
            "with the same name"
        )
    return (
        f"{problem}. Fix the environment: `pip uninstall fire`, then reinstall djfire from "
        f"where it came from (it is not on the package index): `{reinstall_command()}`; "
        "or keep python-fire and the tests in separate virtualenvs."
    )


def reinstall_command() -> str:
    """The pip command that reinstalls djfire from its recorded source (PEP 610).

    pip records in ``direct_url.json`` the checkout, archive or git URL it installed
    djfire from; without that record the command names a placeholder checkout path.
    """
    import json  # only on the way to an error: the check itself stays cheap
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    pip = "pip install --force-reinstall --no-deps"
    # A checkout's djfire.egg-info (on sys.path when run from there) records no source:
    # take the first installed copy that does.
    recorded = (d.read_text("direct_url.json") for d in metadata.distributions(name="djfire"))
    try:
        record = json.loads(next(filter(None, recorded)))
    except (StopIteration, ValueError):
        return f"{pip} /path/to/your/fire-checkout"
    url = record.get("url", "")
    vcs = record.get("vcs_info")
    if vcs:
        revision = vcs.get("requested_revision") or vcs.get("commit_id")
        return f"{pip} '{vcs.get('vcs', 'git')}+{url}{'@' + revision if revision else ''}'"
    parsed = urlparse(url)
    target = unquote(parsed.path) if parsed.scheme == "file" else url
    if record.get("dir_info", {}).get("editable"):
        return f"{pip} -e {target}"
    return f"{pip} {target}"
