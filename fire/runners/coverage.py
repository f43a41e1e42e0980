"""Coverage of the spawned servers: what each one measures, and its data into the run's.

When the test run measures coverage (pytest-cov's ``--cov``), each spawned server runs
under ``coverage run --parallel-mode`` (`fire.runners.supervise`), in whatever
interpreter and on whatever host it runs, and writes its data file as it stops. The
supervisor sends the file back as bytes, so a server on another host needs no shared
directory. This module chooses each server's options from the run's (the sources that
concern the server, branch measurement, the configuration file), and at the end of a run
writes the files the servers sent beside the run's data file, where the run's combine
reads them (pytest-cov's, or ``coverage combine``): the ``[paths]`` of the run's
configuration map a server's paths (another virtualenv, another host) to the project's,
as they do for any parallel data. It imports nothing of coverage.py: a data file is
bytes here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

from .spawn import ServerSpec, SpawnedServer

__all__ = ["CoverageSettings", "save_server_data", "server_options"]

_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True)
class CoverageSettings:
    """How the test run measures coverage, as far as its servers need to know.

    `data_file` is the run's data file (absolute); `sources` the run's sources,
    directories made absolute and module names as given, or None to measure all the
    project's code; `branch` whether branches are measured (data files of both kinds
    cannot be combined); `config_file` the run's coverage configuration file, if any;
    `paths` its ``[paths]`` section; `base` the directory relative paths are taken from.
    """

    data_file: str
    sources: list[str] | None = None
    branch: bool = False
    config_file: str | None = None
    paths: Mapping[str, list[str]] = field(default_factory=dict)
    base: str = "."


def server_options(settings: CoverageSettings, spec: ServerSpec) -> list[str] | None:
    """The ``coverage run`` options that measure the server of `spec`, or None when
    none of the run's sources concerns it (it then runs without coverage, at no cost).

    A server measures the run's sources that are its directory (the program's) or lie
    in it, or its directory where a source holds it, also through the ``[paths]``
    aliases of a source (the same code elsewhere: a copy in another virtualenv, or on
    another host); module names as they are; all of its directory with ``--cov``
    alone. The run's configuration file goes along on this host (omit, exclude,
    plugins), not to another.
    """
    root = str(PurePath(spec.program).parent)
    sources = _sources_for(settings, root)
    if not sources:
        return None
    options = [f"--source={','.join(sources)}"]
    if settings.branch:
        options.append("--branch")
    if settings.config_file and not spec.is_remote:
        options.append(f"--rcfile={settings.config_file}")
    return options


def _sources_for(settings: CoverageSettings, root: str) -> list[str]:
    if settings.sources is None:
        return [root]
    found: list[str] = []
    for source in settings.sources:
        if not os.path.isabs(source):  # a module name: measured where the server has it
            found.append(source)
            continue
        for place in (source, *_aliases(settings, source)):
            if _within(place, root):
                found.append(place)
            elif _within(root, place):
                found.append(root)
    return list(dict.fromkeys(found))


def _aliases(settings: CoverageSettings, source: str) -> Iterator[str]:
    """Where `source` is found elsewhere, by the ``[paths]`` entries (each: the
    project's path first, then other places of the same files; wildcards skipped)."""
    for patterns in settings.paths.values():
        if not patterns:
            continue
        canonical = os.path.join(settings.base, patterns[0])
        for other in patterns[1:]:
            if _WILDCARDS & set(other):
                continue
            other = os.path.join(settings.base, other)
            if _within(source, canonical):
                yield os.path.normpath(os.path.join(other, os.path.relpath(source, canonical)))
            elif _within(canonical, source):
                yield os.path.normpath(other)


def _within(path: str, folder: str) -> bool:
    path, folder = os.path.normpath(path), os.path.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def save_server_data(servers: Mapping[str, SpawnedServer], settings: CoverageSettings) -> list[str]:
    """Write the data files the stopped `servers` sent beside the run's data file
    (``.coverage.fire-shop.HOST.PID.RANDOM``), where the run's combine finds them.

    Returns what to tell the user, once each: a server whose data is lost (killed
    before it could write it, or run without coverage, and why), or a file that could
    not be written here.
    """
    notes: list[str] = []
    for name, server in servers.items():
        if server.coverage is None:
            if server.spec.is_remote and settings.sources is not None:  # else: not a source
                folder, host = PurePath(server.spec.program).parent, server.host or "its host"
                notes.append(
                    f"fire server {name!r}: not measured: none of the run's sources is its "
                    f"directory on {host} ({folder}) or holds it: add that directory to the "
                    "[paths] entry of its source"
                )
            continue
        if server.coverage_lost is not None:
            notes.append(f"fire server {name!r}: no coverage data: {server.coverage_lost}")
            server.coverage_lost = None
        for file_name, data in server.coverage_data:
            target = settings.data_file + file_name.removeprefix(".coverage")
            try:
                with open(target, "wb") as file:
                    file.write(data)
            except OSError as exc:
                notes.append(
                    f"fire server {name!r}: its coverage data could not be written to "
                    f"{target}: {exc.strerror or exc}; make the run's data directory writable"
                )
                break
        server.coverage_data.clear()
    return notes
