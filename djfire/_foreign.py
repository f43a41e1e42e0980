"""Detect a foreign package named ``fire`` (Google's python-fire) shadowing ours."""

from __future__ import annotations

import importlib


class ForeignFireError(ImportError):
    """The importable ``fire`` package is not the one from the djfire distribution."""


def check_fire_package() -> None:
    """Raise `ForeignFireError` with the fix when ``import fire`` is not our fire."""
    fire = importlib.import_module("fire")
    if getattr(fire, "__fire_origin__", None) == "djfire":
        return
    where = getattr(fire, "__file__", None) or "an unknown location"
    raise ForeignFireError(
        f"the 'fire' package imported from {where} is not fire from djfire; it is probably "
        "Google's python-fire, which installs a package with the same name. Fix the "
        "environment: `pip uninstall fire` then `pip install --force-reinstall djfire`, or "
        "give the tests their own virtualenv."
    )
