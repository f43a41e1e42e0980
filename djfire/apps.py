"""The Django app: makes ``manage.py runfireserver`` available; Django's start-up does
nothing, except in a process started as runfireserver, whose start-up runs without the
garbage collector's passes (`djfire.startup_gc`).

fire's rules for Django values (`djfire.values`) go to the server runfireserver builds,
not into process-wide registries, so a project whose ``fire`` is python-fire still runs
its other commands (`migrate`, `test`, …), and runfireserver is the one that refuses.
"""

from __future__ import annotations

from types import ModuleType

from django.apps import AppConfig

from .startup_gc import pause_for_server_start


class DjfireConfig(AppConfig):
    name = "djfire"
    verbose_name = "fire test server"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        # Made with every app's config, before Django imports any model.
        pause_for_server_start()
        super().__init__(app_name, app_module)
