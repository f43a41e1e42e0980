"""The typical full-system test, run as real test runs: fire against pytest-django's live_server.

The test: a factory call in the service, one GET of its live HTTP server's
``/products/`` (with requests, a new connection, as tests do), one ORM assert
(``Product.objects.count() == 1``). It is written four ways, each a generated test
module of N copies run by pytest in a subprocess of its own:

- fire, pytest plugin (``fire_remote`` fixture), against the shop's runfireserver;
- fire, ``FireTestCase`` (unittest, run by pytest), against the same server;
- pytest-django's ``live_server`` (one process, a transaction committed and every table
  flushed per test), the cost fire is judged against;
- the yardstick: Django's ``TestCase`` (rolled back) and its test client, one process,
  no HTTP at all.

Each runs with N = 20 and N = 120 copies; a conftest in the generated project notes
when each test has finished, and the figure is the marginal cost per test,
``(span(120) - span(20)) / 100``, so start-up, database creation and the first test's
set-up cancel out. Every variant runs once per round, three rounds in turn, each round
starting one variant later: a figure is the median over the rounds, and live_server ÷
fire the median of per-round ratios.
On both SQLite (in-memory) and PostgreSQL (skipped, with a note, where nothing listens
at 127.0.0.1:5432).

Then one fire test is taken apart: its steps timed one by one in this process, in a
loop, on the same server (scope begin and end, each call, the GET); the runner's share
is the pytest figure minus their sum. The factory call and the ORM call are also
compared with the same calls made in the service's own process plus one round trip of
the floor (a raw DEALER/ROUTER echo): the target is 1.3x.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fire.net.transport import DEFAULT_SPIN_WAIT

from . import shop
from .echo import EchoClient, echo_endpoint
from .registry import REPO_ROOT, Env, note, section
from .system_probe import median_us

SMALL, LARGE = 20, 120
#: Rounds of every variant in turn: a figure is the median over the rounds, a ratio the
#: median of per-round ratios, so a slow spell of the machine hits one round of every
#: variant rather than all of one variant (one pair of runs per variant was not enough
#: here: the same figure moved 3x between runs).
ROUNDS = 3
#: The targets of issue 9: live_server ÷ fire, per backend; a DB call ÷ (in-process + floor).
TARGETS = {"sqlite": 5.0, "postgres": 15.0}
DB_CALL_TARGET = 1.3
#: Loop rounds of the phase breakdown (median per step).
BREAKDOWN_ROUNDS = 200
DJANGO_PROJECT = REPO_ROOT / "tests" / "djproject"

_FIRE_BODY = """\
    {factories}.ProductFactory(name="bench")
    listed = requests.get(PRODUCTS, timeout=10).json()["products"]
    assert [p["name"] for p in listed] == ["bench"]
    assert {models}.Product.objects.count() == 1
"""
_DJANGO_BODY = """\
    ProductFactory(name="bench")
    listed = {get}.json()["products"]
    assert [p["name"] for p in listed] == ["bench"]
    assert Product.objects.count() == 1
"""


#: The fire variants' body, on the shop's modules; braces doubled: each copy is formatted.
_FIRE_SHOP_BODY = (
    _FIRE_BODY.format(
        factories='shop.module("shop.factories")', models='shop.module("shop.models")'
    )
    .replace("{", "{{")
    .replace("}", "}}")
)


@dataclass(frozen=True)
class Variant:
    """One way of writing the test: a module header, one copy's text, pytest options."""

    key: str
    label: str
    header: str
    copy: str
    options: tuple[str, ...]
    fire: bool

    def module(self, copies: int) -> str:
        return self.header + "".join(self.copy.format(i=i) for i in range(copies))


def _indent(body: str) -> str:
    return "".join("    " + line if line.strip() else line for line in body.splitlines(True))


