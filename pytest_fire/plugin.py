"""pytest hooks of the fire plugin: options, markers, report header and sections.

Registered in every pytest run of an environment where djfire is installed, so it stays
cheap until the run uses fire: options, ini and the marker are registered at once;
``fire`` itself (zmq, msgpack, asyncio) is imported only when servers are configured or
a fire fixture is used (`pytest_fire.activate`).
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

from .activate import activate, active_runner, configured, deactivate
from .contract_stub import fire_contract_stub  # noqa: F401  (a fixture)
from .contracts import collect_contracts, gather_contracts, summary_line, write_contracts
from .contracts import from_worker as contracts_from_worker
from .coverage import finish_coverage, notes, run_coverage, stopped_descriptions
from .coverage import from_worker as coverage_from_worker
from .debugging import install_remote_post_mortem, step_into_services, warn_skipped_breakpoints
from .fixtures import (  # noqa: F401  (fixtures are found by pytest in this module)
    fire_changes,
    fire_class_scope,
    fire_module_scope,
    fire_remote,
    fire_remotes,
    next_test,
    scope_mismatch_hint,
)
from .lost import (
    fail_the_run,
    from_worker,
    note_lost_server,
    shorten,
    summary_lines,
    write_others,
)
from .report import add_data_changes

#: `fire.runners.data_changes.MODES`, which this module cannot import (an unused plugin imports no
#: fire); tests/runners/test_plugin_startup.py checks that they agree.
DATA_CHANGES_MODES = ("fail", "always", "off")

_output_marks: pytest.StashKey[dict[str, int]] = pytest.StashKey()
#: How far each spawned server's output was read for skipped breakpoints: a line that
#: reached the run after its test's report (the output comes through a pipe, the test's
#: end through the socket) is warned of by the next test's, not lost.
_breakpoints_read: pytest.StashKey[dict[object, int]] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fire", "fire: full-system tests across services")
    group.addoption(
        "--fire-servers",
        action="append",
        metavar="NAME=ADDRESS[,NAME=ADDRESS]",
        help="attach to running fire servers (repeatable; overrides FIRE_SERVERS "
        "and the fire_servers ini option)",
    )
    group.addoption(
        "--fire-spawn",
        action="append",
        metavar="NAME=MANAGE_PY[:settings=MOD][:http=HOST:PORT][:gateway=XSPEC]",
        help="start a service's runfireserver for this run (repeatable); gateway= (last) "
        "starts it through an execnet gateway: popen//python=PY, ssh=HOST//python=PY",
    )
    group.addoption(
        "--fire-pdb",
        action="store_true",
        default=False,
        help="let breakpoint() in a service's code stop in this terminal (as -s and "
        "--trace do), and s on a fire call in a test's pdb step into the service; "
        "without any of them, a service skips it with a warning",
    )
    group.addoption(
        "--fire-curve-secret",
        metavar="NAME.key_secret",
        help="this client's CURVE key pair, for TCP servers (overrides FIRE_CURVE_SECRET "
        "and the fire_curve_secret ini option)",
    )
    group.addoption(
        "--fire-curve-servers",
        metavar="DIR",
        help="directory of the TCP servers' public keys, SERVER_NAME.key (overrides "
        "FIRE_CURVE_SERVERS and the fire_curve_servers ini option)",
    )
    parser.addini(
        "fire_curve_secret",
        "this client's CURVE key pair (NAME.key_secret), relative to the ini file",
        default="",
    )
    parser.addini(
        "fire_curve_servers",
        "directory of the TCP servers' public keys (SERVER_NAME.key), relative to the ini file",
        default="",
    )
    parser.addini(
        "fire_servers",
        "fire servers to attach to, NAME=ADDRESS per line; relative "
        "paths resolve against the ini file's directory",
        type="linelist",
        default=[],
    )
    parser.addini(
        "fire_spawn",
        "fire servers to start, NAME=MANAGE_PY[:python=…][:settings=…] per line",
        type="linelist",
        default=[],
    )
    group.addoption(
        "--fire-data-changes",
        choices=DATA_CHANGES_MODES,
        default=None,
        help="when to show the rows each test changed on every fire server: for failing "
        "tests (default), always, or off (not captured)",
    )
    parser.addini(
        "fire_data_changes",
        "when to show each test's data changes: fail (default), always or off",
        default="",
    )
    parser.addini(
        "fire_data_changes_exclude",
        "tables or columns left out of the data changes, one pattern per line "
        "(django_session, *.updated_at)",
        type="linelist",
        default=[],
    )
    group.addoption(
        "--fire-rebuild-db",
        action="store_true",
        default=False,
        help="have the spawned servers migrate their test databases again and save new "
        "templates, instead of cloning the templates there are (rebuild_db=on in each spec)",
    )
    parser.addini(
        "fire_rebuild_db",
        "rebuild the spawned servers' test database templates (as --fire-rebuild-db)",
        type="bool",
        default=False,
    )
    group.addoption(
        "--fire-contracts",
        metavar="DIR",
        default=None,
        help="record the HTTP calls between the run's services (through "
        "live_url_for(CONSUMER) URLs) as Pact V4 contracts, DIR/CONSUMER-PROVIDER.json",
    )
    parser.addini(
        "fire_contracts",
        "directory to record contracts in (as --fire-contracts), relative to the ini file",
        default="",
    )
    group.addoption(
        "--fire-verify",
        action="append",
        metavar="NAME=DIR",
        help="verify the run's server NAME against the Pact contracts in DIR whose provider "
        "it is (repeatable): one test item each, run after the collected tests",
    )
    # Empty defaults: pytest_fire.config fills in fire's (an unused plugin imports no fire).
    parser.addini("fire_timeout", "seconds to wait for each fire reply", default="")
    parser.addini(
        "fire_spin_wait",
        "seconds a fire call polls for its reply before it sleeps (0: sleep at once)",
        default="",
    )
    parser.addini(
        "fire_scope_wait", "seconds to wait for a server held by another client", default=""
    )
    parser.addini(
        "fire_heartbeat_timeout",
        "over TCP, seconds a ping to a fire server may go unanswered before its link is lost",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fire(servers=None, transactional=False, on_commit='run', exclude_changes=(), "
        "contract_state=None, contract_exact=()): choose the fire servers of a test, run "
        "it with real commits (flushed after), capture on_commit callbacks, leave "
        "tables/columns out of its data changes, name its contracts' provider state or "
        "body paths matched exactly",
    )
    if configured(config):
        activate(config)
        return
    from fire_origin import foreign_fire

    problem = foreign_fire()
    if problem is not None:  # Google's python-fire: harmless until the run uses fire
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"the fire plugin is off in this run: {problem} To silence this warning "
                "instead, disable the plugin with `-p no:fire`."
            ),
            stacklevel=2,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    deactivate(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    runner = active_runner(config)
    if runner is None or not runner.names:
        return []
    from fire.errors import FireError

    lines = [f"fire servers ({runner.config.source if runner.config.attached else 'spawned'}):"]
    for name, address in runner.config.attached.items():
        try:
            info = runner.remote(name).info()
        except FireError as exc:
            lines.append(f"  {name}: {address}: NOT AVAILABLE ({exc})")
            continue
        lines.append(f"  {name}: {address}: {_describe(info)}")
    for name, spec in runner.config.spawned.items():
        how = f"gateway {spec.gateway}" if spec.gateway else f"python {spec.python}"
        lines.append(
            f"  {name}: spawned from {spec.program} ({how}) on first use; "
            "its versions and databases follow the tests"
        )
    workers = getattr(config.option, "numprocesses", None)
    if workers and runner.config.attached:
        lines.append(
            "  note: attached servers are shared by the xdist workers; their tests take "
            "turns on each server (one test scope at a time)"
        )
    return lines


def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    if session.config.getoption("fire_verify"):
        from .verify import verification_items

        items.extend(verification_items(session))


def pytest_collection_finish(session: pytest.Session) -> None:
    """With --pdb, a remote failure's pdb opens in its service (after every plugin's
    pytest_configure: pytest registers its own post-mortem plugin there)."""
    if session.config.getvalue("usepdb"):
        install_remote_post_mortem(session.config)


def pytest_enter_pdb(config: pytest.Config, pdb: Any) -> None:
    """pytest's pdb steps over fire's client, and ``s`` on a fire call into the service."""
    step_into_services(pdb)


@pytest.hookimpl(trylast=True)  # after pytest-cov's, which starts an xdist worker's measuring
def pytest_sessionstart(session: pytest.Session) -> None:
    runner = active_runner(session.config)
    if runner is not None and runner.config.coverage is None:
        runner.config.coverage = run_coverage(session.config)


@pytest.hookimpl(wrapper=True, trylast=True)  # inside pytest-cov's, which combines after it
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Once the tests have run, with coverage on: stop the spawned servers, which write
    their data, and put it where pytest-cov combines it (`pytest_fire.coverage`)."""
    result = yield
    gather_contracts(session.config)  # what the servers recorded, before they stop
    runner = active_runner(session.config)
    if runner is not None and runner.config.coverage is not None and not runner.interrupted:
        finish_coverage(session.config, runner, _describe)
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    fail_the_run(session)
    write_contracts(session)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook
