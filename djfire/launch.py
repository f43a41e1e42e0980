"""How fire's spawner starts a Django service's server: ``manage.py runfireserver``.

Provided to fire through the ``fire.launchers`` entry point (``django``), so fire's
spawner and its "no server there" messages name runfireserver without fire knowing
Django. Importing this module imports neither Django nor the rest of djfire.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from fire.runners.spawn import Launcher

__all__ = ["RUNFIRESERVER"]


class _Hints(Mapping[str, str]):
    """`Launcher.hints`, the install command among them worked out only when a start
    fails (it reads this djfire's install record)."""

    def __getitem__(self, cause: str) -> str:
        if cause == "Unknown command: 'runfireserver'":
            return (
                'runfireserver is unknown there: add "djfire" to INSTALLED_APPS in {settings} '
                "(and install djfire in the service's environment)"
            )
        if cause == "No module named 'djfire'":
            return (
                "djfire is not installed in the service's environment: install it with the "
                "interpreter of the command above, from where this djfire came (it is not on "
                f"the package index): `python -m pip install {_source()}`"
            )
        raise KeyError(cause)

    def __iter__(self) -> Iterator[str]:
        return iter(("Unknown command: 'runfireserver'", "No module named 'djfire'"))

    def __len__(self) -> int:
        return 2


def _source() -> str:
    """Where this djfire was installed from, for pip (braces doubled for `str.format`)."""
    from fire_origin import reinstall_command

    command = reinstall_command()  # pip install --force-reinstall --no-deps [-e] SOURCE
    source = command.removeprefix("pip install --force-reinstall --no-deps ")
    return source.replace("{", "{{").replace("}", "}}")


RUNFIRESERVER = Launcher(
    name="Django",
    command=("{program}", "runfireserver", "{address}"),
    http_option="--http",
    suffix_option="--db-suffix",
    allow_remote_option="--allow-remote",
    no_data_changes_option="--no-data-changes",
    rebuild_option="--rebuild-db",
    cleanup_option="--drop-left-databases",
    settings_variable="DJANGO_SETTINGS_MODULE",
    start_command="python manage.py runfireserver {address}",
    hints=_Hints(),
    program="manage.py",
)