VARIANTS = (
    Variant(
        "fire-pytest",
        "fire, pytest plugin",
        'import os\n\nimport requests\n\nPRODUCTS = os.environ["BENCH_LIVE_URL"] + "/products/"\n',
        "\n\ndef test_typical_{i}(fire_remote):\n"
        '    shop = fire_remote("shop")\n' + _FIRE_SHOP_BODY,
        ("-p", "no:django"),
        True,
    ),
    Variant(
        "fire-testcase",
        "fire, FireTestCase",
        "import os\n\nimport requests\n\nfrom fire.testing import FireTestCase\n\n"
        'PRODUCTS = os.environ["BENCH_LIVE_URL"] + "/products/"\n\n\n'
        "class TypicalTest(FireTestCase):\n"
        '    fire_servers = {"shop": os.environ["BENCH_FIRE_ADDRESS"]}\n',
        "\n    def test_typical_{i}(self):\n"
        '        shop = self.fire_remotes["shop"]\n' + _indent(_FIRE_SHOP_BODY),
        ("-p", "no:django"),
        True,
    ),
    Variant(
        "live-server",
        "pytest-django live_server",
        "import requests\n\nfrom shop.factories import ProductFactory\n"
        "from shop.models import Product\n",
        "\n\ndef test_typical_{i}(live_server):\n"
        + _DJANGO_BODY.format(get='requests.get(live_server.url + "/products/", timeout=10)')
        .replace("{", "{{")
        .replace("}", "}}"),
        ("-p", "no:fire", "--ds", "bench_system_settings"),
        False,
    ),
    Variant(
        "testcase-client",
        "Django TestCase + test client (no HTTP)",
        "from django.test import TestCase\n\nfrom shop.factories import ProductFactory\n"
        "from shop.models import Product\n\n\nclass TypicalTest(TestCase):\n",
        "\n    def test_typical_{i}(self):\n"
        + _indent(_DJANGO_BODY.format(get='self.client.get("/products/")'))
        .replace("{", "{{")
        .replace("}", "}}"),
        ("-p", "no:fire", "--ds", "bench_system_settings"),
        False,
    ),
)

#: Notes when each test has finished; the span from the first to the last is the figure.
_TIMING_CONFTEST = """\
import json
import os
import time

_finished = []


def pytest_runtest_logfinish(nodeid, location):
    _finished.append(time.perf_counter())


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["BENCH_SPAN_FILE"], "w") as out:
        json.dump({"tests": len(_finished), "span": _finished[-1] - _finished[0]}, out)
"""
#: pytest-django's own test databases on PostgreSQL get a per-run name, as fire's do.
_DJANGO_SETTINGS = """\
import os

from djproject.settings import *  # noqa: F403

for _alias, _database in DATABASES.items():  # noqa: F405
    if _database["ENGINE"].endswith("postgresql"):
        _database["TEST"] = {"NAME": f"test_{_database['NAME']}_{os.environ['BENCH_DB_SUFFIX']}"}
"""


def _project(env: Env) -> Path:
    project = env.tmpdir / "system"
    if not project.exists():
        project.mkdir()
        (project / "pytest.ini").write_text("[pytest]\n")
        (project / "conftest.py").write_text(_TIMING_CONFTEST)
        (project / "bench_system_settings.py").write_text(_DJANGO_SETTINGS)
    return project


def _environ(env: Env, backend: str, server: shop.Shop | None) -> dict[str, str]:
    project = _project(env)
    unset = ("FIRE_SERVERS", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "DJANGO_SETTINGS_MODULE")
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    paths = [str(project), str(DJANGO_PROJECT), str(REPO_ROOT)]
    environ["PYTHONPATH"] = os.pathsep.join(paths)
    data_dir = env.tmpdir / f"system-{backend}"
    data_dir.mkdir(exist_ok=True)
    environ.update(
        DJFIRE_TEST_DB=backend,
        DJFIRE_TEST_DIR=str(data_dir),
        BENCH_DB_SUFFIX=f"djbench{os.getpid()}",  # not the fire server's (bench<pid>)
    )
    if server is not None:
        environ.update(
            FIRE_SERVERS=f"shop={server.address}",
            BENCH_FIRE_ADDRESS=server.address,
            BENCH_LIVE_URL=server.live_url,
        )
    return environ


