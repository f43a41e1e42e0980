"""djfire's rows: what test isolation costs, rolled back (djfire) or flushed (TransactionTestCase).

On the test-suite's shop service (`bench.shop`), per database backend:

- an isolated test scope, begin + end and nothing in it: a transaction rolled back,
  or (flush-based) a transactional scope whose end flushes every table of every alias,
  which is what TransactionTestCase and pytest-django's ``live_server`` do per test;
- a typical full-system test in such a scope: a factory call through the remote, a GET
  of the live server's ``/products/`` (with requests, a new connection, as tests do),
  and an ORM read through the remote compared with the factory's instance.

An empty rolled-back scope on PostgreSQL sends no SQL at all (psycopg begins a
transaction at the first statement, and skips the ROLLBACK of none), so that row is
fire's two round trips; the flush row pays the flush whatever the test did, as
TransactionTestCase does. Each pair prints in the comparison table as flush ÷ rollback.

The test also checks its own result (one product, seen over HTTP and through the ORM),
so a row whose isolation leaks rows fails with a note instead of timing the wrong thing.
PostgreSQL rows run only when PostgreSQL listens at 127.0.0.1:5432; otherwise a note
says they were skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from . import shop
from .registry import Call, Comparison, Env, case, compare, note

SCOPE = "isolated test scope (begin + end)"
FULL = "full-system test (factory + HTTP GET + ORM get)"
STRATEGIES = {"rollback": False, "flush": True}  # -> transactional scope

#: Calls per block, so that a block takes about 0.1 s (0.25 s for a PostgreSQL flush,
#: some 120 ms a call) and the whole bench stays well within a minute.
CALLS = {
    ("sqlite", SCOPE): {"rollback": 200, "flush": 6},
    ("sqlite", FULL): {"rollback": 12, "flush": 4},
    ("postgres", SCOPE): {"rollback": 200, "flush": 2},
    ("postgres", FULL): {"rollback": 8, "flush": 2},
}


class IsolationLeak(AssertionError):
    """A full-system test saw rows it did not make, or missed its own."""


def _scope_only(server: shop.Shop, transactional: bool) -> Call:
    remote = server.remote

    def one_scope() -> None:
        remote.begin_scope(transactional=transactional)
        remote.end_scope()

    return one_scope


def _full_system_test(server: shop.Shop, transactional: bool) -> Call:
    import requests

    remote, url = server.remote, f"{server.live_url}/products/"
    factories, models = server.factories, server.models

    def one_test() -> None:
        remote.begin_scope(transactional=transactional)
        try:
            product = factories.ProductFactory(name="bench")
            listed = requests.get(url, timeout=10).json()["products"]
            if listed != [{"id": product.id, "name": "bench"}]:
                raise IsolationLeak(f"GET /products/ listed {listed!r}")
            if models.Product.objects.get() != product:
                raise IsolationLeak("Product.objects.get() is not the factory's product")
        finally:
            remote.end_scope()

    return one_test


MAKERS: dict[str, Callable[[shop.Shop, bool], Call]] = {
    SCOPE: _scope_only,
    FULL: _full_system_test,
}


def _register(backend: str, what: str, order: int) -> tuple[str, str, str]:
    """Register the rollback and flush rows of one measurement; return the comparison pair."""
    make = MAKERS[what]
    names = []
    for offset, (strategy, transactional) in enumerate(STRATEGIES.items()):
        name = f"djfire {backend}: {what.split(' (')[0]}, {strategy}"

        def setup(env: Env, transactional: bool = transactional) -> Iterator[Call]:
            yield make(shop.shop(env, backend), transactional)

        case(name, calls=CALLS[backend, what][strategy], order=order + offset)(setup)
        names.append(name)
    return (f"{shop.BACKENDS[backend]}: {what}", names[0], names[1])


def _register_all() -> None:
    backends = ["sqlite"]
    if shop.postgres_available():
        backends.append("postgres")
    else:
        host, port = shop.POSTGRES
        note(
            f"PostgreSQL rows skipped: nothing listens at {host}:{port} "
            "(tests/djproject expects PostgreSQL there, trust auth, user postgres)"
        )
    pairs = tuple(
        _register(backend, what, order=40 + 10 * b + 2 * w)
        for b, backend in enumerate(backends)
        for w, what in enumerate(MAKERS)
    )
    compare(
        Comparison(
            title=(
                "rollback vs flush isolation, per test: flush-based ÷ rollback-based, the "
                "median of per-round ratios\n"
                "(5.00: rollback-based isolation is 5x faster; rollback: djfire's test scope, "
                "one transaction per alias rolled back;\n"
                " flush: a transactional scope, real commits then every table of every alias "
                "flushed, as TransactionTestCase\n"
                " and pytest-django's live_server do)"
            ),
            base_label="rollback µs",
            other_label="flush µs",
            ratio_label="flush ÷ rollback",
            pairs=pairs,
        )
    )


_register_all()
