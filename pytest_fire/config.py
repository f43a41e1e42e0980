"""Which servers a run uses: ``--fire-servers`` > ``FIRE_SERVERS`` > the ``fire_servers`` ini.

Relative socket paths from the command line or the environment resolve against the
working directory; those from the ini file against the ini file's directory. The CURVE
key files for TCP servers follow the same order: ``--fire-curve-secret`` >
``FIRE_CURVE_SECRET`` > ``fire_curve_secret`` (and ``…curve-servers`` likewise).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fire.net.transport import DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_SPIN_WAIT, DEFAULT_TIMEOUT
from fire.runners.core import DEFAULT_SCOPE_WAIT, RunConfig, check_mode
from fire.runners.data_changes import MODES
from fire.runners.spawn import parse_spawn_spec
from fire.testing import parse_server_list

__all__ = ["read_config"]


def _setting(config: pytest.Config, option: str, variable: str, ini: str) -> str | None:
    """An option, else an environment variable, else an ini value (relative to the ini)."""
    value = config.getoption(option) or os.environ.get(variable, "").strip()
    if value:
        return value
    from_ini = config.getini(ini)
    return str(_ini_base(config) / from_ini) if from_ini else None


def _seconds(config: pytest.Config, ini: str, default: float) -> float:
    """An ini option in seconds (`default` when unset); anything else is a usage error."""
    text = config.getini(ini)
    try:
        seconds = float(text) if text else default
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise pytest.UsageError(f"{ini} must be 0 or more seconds, not {text!r}")
    return seconds


def _ini_base(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath else config.rootpath


def read_config(config: pytest.Config) -> RunConfig:
    """The run's servers and settings; a bad one is a `FireError` or a usage error."""
    if _seconds(config, "fire_heartbeat_timeout", DEFAULT_HEARTBEAT_TIMEOUT) == 0:
        raise pytest.UsageError("fire_heartbeat_timeout must be more than 0 seconds, not '0'")
    result = RunConfig(
        timeout=_seconds(config, "fire_timeout", DEFAULT_TIMEOUT),
        spin_wait=_seconds(config, "fire_spin_wait", DEFAULT_SPIN_WAIT),
        heartbeat_timeout=_seconds(config, "fire_heartbeat_timeout", DEFAULT_HEARTBEAT_TIMEOUT),
        scope_wait=_seconds(config, "fire_scope_wait", DEFAULT_SCOPE_WAIT),
        data_changes=check_mode(
            config.getoption("fire_data_changes") or config.getini("fire_data_changes") or MODES[0]
        ),
        data_changes_exclude=list(config.getini("fire_data_changes_exclude")),
    )
    from fire.net.curve import CLIENT_SECRET_VARIABLE, CLIENT_SERVERS_VARIABLE

    result.curve_secret = _setting(
        config, "fire_curve_secret", CLIENT_SECRET_VARIABLE, "fire_curve_secret"
    )
    result.curve_servers = _setting(
        config, "fire_curve_servers", CLIENT_SERVERS_VARIABLE, "fire_curve_servers"
    )
    contracts = config.getoption("fire_contracts") or config.getini("fire_contracts")
    if contracts:  # the option relative to the working directory, the ini to its file
        base = Path.cwd() if config.getoption("fire_contracts") else _ini_base(config)
        result.contracts = str(base / contracts)
    options = config.getoption("fire_servers") or []
    environment = os.environ.get("FIRE_SERVERS", "")
    ini = config.getini("fire_servers")
    if options:
        for text in options:
            result.attached.update(parse_server_list(text))
        result.source = "--fire-servers"
    elif environment.strip():
        result.attached = parse_server_list(environment)
        result.source = "FIRE_SERVERS"
    elif ini:
        result.attached = parse_server_list(",".join(ini), _ini_base(config))
        result.source = f"fire_servers in {config.inipath.name if config.inipath else 'ini'}"
    spawn_options = config.getoption("fire_spawn") or []
    spawn_source = "--fire-spawn"
    for text in spawn_options:
        spec = parse_spawn_spec(text)
        result.spawned[spec.name] = spec
    if not spawn_options:
        spawn_source = f"fire_spawn in {config.inipath.name if config.inipath else 'ini'}"
        for text in config.getini("fire_spawn"):
            spec = parse_spawn_spec(text, _ini_base(config))
            result.spawned[spec.name] = spec
    from .coverage import run_coverage

    result.coverage = run_coverage(config)  # pytest-cov's --cov: the servers measure theirs
    if config.getoption("fire_rebuild_db") or config.getini("fire_rebuild_db"):
        for spec in result.spawned.values():  # templates built again (djfire --rebuild-db)
            spec.rebuild_db = True
    if result.data_changes == "off":  # nothing will read a capture: the servers pay none
        for spec in result.spawned.values():
            spec.data_changes = False
    both = sorted(set(result.attached) & set(result.spawned))
    if both:
        names = ", ".join(repr(name) for name in both)
        raise pytest.UsageError(
            f"fire server {names} is both attached (from {result.source}) and spawned "
            f"(from {spawn_source}): name each server once. To attach to the running "
            f"server, leave it out of {spawn_source} (a --fire-spawn option replaces the "
            f"ini's list); to start it for the run, leave it out of {result.source}"
        )
    return result
