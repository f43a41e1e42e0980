"""Test scopes on a Django service: a transaction per scope on every alias, rolled back.

Scopes nest (a class scope around test scopes); the outermost may instead be
*transactional*: real commits, every table flushed at its end (TransactionTestCase).
One client holds the scopes of a server at a time: while it does, another client may
only ``ping``, ask ``info`` and the live URL, or wait in ``begin_scope``; everything else
gets `ServerBusy` naming the holder. Clients waiting in ``begin_scope`` are served first
come, first served, each until its own ``wait`` runs out (then `ServerBusy` naming the
holder): the reply to a waiting begin comes when its turn does. A client that
disconnects or dies has its scopes rolled back at once.

A scope asked for *ahead* (``begin_scope(ahead=True)``, sent by the runners as a test
ends) is opened at once if the server is free for its client right then (nobody else
holds it or waits in line, and the connections are free); otherwise it opens nothing,
and the test's own begin begins as any begin does, in line. An ahead begin never waits:
a client that runs no test yet (its next test may be skipped at run time, or fail in a
fixture first) never holds the server from the line. A scope opened ahead is not the
test's until the client's own ``begin_scope`` with the same arguments takes it: until
then fire calls and live requests run outside every test, as they do between tests (a
browser's last fetch after its test ended is rolled back, never run in the next test),
and any fire call of that client, or any other begin or end, closes it first. Nor does
it keep another client out: a client that begins (or calls) while the holder's only
scope is one asked ahead and not taken closes that scope and goes first; the holder's
take then finds nothing and begins in line. A transactional scope is never begun ahead.

Ending a scope never leaves it open: when the connections stay held (a slow view, a
request whose body stalls) longer than the end may wait, the end fails naming the
holder, and the scope is rolled back as soon as the holder lets go, before anything
else runs on the connections (`ConnectionLock.defer`). Every wait for the connections
of a fire call is kept under its client's own reply timeout (said in its hello).

Nothing is ever committed outside a transactional scope. Inside a test scope, each fire
call and each live HTTP request runs in its own savepoint on each alias it queries,
opened just before its first query there (a call that sends no SQL costs no SQL): when
it raises (or the view answers 5xx) only its own work is undone and the test's
transaction stays usable, even on PostgreSQL after a database error. Outside any scope,
a fire call or request runs in a transaction that is rolled back at its end; a fire
call that wrote is refused, and a request is named in the server's output.
``on_commit`` callbacks registered by a call or request run when it completes, each in
a savepoint of its own, as if the test's work had committed (``on_commit="run"``), or
are kept for inspection (``on_commit="capture"``).

A ``"test"`` scope empties the mail outbox as it opens and closes, and every scope puts
the local-memory caches back at its end as they were at its begin (`djfire.caches`).

The scope's atomics are marked the way Django's `TestCase` marks its own, and the
per-call savepoints (`djfire.savepoints`) are no atomic blocks, so
``transaction.atomic(durable=True)`` works inside a test.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.db.transaction import Atomic

from fire import FireError, ServerBusy
from fire.extensions import Later, Session

from .caches import LocalCaches
from .changes import ChangeCapture
from .databases import SharedConnections
from .releases import release_references
from .savepoints import CallSavepoints

__all__ = ["DjangoScopes"]

log = logging.getLogger("djfire.isolation")
_ON_COMMIT_MODES = ("run", "capture")
#: What a client that does not hold the server may still do (begin_scope and end_scope
#: see to the holder and the lock themselves).
#: (``debug_attach`` says where this client's debugger is: no database, no user code.)
_OPEN_TO_ALL = frozenset(
    (
        "ping",
        "info",
        "live_url",
        "begin_scope",
        "end_scope",
        "debug_attach",
        "labelled_contract_interactions",  # a client's own recorded contracts, at its run's end
    )
)
#: A fire call's wait for the connections ends up to this long before its client's own
#: reply timeout would (a quarter of it, for shorter timeouts), so the error, naming
#: what holds them, reaches the client in time.
_REPLY_MARGIN = 1.0
#: How long serving a waiting client, or opening a scope asked ahead, may wait for the
#: connections: not at all (the server's loop would stall; `tick` tries again a moment
#: later, and a scope asked ahead is left to the test's own begin).
_NO_WAIT = 0.0
#: What `begin_scope` of this server can do beyond opening a scope (clients check).
_BEGIN_FEATURES = ("wait", "ahead", "deadline")
#: SQL that changes data or schema (anything else only reads, or manages transactions).
_WRITING_STATEMENTS = frozenset(
    ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE")
)

Callback = tuple[str, Callable[[], Any], bool]


@dataclass
class _Scope:
    kind: str
    transactional: bool
    on_commit: str
    savepoints: bool
    capturing: bool = False
    atomics: list[Any] = field(default_factory=list)
    overrides: list[Any] = field(default_factory=list)
    captured: list[Callback] = field(default_factory=list)
    #: Each alias's execute wrappers when the scope began, put back at its end.
    wrappers: dict[str, list[Any]] = field(default_factory=dict)
    #: Begun ahead, not taken yet by the client's begin_scope (see the module docstring).
    ahead: bool = False
    #: (kind, transactional, on_commit, savepoints, data_changes), what a take must match.
    arguments: tuple[Any, ...] = ()
    #: The local-memory caches' entries when the scope began, put back at its end.
    caches: list[Any] | None = None
    #: Each alias's DB-API connection when the scope's atomics opened: another one at its
    #: end means the scope's transaction was lost with its connection (nothing to undo).
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Waiter:
    """A client's begin_scope, waiting for its turn on the server (never one asked ahead)."""

    session: Session
    arguments: tuple[Any, ...]
    wait: float
    deadline: float
    later: Later = field(default_factory=Later)


