"""The provider's half of contract verification: recreate each interaction's state.

A recorded interaction (docs/contracts.md) carries the state the provider was in when
the request arrived, as a provider state named ``fire rows``: the rows the recording
test had inserted, updated and deleted, per database alias. The verification
(`fire.contracts.verify`) opens a test scope for each interaction and asks this
extension to put those rows back, with the same primary keys (so
``/api/v2/users/1/`` still names the user) and every sequence moved past them; to log
in the user of each ``fire:session:<pk>`` cookie of the request (a session whose key
*is* that marker, so the recorded request finds it unchanged); and to run the handlers
of the interaction's named states. The scope's rollback removes it all.

Named states are the provider's own code, registered with `state`::

    # accounts/contract_states.py (found in every installed app, as admin.py is)
    from djfire.contracts import state

    @state("user ada exists")
    def ada(params):
        UserFactory(username="ada")

Modules named in the ``FIRE_CONTRACT_STATES`` setting are imported too. Rows that no
longer fit the schema (a table or column gone) are found before any request is
replayed (`contract_state_problems`), so that interaction fails naming them while the
others still run.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fire.extensions import Session

    from .isolation import DjangoScopes

__all__ = ["ContractStateError", "ContractStates", "state"]

#: The provider state whose params are the rows to recreate.
ROWS_STATE = "fire rows"
SESSION_MARKER = "fire:session:"
ANONYMOUS = "fire:session:anonymous"

StateHandler = Callable[[dict[str, Any]], Any]
_handlers: dict[str, StateHandler] = {}


class ContractStateError(ValueError):
    """An interaction's state cannot be recreated on this provider."""


def state(name: str) -> Callable[[StateHandler], StateHandler]:
    """Register the function that sets up the named provider state ``name``.

    It is called with the state's params (a dict, often empty) inside the interaction's
    test scope, after the ``fire rows`` are back; whatever it writes is rolled back.
    """

    def register(function: StateHandler) -> StateHandler:
        _handlers[name] = function
        return function

    return register


def _discover() -> None:
    """Import every installed app's ``contract_states`` module and FIRE_CONTRACT_STATES."""
    import importlib

    from django.conf import settings
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("contract_states")
    for module in getattr(settings, "FIRE_CONTRACT_STATES", ()):
        importlib.import_module(module)


class ContractStates:
    """Server extension: the operations the verification calls inside each scope."""

    name = "contract_states"

    def __init__(self, scopes: DjangoScopes) -> None:
        self.scopes = scopes
        self._discovered = False

    def operations(self) -> dict[str, Callable[..., Any]]:
        return {
            "contract_state_problems": self.state_problems,
            "set_up_contract_state": self.set_up,
        }

    def info(self) -> dict[str, Any]:
        return {"named_states": sorted(_handlers)}

    def state_problems(
        self, session: Session, states_list: list[list[dict[str, Any]]]
    ) -> list[str]:
        """For each interaction's states, why its rows cannot be recreated here ("" if
        they can): a database alias, table or column this provider does not have."""
        schema = _Schema()
        return ["; ".join(_problems(states, schema)) for states in states_list]

    def set_up(
        self, session: Session, states: list[dict[str, Any]], sessions: list[str]
    ) -> list[str]:
        """Recreate `states` and log in the `sessions` markers' users; returns notes
        (a named state without a handler). Raises `ContractStateError` on rows that do
        not fit. The data changes captured from here on are the replay's alone."""
        from django.db import DatabaseError

        if not self._discovered:
            _discover()
            self._discovered = True
        notes: list[str] = []
        for provider_state in states:
            name, params = provider_state["name"], provider_state.get("params") or {}
            if name == ROWS_STATE:
                try:
                    _recreate_rows(params.get("databases") or {})
                except DatabaseError as exc:
                    raise ContractStateError(f"state {ROWS_STATE!r}: {exc}") from exc
        for marker in sessions:
            _log_in(marker)
        for provider_state in states:
            name, params = provider_state["name"], provider_state.get("params") or {}
            if name == ROWS_STATE:
                continue
            handler = _handlers.get(name)
            if handler is None:
                notes.append(
                    f"no handler for the state {name!r} (register one with "
                    "@djfire.contracts.state in an app's contract_states.py): its rows only"
                )
                continue
            handler(dict(params))
        capture = self.scopes.capture
        if capture is not None:
            capture.forget()
        return notes


