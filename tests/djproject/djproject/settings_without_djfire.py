"""The test service as a newcomer might first set it up: djfire not in INSTALLED_APPS."""

from djproject.settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "djfire"]  # noqa: F405