def _test_atomic(alias: str) -> Atomic:
    """An atomic block marked as Django's TestCase marks its own.

    A durable block (``atomic(durable=True)``) refuses to nest in any other block, but
    accepts one marked ``_from_testcase``, and becomes a savepoint there.
    """
    atomic = transaction.atomic(using=alias)
    atomic._from_testcase = True
    return atomic


def _writes(sql: Any) -> bool:
    words = str(sql).lstrip(" (\n\t").split(None, 1)
    return bool(words) and words[0].upper() in _WRITING_STATEMENTS


class DjangoScopes:
    """The ``begin_scope``/``end_scope`` operations, backed by database transactions."""

    name = "scopes"

    def __init__(
        self,
        shared: SharedConnections,
        capture: ChangeCapture | None = None,
        caches: LocalCaches | None = None,
        annotate: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.shared = shared
        self.capture = capture
        self.caches = caches
        #: Adds notes to what a fire call raises (`djfire.stale`), or None.
        self.annotate = annotate
        self.holder: Session | None = None
        self.since = 0.0
        #: Clients waiting in begin_scope, first come first.
        self.waiting: list[_Waiter] = []

    _own_operations = frozenset(
        ("begin_scope", "end_scope", "captured_on_commit", "run_captured_on_commit")
    )

    def operations(self) -> dict[str, Callable[..., Any]]:
        return {
            "begin_scope": self.begin_scope,
            "end_scope": self.end_scope,
            "captured_on_commit": self.captured_on_commit,
            "run_captured_on_commit": self.run_captured_on_commit,
            "data_changes": self.data_changes,
        }

    def info(self) -> dict[str, Any]:
        holder = self.holder.describe() if self.holder is not None else None
        return {
            "isolation": "transaction",
            "databases": self.shared.vendors(),
            "holder": holder,
            "depth": self._depth(self._stack(self.holder)),
            "ahead": self._ahead(self.holder),
            "waiting": len(self.waiting),
            "begin": list(_BEGIN_FEATURES),
            # what holds the database connections now, and for how long
            "connections": self.shared.lock.holder() or None,
            "data_changes": self.capture is not None and self.capture.off is None,
            # off (None, or why), tables watched and skipped (with why) per alias
            "capture": self.capture.describe() if self.capture is not None else None,
        }

    def _stack(self, session: Session | None) -> list[_Scope]:
        if session is None:
            return []
        return session.extension_state.setdefault("djfire_scopes", [])

    @staticmethod
    def _depth(stack: list[_Scope]) -> int:
        """How many scopes are open and taken (one begun ahead is not, yet)."""
        return len(stack) - 1 if stack and stack[-1].ahead else len(stack)

    def _ahead(self, session: Session | None) -> bool:
        stack = self._stack(session)
        return bool(stack) and stack[-1].ahead

    def _only_ahead(self, session: Session | None) -> bool:
        """Whether `session`'s only open scope is one asked ahead and not taken.

        Such a client runs no test on the server (it may never: its next test may be
        skipped, or fail in a fixture first), so it keeps no other client out.
        """
        stack = self._stack(session)
        return len(stack) == 1 and stack[0].ahead

    def _preempt(self, session: Session) -> None:
        """`session` wants the server: close the holder's untaken scope asked ahead, if that
        is all it holds (its begin that would have taken it then begins anew, in line)."""
        holder = self.holder
        if holder is not None and holder is not session and self._only_ahead(holder):
            log.info(
                "%s takes the server: the scope %s asked ahead and had not taken is closed",
                session.describe(),
                holder.describe(),
            )
            self._drop_ahead(holder, serve=False, waiter=session)

    def _lock_wait(self, session: Session) -> float:
        """How long a request of `session` waits for the connections.

        The lock's bound, kept under the client's own reply timeout (said in its hello):
        a client that waits 2 s for a reply gets the error naming what holds the
        connections, not "no reply within 2 s".
        """
        bound = session.extension_state.get("djfire_lock_wait")
        if bound is None:
            bound = self.shared.lock.timeout
            timeout = session.client.get("timeout")
            if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
                own = timeout - min(_REPLY_MARGIN, timeout / 4)
                if own < bound:
                    bound = own
                    session.extension_state["djfire_lock_limit"] = (
                        f"this client's reply timeout of {timeout:g} s limits the wait (the "
                        f"server's own bound is {self.shared.lock.timeout:g} s): raise it "
                        "(fire.connect(timeout=SECONDS), the pytest ini option fire_timeout, "
                        "or FireTestCase.fire_timeout)"
                    )
            session.extension_state["djfire_lock_wait"] = bound
        return bound

    def _hold(
        self, session: Session, what: Any, timeout: float | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """The connections for a request of `session`: waited for as long as it may.

        When its client's own reply timeout is what cuts the wait, the error says so.
        """
        bound = self._lock_wait(session) if timeout is None else timeout
        limit = session.extension_state.get("djfire_lock_limit") if timeout is None else None
        return self.shared.lock.hold(what, timeout=bound, limit=limit)

    def _held_by(self) -> str:
        assert self.holder is not None
        since = time.strftime("%H:%M:%S", time.localtime(self.since))
        held = f"the server is held by {self.holder.describe()} since {since}"
        if self._only_ahead(self.holder):
            held += (
                " (with only a scope asked ahead for its next test, not taken yet: a begin "
                "that waits takes the server from it)"
            )
        return held

    # scopes
    def begin_scope(
        self,
        session: Session,
        kind: str = "test",
        *,
        transactional: bool = False,
        on_commit: str = "run",
        savepoints: bool = True,
        data_changes: bool = False,
        ahead: bool = False,
        wait: float | None = None,
        deadline: float | None = None,
    ) -> int | Later:
        """Open a scope; returns the new depth.

        With `data_changes`, a ``"test"`` scope captures the rows it changes on every
        alias (see `djfire.changes`), read with the ``data_changes`` operation. While
        another client holds the server, a begin with a `wait` (seconds) waits its turn
        (first come, first served) and is answered when it comes, or with `ServerBusy`
        once `wait` runs out; one without is refused at once. `ahead`: see the module's
        docstring. `deadline` (a ``time.time()`` of the client's clock) is when the client
        gives up waiting for the answer: a begin that comes later (the server was stalled,
        say by SIGSTOP, while it was on its way) is dropped, never opening a scope that no
        test will end; one waiting in line gives up then too.
        """
        patience = None if deadline is None else session.seconds_left(deadline)
        if patience is not None and patience <= 0:
            raise FireError(
                f"begin_scope from {session.describe()} dropped: it came {-patience:.1f} s "
                "after its client gave up waiting (was the server stalled?); no scope opened"
            )
        if on_commit not in _ON_COMMIT_MODES:
            raise FireError(f"on_commit must be one of {_ON_COMMIT_MODES}, not {on_commit!r}")
        if ahead and transactional:
            raise FireError(
                "a transactional scope is never begun ahead: closing it unused would flush "
                "every table"
            )
        arguments = (kind, transactional, on_commit, savepoints, data_changes)
        stack = self._stack(session)
        if stack and stack[-1].ahead:
            if not ahead and stack[-1].arguments == arguments:
                return self._take(session, stack)
            self._drop_ahead(session)
        if ahead:
            return self._begin_ahead(session, arguments)
        self._preempt(session)
        holder = self.holder
        if (holder is not None and holder is not session) or (
            holder is None and (self.waiting or self.shared.lock.deferred)
        ):
            return self._park(session, arguments, wait, patience)
        return self._open(session, arguments)

    def _take(self, session: Session, stack: list[_Scope]) -> int:
        """The client's begin takes the scope it asked for ahead: the test's from now on."""
        scope = stack[-1]
        # Under the lock: a late request still running sends its mail before the outbox
        # is emptied, never into the test that takes the scope.
        with self._hold(session, f"begin_scope from {session.describe()}"):
            scope.ahead = False
            session.undo.scope_began()  # the test's from now on: so are its patches
            if scope.kind == "test":
                mail.outbox.clear()  # what a late request sent is not this test's
            if self.caches is not None and scope.caches is not None:
                self.caches.put_back(scope.caches)  # nor what it cached
        return len(stack)

    def _begin_ahead(self, session: Session, arguments: tuple[Any, ...]) -> int:
        """Open the scope asked ahead, if the server is free for `session` right now.

        Never in line and never waiting for the connections: a client that does not run
        a test yet (its next test may never begin) must not hold the server, nor get it
        from the line. Opening nothing costs only the work ahead: the test's own begin
        then begins (or waits in line) as any begin does. Returns the depth of the
        scopes taken (the one asked ahead is not, yet).
        """
        stack = self._stack(session)
        holder = self.holder
        if holder is session or (
            holder is None and not self.waiting and not self.shared.lock.deferred
        ):
            # The connections busy (a late request): left to the test's own begin.
            with contextlib.suppress(ServerBusy):
                self._open(session, arguments, ahead=True, wait=_NO_WAIT)
        return self._depth(stack)

    def _open(
        self,
        session: Session,
        arguments: tuple[Any, ...],
        *,
        ahead: bool = False,
        wait: float | None = None,
    ) -> int:
        """Open a scope for `session`, waiting for the connections as long as it may
        (`wait` seconds, when given)."""
        kind, transactional, on_commit, savepoints, data_changes = arguments
        with self._hold(session, f"begin_scope from {session.describe()}", wait):
            stack = self._stack(session)
            if transactional and stack:
                raise FireError(
                    "a transactional scope must be the outermost scope, but a "
                    f"{stack[-1].kind!r} scope is open; run transactional tests where no class "
                    "or module scope is (their own test class or module)"
                )
            if stack and stack[0].transactional:
                raise FireError("scopes cannot nest inside a transactional scope")
            if not stack and self.holder is None:
                # As Django's CONN_HEALTH_CHECKS: a connection that died between two
                # tests (or with the last one) is made again, never the next test's fault.
                self.shared.check_health()
            scope = _Scope(
                kind, transactional, on_commit, savepoints, ahead=ahead, arguments=arguments
            )
            scope.wrappers = {
                alias: list(connection.execute_wrappers)
                for alias, connection in self.shared.by_alias.items()
            }
            if not transactional:
                try:
                    for alias in self.shared.aliases:
                        atomic = _test_atomic(alias)
                        atomic.__enter__()
                        scope.atomics.append(atomic)
                        scope.raw[alias] = self.shared.by_alias[alias].connection
                except BaseException:
                    self._close(scope)
                    raise
            if data_changes and kind == "test" and self.capture is not None:
                try:
                    self.capture.start()
                except BaseException:
                    self._close(scope)
                    raise
                scope.capturing = True
            if self.caches is not None:
                if stack:
                    scope.caches = self.caches.copy()
                else:  # what was cached outside every test is not this one's
                    scope.caches = self.caches.baseline
                    self.caches.put_back(scope.caches)
            stack.append(scope)
            if not ahead:
                session.undo.scope_began()  # patches and clocks made in it end with it
            if self.holder is None:
                self.holder, self.since = session, time.time()
            if kind == "test":
                mail.outbox.clear()
            return len(stack)

    # waiting for the server
    def _park(
        self,
        session: Session,
        arguments: tuple[Any, ...],
        wait: float | None,
        patience: float | None = None,
    ) -> int | Later:
        """Put a begin at the end of the line, until `wait` runs out, or `patience` (the
        seconds its client still waits for the answer) if that is sooner."""
        if not wait or wait <= 0:
            if self.holder is None:  # only the connections are busy: wait for them as a call
                return self._open(session, arguments)
            raise ServerBusy(f"{self._held_by()}; only one client runs tests on a server at a time")
        given = wait if patience is None else min(wait, patience)
        waiter = _Waiter(session, arguments, wait, time.monotonic() + given)
        self.waiting.append(waiter)
        return waiter.later

    def _serve_waiters(self) -> None:
        """Open the scope of the first client in line, if the server is free.

        Never waits for the connections (the server's loop would stall while they are
        held): `tick` tries again a moment later. A waiter whose wait ran out meanwhile
        (the loop was busy) is told so, never given a scope its client gave up on.
        """
        self._expire()
        if self.waiting:
            self._preempt(self.waiting[0].session)
        while self.holder is None and self.waiting and not self.shared.lock.deferred:
            waiter = self.waiting[0]
            try:
                depth = self._open(waiter.session, waiter.arguments, wait=_NO_WAIT)
            except ServerBusy:
                return  # the connections are busy for a moment: `tick` tries again
            except Exception as exc:
                self.waiting.pop(0)
                waiter.later.fail(exc)
                continue
            self.waiting.pop(0)
            waiter.later.answer(depth)

    def _expire(self) -> None:
        """Answer `ServerBusy` to the waiters whose wait ran out."""
        now = time.monotonic()
        for waiter in [w for w in self.waiting if w.deadline <= now]:
            self.waiting.remove(waiter)
            waiter.later.fail(ServerBusy(self._waited_too_long(waiter)))

    def tick(self) -> None:
        """Called by the server's loop every few tens of ms: answer the waits that ran out,
        and serve the line if the server is free (without waiting for the connections)."""
        if not self.waiting:
            return
        self._expire()
        if self.holder is None or self._only_ahead(self.holder):
            self._serve_waiters()

    def _waited_too_long(self, waiter: _Waiter) -> str:
        if self.holder is not None:
            why = self._held_by()
        else:
            why = f"the database connections are busy: {self.shared.lock.holder() or 'busy'}"
        return (
            f"begin_scope from {waiter.session.describe()} waited its {waiter.wait:g} s in "
            f"line: {why}. Clients take turns on a server, first come, first served; "
            "raise the wait (fire_scope_wait, begin_scope(wait=...)), or give each test run "
            "its own server"
        )

    def _release(self, session: Session, *, serve: bool = True) -> None:
        """`session` holds no scope any more: the next client in line gets the server."""
        if self.holder is session:
            self.holder = None
            if serve:
                self._serve_waiters()

    # ending scopes
    def end_scope(self, session: Session) -> int:
        """Close the innermost scope: roll back (or flush) and undo its settings overrides.

        When the connections stay held longer than this client may wait, raises
        `ServerBusy` naming the holder; the scope is closed all the same (rolled back
        as soon as the holder lets go, before anything else runs on the connections).
        """
        stack = self._stack(session)
        if stack and stack[-1].ahead:
            self._drop_ahead(session)
        if not stack:
            raise FireError("end_scope without begin_scope")
        scope = stack.pop()
        undo_failure = session.undo.scope_ended()  # its patches and clocks, first
        try:
            busy = self._dispose(scope, f"end_scope from {session.describe()}", session)
        finally:
            if not stack:
                self._release(session)
        if undo_failure is not None:
            raise undo_failure
        if busy is not None:
            raise ServerBusy(
                f"{busy}. Its scope is not rolled back yet: it will be as soon as they are "
                "free, before anything else runs on them (no later scope nests in it). A test "
                "that ends while its own HTTP requests still run leaves them its scope: wait "
                "for their responses before the test ends"
            )
        return len(stack)

    def _drop_ahead(
        self, session: Session, *, serve: bool = True, waiter: Session | None = None
    ) -> None:
        """Close the scope `session` asked for ahead and did not take.

        For another client (`waiter`) it is not waited for: with the connections busy,
        it is rolled back as soon as they are free.
        """
        stack = self._stack(session)
        scope = stack.pop()
        try:
            self._dispose(
                scope,
                f"the scope asked for ahead by {session.describe()}",
                session if waiter is None else None,
            )
        finally:
            if not stack:
                self._release(session, serve=serve)

    def _dispose(self, scope: _Scope, what: str, session: Session | None) -> str | None:
        """Close `scope` now, or as soon as the connections are free; None if now.

        Waits for the connections as long as `session`'s requests may (not at all for
        none); when they stay busy, defers the closing and returns why.
        """
        held = (
            self.shared.lock.hold(what, timeout=0) if session is None else self._hold(session, what)
        )
        try:
            held.__enter__()
        except ServerBusy as exc:
            self.shared.lock.defer(f"rolling back a scope ({what})", lambda: self._close(scope))
            return str(exc)
        try:
            self._close(scope)
        finally:
            held.__exit__(None, None, None)
        return None

    def _close(self, scope: _Scope) -> None:
        """Undo everything `scope` did; a failure on one alias still closes every other."""
        failures: list[BaseException] = []

        def attempt(step: Callable[[], Any]) -> None:
            try:
                step()
            except Exception as exc:
                failures.append(exc)

        with self.shared.lock.hold("closing a scope", bounded=False):
            for override in reversed(scope.overrides):
                attempt(override.disable)
            self._restore_wrappers(scope)
            lost = self.shared.forget_lost()
            if lost:
                log.warning(
                    "a %s scope ends with its database connection lost (alias %s): its "
                    "transaction is gone with it; the server reconnects before the next scope",
                    scope.kind,
                    ", ".join(map(repr, lost)),
                )
            for alias, atomic in reversed(
                list(zip(self.shared.aliases, scope.atomics, strict=False))
            ):
                if self.shared.by_alias[alias].connection is not scope.raw.get(alias):
                    continue  # lost (and forgotten) since the scope began: nothing to undo
                attempt(functools.partial(_roll_back, alias, atomic))
            if scope.transactional and scope.capturing and self.capture is not None:
                attempt(self.capture.stop)
            if scope.transactional:
                for alias in self.shared.aliases:
                    attempt(
                        functools.partial(
                            call_command, "flush", verbosity=0, interactive=False, database=alias
                        )
                    )
            if scope.kind == "test":
                mail.outbox.clear()
            if self.caches is not None and scope.caches is not None:
                attempt(functools.partial(self.caches.put_back, scope.caches))
        if failures:
            for other in failures[1:]:
                failures[0].add_note(f"(fire: closing the scope also failed: {other!r})")
            raise failures[0]

    def _restore_wrappers(self, scope: _Scope) -> None:
        """Put back the execute wrappers the scope began with.

        ``connection.execute_wrapper(...).__enter__()`` run remotely (a ``with`` around
        fire calls, as pghistory's ``context()`` is) leaves its wrapper installed when the
        test ends before the block does; on the shared connection it would wrap every
        query of every later test.
        """
        for alias, wrappers in scope.wrappers.items():
            connection = self.shared.by_alias[alias]
            left = [w for w in connection.execute_wrappers if w not in wrappers]
            if left:
                log.warning(
                    "removed %d execute wrapper(s) left installed on alias %r at the end of "
                    "a %s scope: %s",
                    len(left),
                    alias,
                    scope.kind,
                    ", ".join(map(repr, left)),
                )
            connection.execute_wrappers[:] = wrappers

    def session_closed(self, session: Session) -> None:
        """A client left (or died): roll back whatever it still had open, and let it out of line.

        The server's loop does not wait for the connections here: a scope whose holder
        keeps them is rolled back as soon as it lets go.
        """
        self.waiting = [waiter for waiter in self.waiting if waiter.session is not session]
        stack = self._stack(session)
        if stack:
            log.warning("rolling back %d open scope(s) of %s", len(stack), session.describe())
        try:
            while stack:
                try:
                    self._dispose(
                        stack.pop(), f"rolling back a scope of {session.describe()}", None
                    )
                except Exception:
                    log.exception("rolling back a scope of %s failed", session.describe())
        finally:
            self._release(session)

    def current(self, session: Session) -> _Scope:
        stack = self._stack(session)
        if not stack:
            raise FireError("no scope is open: begin a test scope first")
        return stack[-1]

    def close(self) -> None:
        if self.holder is not None:
            self.session_closed(self.holder)

    def release_references(self, session: Session, objects: list[Any]) -> None:
        """Drop the objects of references `session` released, under the lock (`djfire.releases`)."""
        release_references(self.shared, session, objects)

    # calls and requests
    @contextlib.contextmanager
    def request_context(self, session: Session, operation: str) -> Iterator[None]:
        """Around each fire call: the shared lock, and a savepoint inside a scope."""
        if operation in _OPEN_TO_ALL:
            yield  # touches no database (begin_scope and end_scope take the lock themselves)
            return
        if self.holder is not None and self.holder is not session:
            self._preempt(session)  # a holder with only an untaken scope asked ahead
        holder = self.holder
        if holder is not None and holder is not session:
            raise ServerBusy(
                f"{self._held_by()}: while it is, other clients can only ping the server "
                "or wait for it in begin_scope (FireTestCase and the pytest plugin do). "
                "Begin a scope first, or give each test run its own server"
            )

        def what() -> str:  # made only for a message: this runs on every call
            return f"fire call {operation!r} from {session.describe()}"

        try:
            with self._hold(session, what):
                if holder is not None and self._ahead(holder):
                    # Not taken by a begin: closed first, so the call runs outside it.
                    self._drop_ahead(holder, serve=False)
                    holder = self.holder
                if operation in self._own_operations:
                    yield  # scope operations manage the transactions themselves
                elif holder is None:
                    with self._outside_scope(what(), refuse_writes=True):
                        yield
                else:
                    with self._isolated(holder, _never):
                        yield
        except Exception as exc:
            if self.annotate is not None:
                self.annotate(exc)
            lost = self.shared.lost()
            if lost:
                exc.add_note(_lost_connection(lost))
            raise
        finally:
            if self.holder is None and self.waiting:
                self._serve_waiters()

    def around_http_request(
        self, what: str, respond: Callable[[], list[bytes]], failed: Callable[[], bool]
    ) -> list[bytes]:
        """Around each live HTTP request (same lock, same rules as a fire call).

        `what` names the request ("HTTP GET /path/") in messages; raises `ServerBusy`
        when the connections stay held by something else for too long. While the
        holder's innermost scope is one begun ahead and not taken yet, the request runs
        outside every test, as between tests.
        """
        with self.shared.lock.hold(what):
            holder = self.holder
            if holder is None or self._ahead(holder):
                with self._outside_scope(what, refuse_writes=False):
                    return respond()
            with self._isolated(holder, failed):
                return respond()

    @contextlib.contextmanager
    def _outside_scope(self, what: str, *, refuse_writes: bool) -> Iterator[None]:
        """No scope is open: run in a transaction on every alias and roll it back."""
        writes: list[str] = []

        def watch(execute: Callable[..., Any], sql: Any, *args: Any) -> Any:
            if _writes(sql):
                writes.append(str(sql))
            return execute(sql, *args)

        with contextlib.ExitStack() as stack:
            for alias, connection in self.shared.by_alias.items():
                stack.enter_context(_test_atomic(alias))
                stack.enter_context(_outermost_wrapper(connection, watch))
            try:
                yield
            finally:
                for alias in self.shared.aliases:
                    transaction.set_rollback(True, using=alias)
        wrote = f" (it wrote: {_shorten(writes[0])})" if writes else ""
        if refuse_writes and writes:
            raise FireError(
                f"{what} wrote to the database outside a test scope{wrote}; its changes were "
                "rolled back. Open a test scope first: FireTestCase and the pytest plugin's "
                "fire fixtures open one for each test; by hand, `with remote.scope(): ...`"
            )
        if not refuse_writes:
            log.warning(
                "%s came outside a test scope: it ran in a transaction that was rolled back%s",
                what,
                wrote,
            )

    @contextlib.contextmanager
    def _isolated(self, holder: Session | None, failed: Callable[[], bool]) -> Iterator[None]:
        stack = self._stack(holder)
        scope = stack[-1] if stack else None
        if scope is None or scope.transactional:
            yield
            return
        if not self.shared.in_transaction():
            # The scope's transaction was lost with its connection (a class scope around
            # the test that lost it): nothing may commit, so each call is rolled back.
            with self._outside_scope(
                "a call in a scope whose connection was lost", refuse_writes=False
            ):
                yield
            return
        connections = self.shared.by_alias
        saved = {alias: conn.run_on_commit for alias, conn in connections.items()}
        for conn in connections.values():
            conn.run_on_commit = []
        try:
            with self._savepoints(scope.savepoints) as roll_back:
                yield
                if failed():
                    roll_back()
            callbacks = [] if failed() else self._take_callbacks()
            if scope.on_commit == "capture":
                scope.captured.extend(callbacks)
            else:
                self._run_callbacks(callbacks, scope.savepoints)
        finally:
            for alias, conn in connections.items():
                conn.run_on_commit = saved[alias]

    def _savepoints(self, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
        """The block's savepoints (`djfire.savepoints`), unless the scope turned them off."""
        if not enabled:
            return contextlib.nullcontext(_never_roll_back)
        return CallSavepoints(self.shared.by_alias)

    def _take_callbacks(self) -> list[Callback]:
        """The on_commit callbacks registered since the lists were emptied, emptying them."""
        taken: list[Callback] = []
        for alias, conn in self.shared.by_alias.items():
            taken.extend((alias, func, robust) for _, func, robust in conn.run_on_commit)
            conn.run_on_commit = []
        return taken

    def _run_callbacks(self, callbacks: list[Callback], savepoints: bool = True) -> None:
        """Run callbacks as a commit would, each in a savepoint of its own.

        A callback that fails (a database error included) undoes only its own work, so the
        test's transaction stays usable; a robust one is logged, any other raises. Callbacks
        that register callbacks run after them, as they would after a real commit.
        """
        while callbacks:
            for alias, func, robust in callbacks:
                try:
                    with self._savepoints(savepoints):
                        func()
                except Exception:
                    if not robust:
                        raise
                    log.exception("robust on_commit callback %r (alias %s) failed", func, alias)
            callbacks = self._take_callbacks()

    # data changes
    def data_changes(self, session: Session, *, tables_only: bool = False) -> dict[str, Any]:
        """The net row changes of the current test so far, per alias and table
        (`tables_only`: see `djfire.changes.ChangeCapture.read`)."""
        if self.capture is not None and self.capture.off is not None:
            return self.capture.read()  # each alias says why nothing is captured
        capture, counted = self._capturing(session)
        with self._reading():
            return capture.read(tables_only=tables_only, skip_untouched=counted)

    def fetched_changes(self, session: Session) -> dict[str, Any]:
        """What `data_changes(tables_only=True)` reads, as fetched: the query now, the
        rest (`djfire.changes.ChangeCapture.netted`) when nothing waits for it."""
        if self.capture is not None and self.capture.off is not None:
            return self.capture.fetch()  # each alias says why nothing is captured
        capture, counted = self._capturing(session)
        with self._reading():
            return capture.fetch(skip_untouched=counted)

    def _capturing(self, session: Session) -> tuple[ChangeCapture, bool]:
        """The capture of `session`'s test, and whether its untouched aliases may be
        skipped; a `FireError` when none of its scopes captures."""
        stack = self._stack(session)
        if not any(scope.capturing for scope in stack):
            raise FireError(
                "no data changes are captured: only a test scope begun with "
                "data_changes=True captures them (the runners do, unless "
                "--fire-data-changes=off)"
            )
        assert self.capture is not None
        # An alias no call or request has queried since the test began has no rows: its
        # read is skipped when every open scope counts those (runs them in savepoints).
        return self.capture, all(s.savepoints and not s.transactional for s in stack)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """A read of the capture that fails with a lost connection says so."""
        try:
            yield
        except Exception as exc:
            lost = self.shared.lost()
            if not lost:
                raise
            raise FireError(_lost_connection(lost).removeprefix("fire: ")) from exc

    # captured on_commit callbacks
    def captured_on_commit(self, session: Session) -> list[str]:
        """Descriptions of the callbacks captured in the current scope."""
        return [f"{alias}: {func!r}" for alias, func, _ in self.current(session).captured]

    def run_captured_on_commit(self, session: Session) -> int:
        """Run (and forget) the captured callbacks; returns how many ran."""
        scope = self.current(session)
        callbacks, scope.captured = scope.captured, []
        with self.shared.lock.hold(f"on_commit callbacks of {session.describe()}"):
            self._run_callbacks(callbacks, scope.savepoints)
        return len(callbacks)


@contextlib.contextmanager
def _outermost_wrapper(connection: Any, wrapper: Callable[..., Any]) -> Iterator[None]:
    """``connection.execute_wrapper(wrapper)``, but first in line and removed by identity.

    Django's own removes the *last* wrapper on exit, which is the application's when a
    call entered one and left it open (a ``with`` around fire calls).
    """
    connection.execute_wrappers.insert(0, wrapper)
    try:
        yield
    finally:
        connection.execute_wrappers.remove(wrapper)


def _never() -> bool:
    return False


def _never_roll_back() -> None:
    """With savepoints off there is nothing to roll back to."""


def _roll_back(alias: str, atomic: Atomic) -> None:
    transaction.set_rollback(True, using=alias)
    atomic.__exit__(None, None, None)


def _lost_connection(aliases: list[str]) -> str:
    names = ", ".join(map(repr, aliases))
    return (
        f"fire: the server lost its database connection (alias {names}) during this test: "
        "its backend was terminated or the database restarted. The test's transaction, and "
        "every change it made, are gone with it; the server reconnects before the next test"
    )


def _shorten(sql: str, limit: int = 120) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= limit else sql[: limit - 1] + "…"