class _Schema:
    """The provider's tables and columns per alias, read once per request."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, set[str] | None]] = {}

    def columns(self, alias: str, table: str) -> set[str] | None:
        """The columns of `table` (None: no such table); raises KeyError: no such alias."""
        from django.db import connections

        connection = connections[alias]
        tables = self._tables.get(alias)
        if tables is None:
            with connection.cursor() as cursor:
                names = connection.introspection.table_names(cursor)
            tables = self._tables[alias] = dict.fromkeys(names)
        if table not in tables:
            return None
        if tables[table] is None:
            with connection.cursor() as cursor:
                description = connection.introspection.get_table_description(cursor, table)
            tables[table] = {column.name for column in description}
        return tables[table]


def _problems(states: list[dict[str, Any]], schema: _Schema) -> list[str]:
    from django.db import connections

    problems = []
    for provider_state in states:
        if provider_state.get("name") != ROWS_STATE:
            continue
        databases = (provider_state.get("params") or {}).get("databases") or {}
        for alias, database in databases.items():
            if alias not in connections:
                problems.append(f"database alias {alias!r} is not configured here")
                continue
            for table, changes in (database.get("tables") or {}).items():
                columns = schema.columns(alias, table)
                if columns is None:
                    problems.append(f"table {table} does not exist (alias {alias!r})")
                    continue
                used: dict[str, None] = {}
                for row in [*changes.get("inserted", []), *changes.get("deleted", [])]:
                    used.update(dict.fromkeys(row))
                for update in changes.get("updated", []):
                    used.update(dict.fromkeys(update.get("key") or {}))
                    used.update(dict.fromkeys(update.get("changed") or {}))
                for column in used:
                    if column not in columns:
                        problems.append(
                            f"table {table} has no column {column!r} (alias {alias!r}), "
                            "which the state's rows fill"
                        )
    return problems


def _recreate_rows(databases: dict[str, Any]) -> None:
    """Delete, insert and update the rows of each alias, as the recording test had."""
    from django.apps import apps
    from django.core.management.color import no_style
    from django.db import connections

    models_by_table = {m._meta.db_table: m for m in apps.get_models(include_auto_created=True)}
    for alias, database in databases.items():
        connection = connections[alias]
        tables = database.get("tables") or {}
        if not tables:
            continue
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            _defer_constraints(connection, cursor)
            for table, changes in tables.items():
                model = models_by_table.get(table)
                keys = connection.introspection.get_primary_key_columns(cursor, table) or []
                for row in changes.get("deleted", []):
                    where = {c: row[c] for c in keys if c in row} or row
                    _execute(cursor, f"DELETE FROM {quote(table)} WHERE ", where, model, connection)
                for row in changes.get("inserted", []):
                    columns = list(row)
                    values = [_db_value(model, c, row[c], connection) for c in columns]
                    cursor.execute(
                        f"INSERT INTO {quote(table)} ({', '.join(map(quote, columns))}) "
                        f"VALUES ({', '.join(['%s'] * len(columns))})",
                        values,
                    )
                for update in changes.get("updated", []):
                    changed = {c: new for c, (_old, new) in update["changed"].items()}
                    assignments = ", ".join(f"{quote(c)} = %s" for c in changed)
                    values = [_db_value(model, c, v, connection) for c, v in changed.items()]
                    _execute(
                        cursor,
                        f"UPDATE {quote(table)} SET {assignments} WHERE ",
                        update["key"],
                        model,
                        connection,
                        values,
                    )
            touched = [
                models_by_table[t]
                for t, c in tables.items()
                if c.get("inserted") and t in models_by_table
            ]
            for statement in connection.ops.sequence_reset_sql(no_style(), touched):
                cursor.execute(statement)
        connection.check_constraints(table_names=list(tables))


def _defer_constraints(connection: Any, cursor: Any) -> None:
    """Rows of one state may refer to each other in any order: check them at the end."""
    if connection.vendor == "postgresql":
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    elif connection.vendor == "sqlite":
        cursor.execute("PRAGMA defer_foreign_keys = ON")


def _execute(
    cursor: Any,
    statement: str,
    where: dict[str, Any],
    model: Any,
    connection: Any,
    values: list[Any] | None = None,
) -> None:
    quote = connection.ops.quote_name
    conditions, parameters = [], list(values or [])
    for column, value in where.items():
        if value is None:
            conditions.append(f"{quote(column)} IS NULL")
        else:
            conditions.append(f"{quote(column)} = %s")
            parameters.append(_db_value(model, column, value, connection))
    cursor.execute(statement + " AND ".join(conditions), parameters)


def _db_value(model: Any, column: str, value: Any, connection: Any) -> Any:
    """A JSON-encoded state value as the column stores it (through the model's field)."""
    if value is None:
        return None
    field = None
    if model is not None:
        field = next((f for f in model._meta.concrete_fields if f.column == column), None)
    if field is None:
        return value
    from django.db import models

    if isinstance(field, models.BinaryField) and isinstance(value, str):
        return base64.b64decode(value)
    if isinstance(field, models.JSONField):
        return field.get_db_prep_save(value, connection)
    return field.get_db_prep_save(field.to_python(value), connection)


def _log_in(marker: str) -> None:
    """A session whose key is `marker`, logged in as its user (anonymous: none at all)."""
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.utils.module_loading import import_string

    if marker == ANONYMOUS or not marker.startswith(SESSION_MARKER):
        return
    pk_text = marker.removeprefix(SESSION_MARKER)
    if settings.SESSION_ENGINE.endswith("signed_cookies"):
        raise ContractStateError(
            f"cannot log in {marker!r}: SESSION_ENGINE {settings.SESSION_ENGINE!r} keeps "
            "sessions in the cookie itself, so no stored session can have that key; verify "
            "with a stored engine (db, cache, cached_db, file)"
        )
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get(pk=user_model._meta.pk.to_python(pk_text))
    except (user_model.DoesNotExist, ValueError, TypeError):
        raise ContractStateError(
            f"the request's session cookie {marker!r} names user {pk_text}, who is not "
            "among the provider's rows after the state was recreated"
        ) from None
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key=marker)
    # Set, not loaded: loading a key the store does not have forgets the key.
    store._session_cache = {
        SESSION_KEY: user._meta.pk.value_to_string(user),
        BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }
    store.save(must_create=True)
