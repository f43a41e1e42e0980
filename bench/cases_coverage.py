"""What measuring a service's coverage costs its tests: the typical test, off and on.

With ``pytest --cov``, fire starts each spawned server under ``coverage run`` (issue 25:
coverage on must cost at most 2x the typical test). Two servers of the test-suite's shop
(tests/djproject, SQLite in-memory) run side by side: one as usual, one as the spawner
starts it for a run with ``--cov=tests/djproject/shop`` (``coverage run --parallel-mode
--source=…/shop``, `fire.runners.coverage.server_options`). The typical full-system test
(a scope, a factory call, a GET of ``/products/``, an ORM count) runs against each in
turn, in pairs that alternate which goes first, so a slow spell of a shared machine lands
on both sides of a pair; the figure is the median of the pairs' ratios, on ÷ off. What
the test process pays for its own measuring is pytest-cov's, not fire's, and not in it.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from .registry import REPO_ROOT, Env, section

NAME = "coverage"
PAIRS = 300
TARGET = 2.0
MANAGE = REPO_ROOT / "tests" / "djproject" / "manage.py"


def _start(env: Env, label: str, coverage: list[str]) -> tuple[Any, str]:
    """A shop server (under ``coverage run`` when `coverage` holds its options); its
    connection and live URL."""
    import fire
    from djfire import DjangoRemote

    address = env.tmpdir / f"coverage-{label}.sock"
    argv = [sys.executable, *coverage, str(MANAGE), "runfireserver", str(address)]
    argv += ["--http", "127.0.0.1:0", "--verbosity", "0"]
    env.spawn(
        argv,
        cwd=MANAGE.parent,
        environ={"DJANGO_SETTINGS_MODULE": "djproject.settings", "DJFIRE_TEST_DB": "sqlite"},
        timeout=120.0,
    )
    remote = env.stack.enter_context(fire.connect(address, name=f"shop-{label}"))
    return remote, DjangoRemote(remote).live_url


def run(env: Env, only: list[str]) -> str:
    if only and not any(term in NAME for term in only):
        return ""
    try:
        import coverage  # noqa: F401
    except ImportError:
        return f"{NAME}: skipped (coverage.py is not installed: the coverage extra)"
    import requests

    from fire.runners.coverage import CoverageSettings, server_options
    from fire.runners.spawn import parse_spawn_spec

    data_file = env.tmpdir / "coverage" / ".coverage"
    data_file.parent.mkdir()
    settings = CoverageSettings(str(data_file), sources=[str(MANAGE.parent / "shop")])
    options = server_options(settings, parse_spawn_spec(f"shop={MANAGE}")) or []
    wrapped = ["-m", "coverage", "run", "--parallel-mode", f"--data-file={data_file}", *options]
    servers = {False: _start(env, "off", []), True: _start(env, "on", wrapped)}

    def typical(measured: bool) -> float:
        remote, url = servers[measured]
        start = time.perf_counter_ns()
        with remote.scope():
            remote.module("shop.factories").ProductFactory(name="bench")
            requests.get(url + "/products/", timeout=10).json()
            remote.module("shop.models").Product.objects.count()
        return (time.perf_counter_ns() - start) / 1000

    for _ in range(20):  # warm-up: both servers' connections, imports and caches
        typical(False), typical(True)
    times: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    for pair in range(PAIRS):
        order = (False, True) if pair % 2 else (True, False)
        measured = {on: typical(on) for on in order}
        for on, us in measured.items():
            times[on].append(us)
        ratios.append(measured[True] / measured[False])
    off, on, ratio = (
        statistics.median(times[False]),
        statistics.median(times[True]),
        statistics.median(ratios),
    )
    verdict = "ok" if ratio <= TARGET else "ABOVE TARGET"
    return (
        f"{NAME} of a service (SQLite, the typical full-system test, {PAIRS} pairs; the "
        "server under coverage run as fire spawns it for --cov):\n"
        f"  off {off:6.0f} µs, on {on:6.0f} µs: on ÷ off {ratio:4.2f} (median of the pairs' "
        f"ratios; target ≤ {TARGET:g}) {verdict}"
    )


section(NAME, run)
