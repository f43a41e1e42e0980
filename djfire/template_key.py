"""What a migrated test database's schema depends on, as one hash: a template's key.

A template (`djfire.templates`) may be cloned only while everything that shaped it is
unchanged. A kept test database (``--keepdb``, pytest-django's ``--reuse-db``) goes
stale exactly where this key looks: a migration edited in place, another branch's
migrations, a model of an app without migrations, another Django, another PostgreSQL.
So the key covers, per alias:

- the content of every migration file of every installed app (not their dates: a
  checkout rewrites those), and which modules ``MIGRATION_MODULES`` names;
- the models' state as the database sees it: tables, columns and their database types,
  nullability, uniqueness, indexes and constraints by name (an app without migrations
  is made from these by ``migrate --run-syncdb``);
- the database settings that change what ``migrate`` makes: the engine, the alias (its
  routers choose what is migrated there), ``DATABASE_ROUTERS``, the TEST charset,
  collation, template and ``MIGRATE``; for PostgreSQL the server's version, the
  extensions it offers (a migration may create one) and the user (who owns what
  ``migrate`` makes, and what a migration may do: a superuser's migration can differ);
- Django's version and djfire's template format.

Reading it costs file reads and one query, never the migration executor's model
rendering, which is what a start-up is spared.
"""

from __future__ import annotations

import hashlib
import json
from importlib import import_module
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "template_key"]

#: Bumped when what a template holds, or how it is made, changes.
FORMAT = 1


def template_key(alias: str) -> str:
    """The hex key of the schema `alias`'s test database gets from ``migrate``."""
    import django
    from django.conf import settings
    from django.db import connections

    connection = connections[alias]
    test = connection.settings_dict.get("TEST") or {}
    parts: dict[str, Any] = {
        "format": FORMAT,
        "django": django.get_version(),
        "alias": alias,
        "engine": connection.settings_dict["ENGINE"],
        "routers": [str(router) for router in settings.DATABASE_ROUTERS],
        "test": {k: str(test.get(k)) for k in ("CHARSET", "COLLATION", "TEMPLATE", "MIGRATE")},
        "server": _server(connection),
        "user": connection.settings_dict.get("USER") if connection.vendor == "postgresql" else None,
        "migrations": _migration_files(),
        "models": _models(connection),
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _server(connection: Any) -> Any:
    """PostgreSQL's version and available extensions; nothing for SQLite (its library's
    version does not change what migrate makes)."""
    if connection.vendor != "postgresql":
        return connection.vendor
    with connection._nodb_cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        version = cursor.fetchone()[0]
        cursor.execute("SELECT name, default_version FROM pg_available_extensions ORDER BY name")
        extensions = cursor.fetchall()
    return {"version": version, "extensions": extensions}


def _migration_files() -> dict[str, dict[str, str]]:
    """App label -> the hash of each file of its migrations package (relative path)."""
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    found: dict[str, dict[str, str]] = {}
    for app_config in apps.get_app_configs():
        module_name, _ = MigrationLoader.migrations_module(app_config.label)
        if module_name is None:
            found[app_config.label] = {}
            continue
        try:
            module = import_module(module_name)
        except ImportError:
            found[app_config.label] = {"": f"no module {module_name}"}
            continue
        paths = getattr(module, "__path__", None)
        files: dict[str, str] = {"": module_name}
        for directory in map(Path, paths or ()):
            for path in sorted(directory.rglob("*")):
                if "__pycache__" in path.parts or not path.is_file():
                    continue
                if path.suffix not in (".py", ".sql", ".json"):
                    continue
                files[str(path.relative_to(directory))] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
        found[app_config.label] = files
    return found


def _models(connection: Any) -> list[Any]:
    """Every model's table as the database sees it (cheap: no state rendering)."""
    from django.apps import apps

    described = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        fields = [
            (
                field.name,
                field.column,
                field.db_type(connection),
                field.null,
                field.unique,
                field.primary_key,
                getattr(field.remote_field, "model", None) and field.related_model._meta.label,
            )
            for field in meta.local_fields
        ]
        described.append(
            (
                meta.label,
                meta.db_table,
                meta.managed,
                meta.proxy,
                fields,
                sorted(str(index.name) for index in meta.indexes),
                sorted(str(constraint.name) for constraint in meta.constraints),
                sorted(map(str, meta.unique_together)),
            )
        )
    return sorted(described, key=lambda row: str(row[0]))
