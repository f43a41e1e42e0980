"""The soak's watcher: samples the servers, counts what survives, says whether the goals hold.

Each pytest process that runs tests (each xdist worker, or the one process) samples
every server it spawned twice, between tests: once its share of the run's first 10 %
(`SoakSettings.sample_at`) has run, so start-up and first-use caches are behind it,
and again after its last test. Then, with no scope open, it counts the rows committed
in each server's test database, before the servers stop: a number above the first
test's count is a row that survived a rollback. The process that reports (xdist's
controller, or the one process) gathers every worker's figures and, once the servers
had time to stop, looks for what they left behind (`leftovers`); then it writes the JSON
report, prints a few lines and fails the run when a goal is missed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from leftovers import leftovers
from measure import committed_rows, database_name, resident_kib, settled_open_files
from settings import SoakSettings

__all__ = ["ServerFigures", "SoakWatch", "check_goals"]

#: The goals of issue 23: RSS from the first sample to the end at most this much higher.
RSS_GROWTH_LIMIT = 5.0


@dataclass
class ServerFigures:
    """One spawned server's figures over one worker's share of the run."""

    worker: str
    server: str
    pid: int
    database: str = ""  # its test database, dropped when it stops
    socket_dir: str = ""  # the directory made for its socket, removed when it stops
    rss_kib: list[int] = field(default_factory=list)  # at sample_at, at the end
    fds: list[int] = field(default_factory=list)
    fd_files: list[dict[str, str]] = field(default_factory=list)  # number -> what it is
    rows_before: dict[str, int] = field(default_factory=dict)  # committed, before test 1
    rows_after: dict[str, int] = field(default_factory=dict)  # committed, after the last

    @property
    def rows_left(self) -> int:
        """Rows committed during the run: each table's growth, summed."""
        return sum(
            max(0, count - self.rows_before.get(table, 0))
            for table, count in self.rows_after.items()
        )

    @property
    def rss_change(self) -> float | None:
        """Percent change of RSS from the first sample to the end."""
        if len(self.rss_kib) < 2:
            return None
        return 100.0 * (self.rss_kib[-1] - self.rss_kib[0]) / self.rss_kib[0]


def check_goals(figures: list[ServerFigures], tests: int) -> list[str]:
    """The goals missed, one sentence each (none: the soak passed)."""
    missed = []
    if tests == 0:
        missed.append("no test ran")
    if not figures:
        missed.append("no server was watched (none started?)")
    for one in figures:
        name = f"{one.server} ({one.worker})"
        if len(one.rss_kib) < 2:
            missed.append(f"{name}: sampled {len(one.rss_kib)} time(s), not 2 (too few tests?)")
            continue
        changed = {
            table: f"{one.rows_before.get(table, 0)} -> {one.rows_after.get(table, 0)}"
            for table in sorted(one.rows_before.keys() | one.rows_after.keys())
            if one.rows_after.get(table, 0) != one.rows_before.get(table, 0)
        }
        if changed:  # more rows, but fewer too: a test committed either
            missed.append(f"{name}: committed rows changed over the run: {changed}")
        change = one.rss_change
        if change is not None and change > RSS_GROWTH_LIMIT:
            missed.append(
                f"{name}: RSS grew {change:+.1f} % ({one.rss_kib[0]} -> {one.rss_kib[-1]} KiB), "
                f"more than +{RSS_GROWTH_LIMIT:.0f} %"
            )
        first, last = one.fd_files[0], one.fd_files[-1]
        if first.keys() != last.keys():
            changes = [f"opened {fd} {last[fd]}" for fd in sorted(last.keys() - first.keys())]
            changes += [f"closed {fd} {first[fd]}" for fd in sorted(first.keys() - last.keys())]
            missed.append(
                f"{name}: open file descriptors {one.fds[0]} -> {one.fds[-1]} "
                f"({', '.join(changes)})"
            )
    return missed


