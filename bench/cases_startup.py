"""What the installed but unused pytest plugin adds to every pytest start-up.

Two rows, run round by round like every row: ``pytest --collect-only`` of one trivial
test with the fire plugin (loaded through its entry point, no server configured) and
without it (``-p no:fire``). The comparison table prints their paired difference in ms
against the budget. Faker's plugin (factory_boy's, ~1 s) is off in both runs: it is
not fire's cost and its noise would hide a few ms.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from .registry import Call, Comparison, Env, case, compare

#: The budget the plugin's cost is judged against, ms per pytest start-up.
BUDGET_MS = 20.0
WITHOUT = "pytest start-up: --collect-only, -p no:fire"
WITH = "pytest start-up: --collect-only, fire plugin unused"
TRIVIAL_TEST = "def test_trivial():\n    assert 1 + 1 == 2\n"
#: Settings of the calling environment that would configure or load plugins.
UNSET = ("FIRE_SERVERS", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")


def _project(env: Env) -> Path:
    """A directory with one trivial test and an ini file of its own (its rootdir)."""
    project = env.tmpdir / "startup"
    if not project.exists():
        project.mkdir()
        (project / "pytest.ini").write_text("[pytest]\n")
        (project / "test_trivial.py").write_text(TRIVIAL_TEST)
    return project


def _collect_only(env: Env, *options: str) -> Call:
    project = _project(env)
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:faker", *options]
    environ = {k: v for k, v in os.environ.items() if k not in UNSET}

    def start_pytest() -> None:
        subprocess.run(argv, cwd=project, env=environ, check=True, capture_output=True)

    return start_pytest


@case(WITHOUT, calls=1, order=90, in_table=False)
def without_plugin(env: Env) -> Iterator[Call]:
    yield _collect_only(env, "-p", "no:fire")


@case(WITH, calls=1, order=91, in_table=False)
def with_plugin(env: Env) -> Iterator[Call]:
    yield _collect_only(env)


compare(
    Comparison(
        title=(
            "pytest start-up with the fire plugin installed but unused, per process: the "
            "median of per-round differences\n"
            f"(budget {BUDGET_MS:.0f} ms; both runs collect one trivial test, with "
            "-p no:faker)"
        ),
        base_label="-p no:fire ms",
        other_label="with plugin ms",
        ratio_label="plugin adds ms",
        pairs=(("pytest --collect-only", WITHOUT, WITH),),
        difference=True,
        unit=1000.0,
        budget=BUDGET_MS,
    )
)
