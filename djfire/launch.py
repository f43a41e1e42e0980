"""How fire's spawner starts a Django service's server: ``manage.py runfireserver``.

Provided to fire through the ``fire.launchers`` entry point (``django``), so fire's
spawner and its "no server there" messages name runfireserver without fire knowing
Django. Importing this module imports neither Django nor the rest of djfire.
"""

from __future__ import annotations

from fire.runners.spawn import Launcher

__all__ = ["RUNFIRESERVER"]

RUNFIRESERVER = Launcher(
    name="Django",
    command=("{program}", "runfireserver", "{address}"),
    http_option="--http",
    suffix_option="--db-suffix",
    allow_remote_option="--allow-remote",
    no_data_changes_option="--no-data-changes",
    settings_variable="DJANGO_SETTINGS_MODULE",
    start_command="python manage.py runfireserver {address}",
    hints={
        "Unknown command: 'runfireserver'": (
            'runfireserver is unknown there: add "djfire" to INSTALLED_APPS in {settings} '
            "(and install djfire in the service's environment)"
        ),
    },
)