class SoakWatch:
    """The pytest plugin: registered by the soak's conftest, in every process of the run."""

    def __init__(self, config: pytest.Config, settings: SoakSettings) -> None:
        self.config = config
        self.settings = settings
        self.worker = getattr(config, "workerinput", {}).get("workerid", "main")
        self.ran = 0
        self.figures: dict[str, ServerFigures] = {}
        self.gathered: list[dict[str, Any]] = []  # each worker's figures, where it reports
        self.started = time.monotonic()

    def _runner(self) -> Any:
        from pytest_fire.activate import active_runner

        return active_runner(self.config)

    def _sample(self) -> None:
        for one in self.figures.values():
            one.rss_kib.append(resident_kib(one.pid))
            files = settled_open_files(one.pid, one.fd_files[0] if one.fd_files else None)
            one.fd_files.append(files)
            one.fds.append(len(files))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Before the first test: start the servers and count their committed rows.

        A server that cannot start is left to the test's fixtures, which say why.
        """
        if self.figures:
            return
        from fire.errors import FireError
        from pytest_fire.activate import activate

        runner = activate(self.config)
        for name in runner.names:
            try:
                remote = runner.remote(name)  # starts the server, outside any scope
            except FireError:
                return
            server = runner.spawned[name]
            self.figures[name] = ServerFigures(
                self.worker,
                name,
                server.pid,
                database=database_name(remote),
                socket_dir=os.path.dirname(server.address),
                rows_before=committed_rows(remote),
            )

    def pytest_runtest_logfinish(self) -> None:
        self.ran += 1
        if self.ran == self.settings.sample_at:
            self._sample()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        runner = self._runner()
        if runner is not None and self.figures:
            self._sample()
            for name, one in self.figures.items():
                one.rows_after = committed_rows(runner.remote(name))
        mine = {
            "tests": self.ran,
            "sample_at": self.settings.sample_at,
            "servers": [asdict(one) for one in self.figures.values()],
        }
        if hasattr(self.config, "workerinput"):
            self.config.workeroutput["soak"] = mine  # type: ignore[attr-defined]
            return
        if not self.gathered:  # no xdist: this process ran the tests itself
            self.gathered.append(mine)
        self.session = session
        self.seconds = round(time.monotonic() - self.started, 1)

    @pytest.hookimpl(trylast=True)  # after the runner stopped its servers (no xdist)
    def pytest_unconfigure(self) -> None:
        """Where the run reports: once the servers are stopping or gone, the report."""
        session = getattr(self, "session", None)
        if session is None:  # a worker, or a run that ended before its session did
            return
        lines = self._report(session)
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.section("soak")
            for line in lines:
                terminal.write_line(line)

    def pytest_testnodedown(self, node: Any) -> None:
        """xdist's controller: a worker finished; keep its figures."""
        soak = getattr(node, "workeroutput", {}).get("soak")
        if soak is not None:
            self.gathered.append(soak)

    def _report(self, session: pytest.Session) -> list[str]:
        """Write the JSON report, fail the run on a missed goal; the terminal's lines."""
        figures = [ServerFigures(**one) for each in self.gathered for one in each["servers"]]
        tests = sum(each["tests"] for each in self.gathered)
        left = leftovers(
            [one.pid for one in figures],
            [one.socket_dir for one in figures],
            [one.database for one in figures],
            wait=self.settings.leftover_wait,
        )
        missed = check_goals(figures, tests) + [f"left behind: {what}" for what in left]
        report = {
            "tests": tests,
            "seed": self.settings.seed,
            "sample_at": max((each["sample_at"] for each in self.gathered), default=0),
            "seconds": self.seconds,
            "servers": [
                {**asdict(one), "rows_left": one.rows_left, "rss_change": one.rss_change}
                for one in figures
            ],
            "left_behind": left,
            "goals_missed": missed,
        }
        self.settings.report.parent.mkdir(parents=True, exist_ok=True)
        self.settings.report.write_text(json.dumps(report, indent=2) + "\n")
        if missed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return summary_lines(report, self.settings.report)


def summary_lines(report: dict[str, Any], path: Path) -> list[str]:
    """The terminal's few lines: the totals, one line per server, the goals missed."""
    lines = [
        f"{report['tests']} tests in {report['seconds']} s (seed {report['seed']}); "
        f"each worker's servers sampled after its test {report['sample_at']} and at the end"
    ]
    for one in report["servers"]:
        change = one["rss_change"]
        rss = "/".join(str(kib) for kib in one["rss_kib"])
        lines.append(
            f"  {one['server']} ({one['worker']}, pid {one['pid']}): rows left {one['rows_left']}, "
            f"RSS {rss} KiB ({'n/a' if change is None else f'{change:+.2f} %'}), "
            f"fds {'/'.join(str(n) for n in one['fds'])}"
        )
    if report["goals_missed"]:
        lines.append("GOALS MISSED:")
        lines += [f"  {missed}" for missed in report["goals_missed"]]
    else:
        lines.append(
            f"goals met: 0 rows left, RSS within +{RSS_GROWTH_LIMIT:.0f} %, fds equal, "
            "nothing left behind"
        )
    lines.append(f"report: {path}")
    return lines
