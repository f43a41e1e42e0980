"""``python -m bench``: run every registered row and print the table; always exits 0.

A benchmark reports, it does not fail a build: a row that cannot run (a server that
does not start) prints why, and the other rows still run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import registry, report, timing

#: Rounds (one block of every row each): odd, so the median is one round's figure.
#: 21 rounds of 1000 calls take about ten seconds here, and steady the ratios.
DEFAULT_BLOCKS = 21


def _import_cases(extra: list[str]) -> None:
    """Import the rows: ``bench/cases*.py`` first, then the modules named with --cases."""
    package = Path(__file__).parent
    for module in sorted(pkgutil.iter_modules([str(package)]), key=lambda m: m.name):
        if module.name.startswith("cases"):
            importlib.import_module(f"{__package__}.{module.name}")
    for name in extra:
        importlib.import_module(name)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--blocks",
        type=int,
        default=DEFAULT_BLOCKS,
        help=f"timed blocks per row (default {DEFAULT_BLOCKS})",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every row's calls per block (0.1 for a quick look)",
    )
    parser.add_argument(
        "-k",
        dest="only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only rows whose name contains TEXT (and the floor)",
    )
    parser.add_argument(
        "--cases",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE too, for the rows it registers",
    )
    return parser.parse_args(argv)


def _run_section(part: registry.Section, env: registry.Env, only: list[str]) -> str:
    """A section's text, or why it could not run (the other sections still do)."""
    try:
        return part.run(env, only)
    except Exception:
        traceback.print_exc()
        return f"{part.name}: could not run (see above)"


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    started = time.monotonic()
    try:
        _import_cases(options.cases)
        cases = [
            c
            for c in registry.registered()
            if c.floor or not options.only or any(t in c.name for t in options.only)
        ]
        with tempfile.TemporaryDirectory(prefix="fire-bench-", dir="/tmp") as tmp:
            with contextlib.ExitStack() as stack:
                env = registry.Env(Path(tmp), stack)
                results = timing.run(cases, env, max(1, options.blocks), options.scale)
            # The rows' servers (the rivals' too) have stopped: the sections time whole
            # test runs, which an idle server polling in the background would disturb.
            print(
                f"fire bench (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, ipc://): "
                f"median µs per call, median of {options.blocks} block medians; "
                "x floor: median of per-round ratios"
            )
            print(report.table(results))
            for spec in registry.comparisons():
                text = report.comparison(spec, results)
                if text:
                    print(f"\n{text}", flush=True)
            sections_dir = Path(tmp) / "s"
            sections_dir.mkdir()
            with contextlib.ExitStack() as stack:
                env = registry.Env(sections_dir, stack)
                for part in registry.sections():
                    text = _run_section(part, env, options.only)
                    if text:
                        print(f"\n{text}", flush=True)
        for line in registry.notes():
            print(f"note: {line}")
    except Exception:
        traceback.print_exc()
        print("bench: could not complete (see above)", file=sys.stderr)
    print(f"({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
