"""The registry of bench rows, and the environment a row sets itself up in.

A row is a `Case`: a name plus a setup that yields the zero-argument callable to time.
The setup is a context manager so a row can start a server or open a scope and have it
cleaned up whatever happens. Rows register themselves at import time::

    from bench import case

    @case("djfire: call in an isolated test scope", target=1.3, order=50)
    def scoped_call(env):
        remote = env.fire_remote()          # or env.spawn(...) a server of your own
        op = remote.module("operator")
        with remote.scope():
            yield lambda: op.add(1, 2)

`python -m bench` imports every ``bench/cases*.py`` module, plus any module named with
``--cases MODULE`` (so djfire may keep its rows in its own package).

Two rows measuring the same thing two ways (a test scope rolled back, or committed and
flushed) are set side by side with `compare`: the report prints their ratio, paired
per round like the floor ratio. `note` adds a line under the tables (rows skipped, and why).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fire.runners.supervise import READY

from . import servers

__all__ = [
    "Case",
    "Comparison",
    "Env",
    "Section",
    "case",
    "compare",
    "comparisons",
    "note",
    "notes",
    "register",
    "registered",
    "section",
    "sections",
]

#: What a row's setup yields: the call that is timed, once per sample.
Call = Callable[[], object]
Setup = Callable[["Env"], contextlib.AbstractContextManager[Call]]

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    """One row of the table.

    `calls` is the number of timed calls per block: slow rows (a 10,000-item list) take
    fewer, so the whole run stays within a couple of minutes. `target` is the largest
    acceptable ratio to the floor (None: reported, not judged). `floor` marks the one
    row every ratio is taken against. Rows print in `order`, then registration order.
    A row with `in_table` False (a whole process start, not a call) prints only in its
    comparison table, and in the main table when it failed, to say why.
    """

    name: str
    setup: Setup
    calls: int = 1000
    target: float | None = None
    floor: bool = False
    order: int = 100
    in_table: bool = True


_CASES: dict[str, Case] = {}


def register(new: Case) -> Case:
    """Add a row; a second row with the same name replaces the first (re-imports are fine)."""
    _CASES[new.name] = new
    return new


def case(
    name: str,
    *,
    calls: int = 1000,
    target: float | None = None,
    floor: bool = False,
    order: int = 100,
    in_table: bool = True,
) -> Callable[[Callable[[Env], Iterator[Call]]], Case]:
    """Decorate a one-``yield`` generator ``setup(env)`` to register it as a row."""

    def decorate(generator: Callable[[Env], Iterator[Call]]) -> Case:
        setup = contextlib.contextmanager(generator)
        return register(
            Case(
                name,
                setup,
                calls=calls,
                target=target,
                floor=floor,
                order=order,
                in_table=in_table,
            )
        )

    return decorate


def registered() -> list[Case]:
    """Every registered row, in print order (sorted is stable: ties keep import order)."""
    return sorted(_CASES.values(), key=lambda c: c.order)


@dataclass(frozen=True)
class Comparison:
    """Pairs of rows set side by side in a table of their own: `other` ÷ `base` per round.

    `pairs` holds ``(what, base row name, other row name)``; the labels head the columns
    (e.g. "rollback µs", "flush µs", "flush ÷ rollback"), `title` says how to read it.
    A comparison of costs that add up (a plugin's share of a start-up) shows the paired
    difference instead, `other` - `base` per round, judged against `budget`; `unit`
    divides the µs figures for display (1000: ms).
    """

    title: str
    base_label: str
    other_label: str
    ratio_label: str
    pairs: tuple[tuple[str, str, str], ...]
    difference: bool = False
    unit: float = 1.0
    budget: float | None = None


_COMPARISONS: dict[str, Comparison] = {}
_NOTES: list[str] = []


def compare(comparison: Comparison) -> Comparison:
    """Add a comparison table; one with the same title replaces the first."""
    _COMPARISONS[comparison.title] = comparison
    return comparison


def comparisons() -> list[Comparison]:
    """Every comparison table, in registration order."""
    return list(_COMPARISONS.values())


def note(text: str) -> None:
    """Add a line printed under the tables (once, however often it is added)."""
    if text not in _NOTES:
        _NOTES.append(text)


def notes() -> list[str]:
    return list(_NOTES)


@dataclass(frozen=True)
class Section:
    """A report of its own, printed after the tables: measured its own way, not in blocks.

    `run(env, only)` measures and returns the text to print; `only` is the run's ``-k``
    terms (empty: everything), for the section to select its parts by. Whole test runs
    in subprocesses (`bench.cases_system`) are measured this way.
    """

    name: str
    run: Callable[[Env, list[str]], str]


_SECTIONS: dict[str, Section] = {}


def section(name: str, run: Callable[[Env, list[str]], str]) -> Section:
    """Add a section; one with the same name replaces the first."""
    _SECTIONS[name] = Section(name, run)
    return _SECTIONS[name]


def sections() -> list[Section]:
    """Every section, in registration order."""
    return list(_SECTIONS.values())


class Env:
    """What rows share: a fresh temporary socket directory and the servers started in it.

    Servers and connections are started on first use and closed when the run ends, so
    rows that need the plain fire server share one, and a row that is filtered out
    starts nothing.
    """

    def __init__(self, tmpdir: Path, stack: contextlib.ExitStack) -> None:
        self.tmpdir = tmpdir
        self.stack = stack
        self._shared: dict[str, Any] = {}

    def endpoint(self, name: str) -> str:
        """An ``ipc://`` endpoint in the run's socket directory (the transport every row uses)."""
        return f"ipc://{self.tmpdir / name}"

    def server_environ(self) -> dict[str, str]:
        """The environment for server processes: the repo first on PYTHONPATH (bench.targets)."""
        environ = dict(os.environ)
        paths = [str(REPO_ROOT), *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
        environ["PYTHONPATH"] = os.pathsep.join(paths)
        return environ

    def spawn(
        self,
        argv: list[str],
        ready: str = READY,
        *,
        cwd: Path | None = None,
        environ: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> servers.Process:
        """Start a server process; return once it prints a line starting with `ready`
        (by default, a fire server's ready line).

        It is stopped when the run ends. `environ` adds to `server_environ()` (djfire
        rows set DJANGO_SETTINGS_MODULE this way); `cwd` is where it runs (a Django
        project's directory for ``manage.py runfireserver``).
        """
        process = servers.start(
            argv, ready, {**self.server_environ(), **(environ or {})}, cwd, timeout
        )
        self.stack.callback(process.stop)
        return process

    def shared(self, key: str, build: Callable[[], Any]) -> Any:
        """`build()` once per run, its value (or its error) shared by every row that asks.

        Rows that compare two ways of doing one thing use one server this way; a server
        that fails to start fails each row that needs it without being started again.
        """
        if key not in self._shared:
            try:
                self._shared[key] = build()
            except Exception as exc:
                self._shared[key] = exc
        value = self._shared[key]
        if isinstance(value, Exception):
            raise value
        return value

    def fire_remote(self, **options: Any) -> Any:
        """A `fire.Remote` connected to a plain ``python -m fire serve`` (started once).

        One connection per set of `options` (``fire.connect``'s: ``spin_wait=0``).
        """
        import fire

        def start() -> str:
            path = self.tmpdir / "fire.sock"
            self.spawn([sys.executable, "-m", "fire", "serve", str(path)])
            return f"ipc://{path}"

        address = self.shared("fire-server", start)
        # Closed before the server stops (ExitStack unwinds in reverse).
        return self.shared(
            f"fire-remote {sorted(options.items())}",
            lambda: self.stack.enter_context(fire.connect(address, **options)),
        )
