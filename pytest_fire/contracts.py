"""Recording contracts under pytest (``--fire-contracts DIR``): collect, write, say.

Each test's interactions are taken at the end of its call, while its scopes are still
open (`fire.contracts.record.Recording.collect`); the files are written as the run
ends, and the terminal summary says what was written, or that nothing was recorded.
"""

from __future__ import annotations

import contextlib

import pytest

from .activate import active_runner
from .fixtures import excluded_changes, marker_options

__all__ = [
    "collect_contracts",
    "from_worker",
    "gather_contracts",
    "summary_line",
    "write_contracts",
]

#: Where a pytest-xdist worker hands its recording to the controller, which writes.
_WORKER_KEY = "fire_contracts"

_written: pytest.StashKey[str] = pytest.StashKey()


def collect_contracts(item: pytest.Item, report: pytest.TestReport) -> None:
    """After a ``fire_remotes`` test's call: its recorded interactions, kept if it passed."""
    runner = active_runner(item.config)
    if runner is None or runner.contracts is None:
        return
    remotes = getattr(item, "funcargs", {}).get("fire_remotes")
    if remotes is None:  # not a fire_remotes test (a FireTestCase collects its own)
        return
    options = marker_options(item)
    exact = options.get("contract_exact") or ()
    runner.contracts.collect(
        remotes,
        item.nodeid,
        passed=report.passed,
        state=options.get("contract_state"),
        exact=[exact] if isinstance(exact, str) else list(exact),
        exclude=excluded_changes(item, runner),
    )


def gather_contracts(config: pytest.Config) -> None:
    """Once the tests have run, before anything stops the servers (with --cov they stop
    inside the run's test loop, to write their coverage data): take what the providers
    recorded, which would else go with them."""
    runner = active_runner(config)
    if runner is None or runner.contracts is None:
        return
    from fire.errors import FireError

    with contextlib.suppress(FireError, OSError):  # said by write_contracts, which tries again
        runner.contracts.gather()


def write_contracts(session: pytest.Session) -> None:
    """As the run ends: the contracts' files (none when nothing was recorded). A
    pytest-xdist worker writes none: it hands its recording to the controller
    (`from_worker`), which writes the files of all."""
    runner = active_runner(session.config)
    if runner is None or runner.contracts is None:
        return
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKER_KEY] = runner.contracts.to_data()
        return
    from fire.errors import FireError

    try:
        session.config.stash[_written] = runner.contracts.write()
    except (FireError, OSError) as exc:
        session.config.stash[_written] = f"fire contracts: NOT WRITTEN: {exc}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def from_worker(node: object) -> None:
    """On the controller, as a pytest-xdist worker ends: add what it recorded."""
    data = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    config = getattr(node, "config", None)
    runner = active_runner(config) if config is not None else None
    if data and runner is not None and runner.contracts is not None:
        runner.contracts.merge(data)


def summary_line(config: pytest.Config) -> str | None:
    """What `write_contracts` wrote (or why nothing), for the terminal summary."""
    return config.stash.get(_written, None)
