"""The odd app. With ``ODD_SQLITE_HARDENED`` set, each SQLite connection is hardened as
sqlite.org's "Defense Against the Dark Arts" advises applications that run SQL they do
not trust: a low expression depth limit, and an authorizer (here: no trigger on
odd_log). Both refuse some of the capture's triggers, as a real application would.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created

#: Deep enough for every query of the project and for the capture's triggers of tables
#: up to 63 columns, not for odd_wide's (70 columns: one json_set around json_object).
EXPRESSION_DEPTH = 6
GUARDED_TABLE = "odd_log"


def _authorizer(action: int, first: Any, second: Any, database: Any, source: Any) -> int:
    if action == sqlite3.SQLITE_CREATE_TEMP_TRIGGER and second == GUARDED_TABLE:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _harden(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, EXPRESSION_DEPTH)
        connection.connection.set_authorizer(_authorizer)


class OddConfig(AppConfig):
    name = "odd"

    def ready(self) -> None:
        if os.environ.get("ODD_SQLITE_HARDENED"):
            connection_created.connect(_harden, weak=False)
