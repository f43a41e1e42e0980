"""The Django app: makes ``manage.py runfireserver`` available; Django's start-up does nothing.

fire's rules for Django values (`djfire.values`) go to the server runfireserver builds,
not into process-wide registries, so a project whose ``fire`` is python-fire still runs
its other commands (`migrate`, `test`, …), and runfireserver is the one that refuses.
"""

from __future__ import annotations

from django.apps import AppConfig


class DjfireConfig(AppConfig):
    name = "djfire"
    verbose_name = "fire test server"
