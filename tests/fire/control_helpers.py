"""Service code for the patch and clock tests (importable on test servers: servers.py)."""

from __future__ import annotations

import datetime as dt
import os
import time


class Refused(Exception):
    """An exception class of the service's own, named by tests as a side effect."""


SETTINGS = {"mode": "real"}


def send(to: str, subject: str = "hi") -> str:
    """What tests patch: the real one would reach the network."""
    return f"sent {subject!r} to {to}"


def notify(to: str) -> str:
    """Service code that calls `send` through the module, as a view would."""
    return send(to, subject="your order")


def refuse(*args: object, **kwargs: object) -> str:
    raise Refused("refused by a side effect named by its dotted path")


class Mailer:
    def deliver(self, to: str) -> str:
        return f"delivered to {to}"


MAILER = Mailer()


def deliver(to: str) -> str:
    return MAILER.deliver(to)


def mode() -> str:
    return SETTINGS["mode"]


def environment(name: str) -> str | None:
    return os.environ.get(name)


def now() -> list[object]:
    """What the clocks say here: time.time(), datetime.now(UTC)."""
    return [time.time(), dt.datetime.now(dt.UTC)]
