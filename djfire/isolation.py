"""Test scopes on a Django service: a transaction per scope on every alias, rolled back.

Scopes nest (a class scope around test scopes); the outermost may instead be
*transactional*: real commits, every table flushed at its end (TransactionTestCase).
One client holds the scopes of a server at a time; another one that begins a scope
gets `ServerBusy` naming the holder (the client retries for a while). A client that
disconnects or dies has its scopes rolled back at once.

Each fire call and each live HTTP request inside a transaction scope runs in its own
savepoint: when it raises (or the view answers 5xx) only its own work is undone and
the test's transaction stays usable, even on PostgreSQL after a database error.
``on_commit`` callbacks registered by a call or request run when it completes, as if
the test's work had committed (``on_commit="run"``), or are kept for inspection
(``on_commit="capture"``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core import mail
from django.core.management import call_command
from django.db import transaction

from fire.errors import FireError, ServerBusy
from fire.session import Session

from .databases import SharedConnections

__all__ = ["DjangoScopes"]

log = logging.getLogger("djfire.isolation")
_ON_COMMIT_MODES = ("run", "capture")


@dataclass
class _Scope:
    kind: str
    transactional: bool
    on_commit: str
    savepoints: bool
    atomics: list[Any] = field(default_factory=list)
    overrides: list[Any] = field(default_factory=list)
    captured: list[tuple[str, Callable[[], Any], bool]] = field(default_factory=list)


class DjangoScopes:
    """The ``begin_scope``/``end_scope`` operations, backed by database transactions."""

    name = "scopes"

    def __init__(self, shared: SharedConnections) -> None:
        self.shared = shared
        self.holder: Session | None = None
        self.since = 0.0

    _own_operations = frozenset(
        ("begin_scope", "end_scope", "captured_on_commit", "run_captured_on_commit")
    )

    def operations(self) -> dict[str, Callable[..., Any]]:
        return {
            "begin_scope": self.begin_scope,
            "end_scope": self.end_scope,
            "captured_on_commit": self.captured_on_commit,
            "run_captured_on_commit": self.run_captured_on_commit,
        }

    def info(self) -> dict[str, Any]:
        holder = self.holder.describe() if self.holder is not None else None
        return {
            "isolation": "transaction",
            "databases": self.shared.vendors(),
            "holder": holder,
            "depth": len(self._stack(self.holder)) if self.holder else 0,
        }

    def _stack(self, session: Session | None) -> list[_Scope]:
        return session.state.setdefault("djfire_scopes", []) if session is not None else []

    # scopes
    def begin_scope(
        self,
        session: Session,
        kind: str = "test",
        *,
        transactional: bool = False,
        on_commit: str = "run",
        savepoints: bool = True,
    ) -> int:
        """Open a scope; returns the new depth."""
        if self.holder is not None and self.holder is not session:
            raise ServerBusy(
                f"the server is held by {self.holder.describe()} since "
                f"{time.strftime('%H:%M:%S', time.localtime(self.since))}; only one client "
                "runs tests on a server at a time"
            )
        if on_commit not in _ON_COMMIT_MODES:
            raise FireError(f"on_commit must be one of {_ON_COMMIT_MODES}, not {on_commit!r}")
        stack = self._stack(session)
        if transactional and stack:
            raise FireError(
                f"a transactional scope must be the outermost scope, but a {stack[-1].kind!r} "
                "scope is open; run transactional tests where no class or module scope is "
                "(their own test class or module)"
            )
        if stack and stack[0].transactional:
            raise FireError("scopes cannot nest inside a transactional scope")
        scope = _Scope(kind, transactional, on_commit, savepoints)
        with self.shared.lock:
            if not transactional:
                for alias in self.shared.aliases:
                    atomic = transaction.atomic(using=alias)
                    atomic.__enter__()
                    scope.atomics.append(atomic)
        stack.append(scope)
        if self.holder is None:
            self.holder, self.since = session, time.time()
        if kind == "test":
            mail.outbox.clear()
        return len(stack)

    def end_scope(self, session: Session) -> int:
        """Close the innermost scope: roll back (or flush) and undo its settings overrides."""
        stack = self._stack(session)
        if not stack:
            raise FireError("end_scope without begin_scope")
        self._close(stack.pop())
        if not stack and self.holder is session:
            self.holder = None
        return len(stack)

    def _close(self, scope: _Scope) -> None:
        with self.shared.lock:
            for override in reversed(scope.overrides):
                override.disable()
            for alias, atomic in reversed(
                list(zip(self.shared.aliases, scope.atomics, strict=False))
            ):
                transaction.set_rollback(True, using=alias)
                atomic.__exit__(None, None, None)
            if scope.transactional:
                for alias in self.shared.aliases:
                    call_command("flush", verbosity=0, interactive=False, database=alias)
            if scope.kind == "test":
                mail.outbox.clear()

    def session_closed(self, session: Session) -> None:
        """A client left (or died): roll back whatever it still had open."""
        stack = self._stack(session)
        if stack:
            log.warning("rolling back %d open scope(s) of %s", len(stack), session.describe())
        while stack:
            self._close(stack.pop())
        if self.holder is session:
            self.holder = None

    def current(self, session: Session) -> _Scope:
        stack = self._stack(session)
        if not stack:
            raise FireError("no scope is open: begin a test scope first")
        return stack[-1]

    def close(self) -> None:
        if self.holder is not None:
            self.session_closed(self.holder)

    # calls and requests
    @contextlib.contextmanager
    def request_context(self, session: Session, operation: str) -> Iterator[None]:
        """Around each fire call: the shared lock, and a savepoint inside a scope."""
        with self.shared.lock:
            if operation in self._own_operations:
                yield  # scope operations manage the transactions themselves
            else:
                with self._isolated(self.holder, _never):
                    yield

    def around_http_request(
        self, respond: Callable[[], list[bytes]], failed: Callable[[], bool]
    ) -> list[bytes]:
        """Around each live HTTP request (same lock, same savepoint rule as a fire call)."""
        with self.shared.lock, self._isolated(self.holder, failed):
            return respond()

    @contextlib.contextmanager
    def _isolated(self, holder: Session | None, failed: Callable[[], bool]) -> Iterator[None]:
        stack = self._stack(holder)
        scope = stack[-1] if stack else None
        if scope is None or scope.transactional or not self.shared.in_transaction():
            yield
            return
        connections = self.shared.by_alias
        saved = {alias: conn.run_on_commit for alias, conn in connections.items()}
        for conn in connections.values():
            conn.run_on_commit = []
        new: list[tuple[str, Callable[[], Any], bool]] = []
        try:
            if scope.savepoints:
                with contextlib.ExitStack() as atomics:
                    for alias in connections:
                        atomics.enter_context(transaction.atomic(using=alias))
                    yield
                    if failed():
                        for alias in connections:
                            transaction.set_rollback(True, using=alias)
            else:
                yield
        finally:
            for alias, conn in connections.items():
                new.extend((alias, func, robust) for _, func, robust in conn.run_on_commit)
                conn.run_on_commit = saved[alias]
        if scope.on_commit == "capture":
            scope.captured.extend(new)
        else:
            _run_callbacks(new)

    # captured on_commit callbacks
    def captured_on_commit(self, session: Session) -> list[str]:
        """Descriptions of the callbacks captured in the current scope."""
        return [f"{alias}: {func!r}" for alias, func, _ in self.current(session).captured]

    def run_captured_on_commit(self, session: Session) -> int:
        """Run (and forget) the captured callbacks; returns how many ran."""
        scope = self.current(session)
        callbacks, scope.captured = scope.captured, []
        with self.shared.lock:
            _run_callbacks(callbacks)
        return len(callbacks)


def _never() -> bool:
    return False


def _run_callbacks(callbacks: list[tuple[str, Callable[[], Any], bool]]) -> None:
    for alias, func, robust in callbacks:
        if robust:
            try:
                func()
            except Exception:
                log.exception("robust on_commit callback %r (alias %s) failed", func, alias)
        else:
            func()
