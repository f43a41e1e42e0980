"""The spawned servers' coverage in a pytest-cov run (``--cov``).

pytest-cov measures the test process and, once the tests have run, combines the
parallel data files beside its data file into the report. This module reads how it
measures (its sources, its coverage.py settings) for the spawned servers to measure
theirs (`fire.runners.coverage`), and, once the tests have run but before pytest-cov
combines, stops the servers so that they write their data, and puts it beside
pytest-cov's. The servers are stopped at that point only when coverage is on: their
descriptions for the summary are read first. Imports nothing of fire at import time.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fire.runners.core import Runner
    from fire.runners.coverage import CoverageSettings

__all__ = ["finish_coverage", "from_worker", "notes", "run_coverage", "stopped_descriptions"]

_notes: pytest.StashKey[list[str]] = pytest.StashKey()
_descriptions: pytest.StashKey[dict[str, str]] = pytest.StashKey()
_WORKER_KEY = "fire_coverage_notes"


def run_coverage(config: pytest.Config) -> CoverageSettings | None:
    """How this run measures coverage with pytest-cov, or None (no ``--cov``, ``--no-cov``,
    or pytest-cov not started yet: an xdist worker's starts at its session start)."""
    controller = _controller(config)
    cov = getattr(controller, "cov", None)
    if cov is None:
        return None
    from fire.runners.coverage import CoverageSettings

    base = str(getattr(controller, "topdir", os.getcwd()))
    # --cov=SOURCE, else the configuration's [run] source (--cov alone: everything)
    sources = getattr(controller, "cov_source", None) or cov.get_option("run:source")
    return CoverageSettings(
        data_file=os.path.join(base, str(cov.get_option("run:data_file"))),
        sources=None if sources is None else [_resolved(source, base) for source in sources],
        branch=bool(cov.get_option("run:branch")),
        config_file=cov.config.config_file,
        paths=dict(cov.get_option("paths") or {}),
        base=base,
    )


def _controller(config: pytest.Config) -> Any:
    """pytest-cov's controller of this run (its ``cov`` is the run's `coverage.Coverage`),
    or None: no ``--cov``, ``--no-cov``, or not started yet."""
    plugin = config.pluginmanager.getplugin("_cov")
    if plugin is None or getattr(plugin, "_disabled", False):
        return None
    return getattr(plugin, "cov_controller", None)


def _resolved(source: str, base: str) -> str:
    """A source directory made absolute (a server runs elsewhere); a module name as is."""
    path = os.path.join(base, source)
    return os.path.abspath(path) if os.path.isdir(path) else source


def finish_coverage(config: pytest.Config, runner: Runner, describe: Any) -> None:
    """Stop the spawned servers, which write their coverage data, and put it beside the
    run's data file before pytest-cov combines it; keep what to tell the user.

    `describe` gives a server's description for the summary (read now: they stop).
    """
    settings = runner.config.coverage
    servers = runner.spawned
    if settings is None or not servers:
        return
    from fire.errors import FireError
    from fire.runners.coverage import save_server_data

    measured = any(server.coverage is not None for server in servers.values())
    if measured:  # else nothing to wait for: they stop with the run, as always
        described: dict[str, str] = {}
        for name, server in servers.items():
            if server.failure is None and not server.exited():
                with contextlib.suppress(FireError):  # said as the summary says it
                    described[name] = describe(runner.remote(name).info())
        config.stash[_descriptions] = described
        runner.stop_spawned()
    said = save_server_data(servers, settings)
    config.stash.setdefault(_notes, []).extend(said)
    workeroutput = getattr(config, "workeroutput", None)  # an xdist worker's, for the controller
    if workeroutput is not None:
        workeroutput[_WORKER_KEY] = said
    cov = getattr(_controller(config), "cov", None)
    if measured and cov is not None and hasattr(cov, "_warn_no_data"):
        # The test process may run none of the measured code (the services' alone): its
        # own data is empty, and coverage.py's "No data was collected" would be wrong.
        cov._warn_no_data = False


def from_worker(node: Any) -> None:
    """On the xdist controller, as a worker ends: keep what it had to say of its servers'
    coverage, for the controller's summary."""
    said = getattr(node, "workeroutput", {}).get(_WORKER_KEY, ())
    worker = getattr(getattr(node, "gateway", None), "id", "worker")
    node.config.stash.setdefault(_notes, []).extend(f"[{worker}] {note}" for note in said)


def stopped_descriptions(config: pytest.Config) -> dict[str, str] | None:
    """The spawned servers' descriptions read before they were stopped for coverage, or
    None when they were not stopped early."""
    return config.stash.get(_descriptions, None)


def notes(config: pytest.Config) -> list[str]:
    """What the run should say about its servers' coverage (lost data, and why)."""
    return config.stash.get(_notes, [])