def pytest_testnodedown(node: Any, error: object) -> None:
    from_worker(node)
    coverage_from_worker(node)
    contracts_from_worker(node)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The spawned servers as the header describes attached ones (they start lazily),
    and the servers the run lost."""
    write_others(terminalreporter, config)
    contracts = summary_line(config)
    if contracts is not None:
        terminalreporter.write_line(contracts)
    for note in notes(config):
        terminalreporter.write_line(f"fire: warning: {note}", yellow=True)
    runner = active_runner(config)
    if runner is None or not runner.spawned:
        return
    from fire.errors import FireError

    terminalreporter.section("fire servers spawned")
    stopped = stopped_descriptions(config)
    lost = summary_lines(config)
    for name, server in runner.spawned.items():
        if name in lost:  # how it ended is its description
            terminalreporter.write_line(f"{name}: {server.address}: {lost[name]}")
            continue
        if server.failure is not None:  # its last lines: the cause is in them
            tail = [line.rstrip() for line in server.output[-10:] if line.strip()]
            said = "its last output:" if tail else "it printed nothing"
            terminalreporter.write_line(f"{name}: {server.address}: {server.failure}; {said}")
            for line in tail:
                terminalreporter.write_line(f"    {line}")
            continue
        if stopped is not None:  # stopped for coverage, described before
            said = stopped.get(name, "stopped")
            terminalreporter.write_line(f"{name}: {server.address}: {said}")
            continue
        try:
            described = _describe(runner.remote(name).info())
        except FireError as exc:
            described = f"NOT AVAILABLE ({str(exc).splitlines()[0]})"
        terminalreporter.write_line(f"{name}: {server.address}: {described}")


def _describe(info: dict[str, Any]) -> str:
    parts = [
        f"fire {info['fire_version']}",
        f"Python {info['python']}",
        f"protocol {info['protocol']}",
    ]
    django = info.get("extensions", {}).get("django")
    if django:
        parts.append(f"Django {django['django']}")
    databases = info.get("extensions", {}).get("scopes", {}).get("databases")
    if databases:
        parts.append("databases " + ", ".join(f"{a}={v}" for a, v in databases.items()))
    if django and django.get("test_databases_made"):  # cloned from templates, or built
        parts.append(f"test databases {django['test_databases_made']}")
    return ", ".join(parts)


@pytest.hookimpl(trylast=True)  # after the fixtures, so a server's start-up is not shown
def pytest_runtest_setup(item: pytest.Item) -> None:
    runner = active_runner(item.config)
    if runner is not None:
        item.stash[_output_marks] = {n: len(s.output) for n, s in runner.spawned.items()}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Once the test's fixtures are torn down, ask for the next test's scopes ahead.

    A server the next test does not use is asked whether the test's scope ended well
    (the next test's begin would have read it): a failure fails this teardown.
    """
    result = yield
    runner = active_runner(item.config)
    if runner is not None:
        next_test(runner, item, nextitem)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    note_lost_server(item, call)
    report = yield
    shorten(call, report)
    errors = sys.modules.get("fire.errors")  # a RemoteError means fire is imported already
    excinfo = call.excinfo
    if excinfo is not None and errors is not None and isinstance(excinfo.value, errors.RemoteError):
        error = excinfo.value
        report.sections.append((f"fire remote traceback ({error.server})", error.remote_traceback))
    if call.when == "setup" and excinfo is not None and report.failed:
        hint = scope_mismatch_hint(str(excinfo.value))
        if hint is not None:
            report.sections.append(("fire", hint))
    if call.when == "call":
        add_data_changes(item, report)
        collect_contracts(item, report)
    if call.when == "teardown" or (call.when == "call" and report.failed):
        runner = active_runner(item.config)
        marks = item.stash.get(_output_marks, {})
        if runner is not None:
            read = item.config.stash.setdefault(_breakpoints_read, {})
            for name, server in runner.spawned.items():
                lines = server.output[marks.get(name, 0) :]
                if lines and report.failed:
                    report.sections.append((f"fire server {name} output", "".join(lines)))
                if call.when == "teardown":
                    end = len(server.output)
                    warn_skipped_breakpoints(item, server.output[read.get(server, 0) : end])
                    read[server] = end  # by server: one spawned again has output of its own
    return report