def _run(env: Env, variant: Variant, backend: str, copies: int, server: shop.Shop | None) -> float:
    """Seconds from the first test's end to the last's, in a pytest run of `copies` tests."""
    project = _project(env)
    module = project / f"test_{variant.key.replace('-', '_')}_{backend}_{copies}.py"
    module.write_text(variant.module(copies))
    span_file = project / "span.json"
    span_file.unlink(missing_ok=True)
    environ = {**_environ(env, backend, server), "BENCH_SPAN_FILE": str(span_file)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:faker"]
    argv += [*variant.options, module.name]
    done = subprocess.run(argv, cwd=project, env=environ, capture_output=True, text=True)
    if done.returncode != 0 or not span_file.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise RuntimeError(f"pytest exited {done.returncode}:\n{tail}")
    result = json.loads(span_file.read_text())
    if result["tests"] != copies:
        raise RuntimeError(f"{result['tests']} tests ran, not {copies}")
    return result["span"]


def _marginal_ms(env: Env, variant: Variant, backend: str, server: shop.Shop | None) -> float:
    small = _run(env, variant, backend, SMALL, server)
    large = _run(env, variant, backend, LARGE, server)
    return (large - small) / (LARGE - SMALL) * 1000


@dataclass
class Phases:
    """Median and mean µs of each step of one fire test, timed in a loop (and in-process).

    The mean is what a run of many tests pays (the pytest figures are means); the median
    shows the step without the machine's slow spells.
    """

    steps: dict[str, float]
    means: dict[str, float]
    in_process: dict[str, float]
    remote_alone: dict[str, float]
    floor: float
    floor_sleeping: float

    @property
    def total(self) -> float:
        return sum(self.means.values())


def _breakdown(env: Env, server: shop.Shop) -> Phases:
    import requests

    remote, products = server.remote, f"{server.live_url}/products/"
    steps: dict[str, Callable[[], object]] = {}
    made: dict[str, object] = {}
    steps["begin_scope (test)"] = remote.begin_scope
    steps['module("shop.factories")'] = lambda: made.update(f=remote.module("shop.factories"))
    steps['ProductFactory(name="bench")'] = lambda: made["f"].ProductFactory(name="bench")  # type: ignore[attr-defined]
    steps["GET /products/ (requests, new connection)"] = lambda: requests.get(
        products, timeout=10
    ).json()
    steps['module("shop.models")'] = lambda: made.update(m=remote.module("shop.models"))
    steps["Product.objects.count()"] = lambda: made["m"].Product.objects.count()  # type: ignore[attr-defined]
    steps["end_scope"] = remote.end_scope
    samples: dict[str, list[int]] = {name: [] for name in steps}
    clock = time.perf_counter_ns
    for _ in range(BREAKDOWN_ROUNDS):
        for name, step in steps.items():
            start = clock()
            step()
            samples[name].append(clock() - start)
    # The DB calls alone, each in a loop of itself, as the in-process side is timed.
    alone = {
        "factory": steps['ProductFactory(name="bench")'],
        "count": steps["Product.objects.count()"],
    }
    with remote.scope():
        remote_alone = {key: median_us(call, BREAKDOWN_ROUNDS) for key, call in alone.items()}
        in_process = remote.module("bench.system_probe").in_process_us(BREAKDOWN_ROUNDS)
    return Phases(
        {name: statistics.median(s) / 1000 for name, s in samples.items()},
        {name: statistics.mean(s) / 1000 for name, s in samples.items()},
        in_process,
        remote_alone,
        _floor_us(env),
        _floor_us(env, spin_wait=0),
    )


#: The data-change capture's budget: its share of the typical test when on (issue 10).
CAPTURE_BUDGET = 0.10
CAPTURE_BLOCKS, CAPTURE_TESTS = 15, 20


def _capture_cost(server: shop.Shop) -> tuple[float, float]:
    """The typical test's µs with the data-change capture off and on, alternating blocks.

    Medians of per-block means; the same loop as the breakdown, whole tests at a time.
    """
    import requests

    remote, products = server.remote, f"{server.live_url}/products/"

    def typical(capture: bool) -> None:
        with remote.scope(data_changes=capture):
            remote.module("shop.factories").ProductFactory(name="bench")
            requests.get(products, timeout=10).json()
            remote.module("shop.models").Product.objects.count()

    blocks: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(CAPTURE_BLOCKS):
        for capture in (False, True):
            start = time.perf_counter_ns()
            for _ in range(CAPTURE_TESTS):
                typical(capture)
            blocks[capture].append((time.perf_counter_ns() - start) / CAPTURE_TESTS / 1000)
    return statistics.median(blocks[False]), statistics.median(blocks[True])


def _capture_line(server: shop.Shop) -> str:
    off, on = _capture_cost(server)
    share = on / off - 1
    verdict = "ok" if share <= CAPTURE_BUDGET else "ABOVE BUDGET"
    return (
        f"  data-change capture, the typical test in a loop: off {off:6.0f} µs, on "
        f"{on:6.0f} µs: {share:+.1%} (budget ≤ {CAPTURE_BUDGET:.0%}) {verdict}"
    )


#: Contract recording's budget: its share of the typical test when on (issue 24).
CONTRACTS_BUDGET = 0.10


#: Pairs of typical tests (one off, one on, in turn) the recording's share is the median of.
CONTRACTS_PAIRS = 300


def _contracts_cost(env: Env, server: shop.Shop) -> tuple[float, float, float]:
    """The typical test's median µs with contract recording off and on, and the median
    of the per-pair ratios on ÷ off.

    Off: the GET goes to the live URL (what ``live_url_for`` is without recording). On:
    to the consumer's recording listener, and the test's end takes its interactions and
    groups them, as the runner does (`fire.contracts.record.Recording.collect`). Both
    with the data-change capture on, as a run has it by default (the recording reads
    it). The two run in pairs, each pair in turn starting with the other, so a slow
    spell of a shared machine (seconds long, where a test takes milliseconds) lands
    on both sides of a pair: blocks of 20 tests moved the share from -30 % to +60 %
    under another run's load.
    """
    import requests

    from fire.contracts.record import Recording

    remote = server.remote
    recording = Recording(env.tmpdir / "contracts")
    recording.providers.add("shop")  # as live_url_for does
    urls = {
        False: f"{server.live_url}/products/",
        True: remote.call_extension("live_url_for", "bench") + "/products/",
    }

    def typical(record: bool) -> float:
        start = time.perf_counter_ns()
        with remote.scope(data_changes=True):
            remote.module("shop.factories").ProductFactory(name="bench")
            requests.get(urls[record], timeout=10).json()
            remote.module("shop.models").Product.objects.count()
            if record:
                recording.collect({"shop": remote}, "bench::test_typical", passed=True)
        return (time.perf_counter_ns() - start) / 1000

    for _ in range(20):  # warm-up: both listeners' threads, the connections
        typical(False), typical(True)
    times: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    for pair in range(CONTRACTS_PAIRS):
        order = (False, True) if pair % 2 else (True, False)
        measured = {record: typical(record) for record in order}
        for record, us in measured.items():
            times[record].append(us)
        ratios.append(measured[True] / measured[False])
    return (
        statistics.median(times[False]),
        statistics.median(times[True]),
        statistics.median(ratios),
    )


def _contracts_line(env: Env, server: shop.Shop) -> str:
    off, on, ratio = _contracts_cost(env, server)
    share = ratio - 1
    verdict = "ok" if share <= CONTRACTS_BUDGET else "ABOVE BUDGET"
    return (
        f"  contract recording, the typical test, {CONTRACTS_PAIRS} pairs: off {off:6.0f} µs, "
        f"on {on:6.0f} µs: {share:+.1%} (median of the pairs' ratios; budget ≤ "
        f"{CONTRACTS_BUDGET:.0%}) {verdict}"
    )


def _floor_us(env: Env, spin_wait: float = DEFAULT_SPIN_WAIT) -> float:
    """The echo's median round trip, its client waiting as fire's does or (0) sleeping."""
    client = EchoClient(echo_endpoint(env), spin_wait)
    try:
        for _ in range(200):
            client.call()
        clock = time.perf_counter_ns
        samples = []
        for _ in range(1000):
            begin = clock()
            client.call()
            samples.append(clock() - begin)
        return statistics.median(samples) / 1000
    finally:
        client.close()


def _wanted(only: list[str], *words: str) -> bool:
    name = " ".join(("system", *words))
    return not only or any(term in name for term in only)


def _backend_report(env: Env, backend: str, only: list[str]) -> list[str]:
    keys = [v.key for v in VARIANTS] + ["breakdown", "capture", "contracts"]
    if not any(_wanted(only, backend, key) for key in keys):
        return []
    server = shop.shop(env, backend)
    wanted = [v for v in VARIANTS if _wanted(only, backend, v.key)]
    rounds: dict[str, list[float]] = {v.key: [] for v in wanted}
    failed: dict[str, str] = {}
    for round_number in range(ROUNDS if wanted else 0):  # -k capture: no variant
        # Each round starts one variant later: no variant always runs right after the same
        # one (live_server's flushes leave PostgreSQL busy for a while after them).
        shift = round_number % len(wanted)
        for variant in wanted[shift:] + wanted[:shift]:
            if variant.key in failed:
                continue
            try:
                rounds[variant.key].append(
                    _marginal_ms(env, variant, backend, server if variant.fire else None)
                )
            except Exception as exc:
                failed[variant.key] = f"failed: {exc}"
    figures: dict[str, float | str] = {
        key: failed.get(key) or statistics.median(values) for key, values in rounds.items()
    }
    lines = [f"{shop.BACKENDS[backend]}:"]
    live = rounds.get("live-server") if "live-server" not in failed else None
    for variant in wanted:
        figure = figures[variant.key]
        if isinstance(figure, str):
            lines.append(f"  {variant.label:<42} {figure}")
            continue
        spread = rounds[variant.key]
        text = f"  {variant.label:<42} {figure:7.2f} ms/test ({min(spread):.2f}..{max(spread):.2f})"
        if variant.fire and live:
            ratios = [slow / fast for slow, fast in zip(live, spread, strict=True)]
            ratio, target = statistics.median(ratios), TARGETS[backend]
            verdict = "ok" if ratio >= target else "BELOW TARGET"
            text += (
                f"   live_server ÷ this {ratio:5.2f} ({min(ratios):.2f}..{max(ratios):.2f})"
                f"  (target ≥ {target:g}) {verdict}"
            )
        lines.append(text)
    if _wanted(only, backend, "breakdown"):
        lines += _breakdown_lines(env, server, figures)
    if _wanted(only, backend, "capture"):
        lines.append(_capture_line(server))
    if _wanted(only, backend, "contracts"):
        lines.append(_contracts_line(env, server))
    return lines


def _breakdown_lines(env: Env, server: shop.Shop, figures: dict[str, float | str]) -> list[str]:
    phases = _breakdown(env, server)
    lines = [
        f"  one fire test by phase, µs over {BREAKDOWN_ROUNDS} loop rounds:"
        f"\n    {'':<44} {'median':>8} {'mean':>8}"
    ]
    lines += [
        f"    {name:<44} {us:8.0f} {phases.means[name]:8.0f}" for name, us in phases.steps.items()
    ]
    lines.append(
        f"    {'sum of the steps':<44} {sum(phases.steps.values()):8.0f} {phases.total:8.0f}"
    )
    for key in ("fire-pytest", "fire-testcase"):
        figure = figures.get(key)
        if isinstance(figure, float):
            label = f"runner's share ({key}: per test - sum)"
            lines.append(f"    {label:<44} {'':>8} {figure * 1000 - phases.total:8.0f}")
    lines.append(f"    {'floor round trip (raw DEALER/ROUTER echo)':<44} {phases.floor:8.0f}")
    label = "  the same, sleeping in recv (spin_wait=0)"
    lines.append(f"    {label:<44} {phases.floor_sleeping:8.0f}")
    lines.append(
        "    a DB call ÷ (the same ORM call in-process + floor), each timed in a loop of itself "
        "(in the typical test's loop above, the steps around a call leave it slower):"
    )
    for step, key in (
        ('ProductFactory(name="bench")', "factory"),
        ("Product.objects.count()", "count"),
    ):
        local, remote = phases.in_process[key], phases.remote_alone[key]
        ratio = remote / (local + phases.floor)
        verdict = "ok" if ratio <= DB_CALL_TARGET else "ABOVE TARGET"
        lines.append(
            f"      {step:<30} fire {remote:6.0f} µs; in-process {local:6.0f} µs + floor: "
            f"{ratio:4.2f} (target ≤ {DB_CALL_TARGET:g}) {verdict}"
        )
    return lines


def system_report(env: Env, only: list[str]) -> str:
    """The section's text: per backend, each variant's marginal ms/test and the ratios."""
    if not _wanted(
        only,
        "sqlite",
        "postgres",
        "fire-pytest",
        "live-server",
        "breakdown",
        "capture",
        "contracts",
    ):
        return ""
    backends = ["sqlite"]
    if shop.postgres_available():
        backends.append("postgres")
    else:
        host, port = shop.POSTGRES
        note(f"full-system test on PostgreSQL skipped: nothing listens at {host}:{port}")
    started = time.monotonic()
    lines = [
        "the typical full-system test (factory call + GET /products/ + ORM count), marginal "
        f"cost per test: (span({LARGE}) - span({SMALL})) / {LARGE - SMALL}, the median of "
        f"{ROUNDS} rounds of every variant in turn (their range in brackets),\n"
        "each a pytest run in a subprocess; live_server ÷ fire is the speed-up over "
        "pytest-django's live_server"
    ]
    for backend in backends:
        lines += _backend_report(env, backend, only)
    lines.append(f"  ({time.monotonic() - started:.0f} s)")
    return "\n".join(lines)


section("system", system_report)
