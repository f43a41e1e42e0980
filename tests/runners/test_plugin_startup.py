"""Being installed costs nothing: the unused plugin imports no fire and harms no run.

Every run here is a pytest subprocess (the plugin is loaded fresh, through its entry
point), so what the test process has imported does not hide what the plugin imports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fire_origin import foreign_fire, reinstall_command

from ..conftest import REINSTALL

#: A run's tests report which of fire's heavy imports they find loaded (``zmq.auth``
#: only once CURVE keys are used: never for ``ipc://`` servers).
IMPORTS_SEEN = """
import sys

HEAVY = ("fire", "zmq", "msgpack", "tblib", "zmq.auth")

def test_report_imports():
    print("loaded:", " ".join(name for name in HEAVY if name in sys.modules) or "none")
"""

UNRELATED = """
def test_unrelated():
    assert sum([1, 2]) == 3
"""


@pytest.fixture
def no_fire_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """This run's own FIRE_SERVERS must not configure the runs under test."""
    monkeypatch.delenv("FIRE_SERVERS", raising=False)


@pytest.mark.usefixtures("no_fire_settings")
def test_an_unused_plugin_imports_no_fire(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(IMPORTS_SEEN)
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*loaded: none"])


@pytest.mark.usefixtures("no_fire_settings")
def test_configured_servers_import_fire_at_start_up(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(IMPORTS_SEEN)
    result = pytester.runpytest_subprocess("-s", "--fire-servers=shop=/tmp/unused-fire.sock")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*loaded: fire zmq msgpack tblib"])


@pytest.mark.usefixtures("no_fire_settings")
def test_a_fire_fixture_imports_fire_on_first_use(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_uses_fire(fire_remotes):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no fire servers configured: use --fire-servers*"])


def test_the_plugin_offers_the_data_change_modes_fire_knows() -> None:
    from fire.runners.data_changes import MODES
    from pytest_fire.plugin import DATA_CHANGES_MODES

    assert DATA_CHANGES_MODES == MODES


def test_our_fire_package_passes_the_check_that_imports_nothing() -> None:
    assert foreign_fire() is None


def test_the_advice_reinstalls_djfire_from_where_it_came_from() -> None:
    # `make install` installs this checkout in editable mode; pip recorded that.
    assert reinstall_command() == REINSTALL


@pytest.mark.usefixtures("no_fire_settings")
def test_an_unrelated_run_beside_python_fire_passes_with_one_warning(
    pytester: pytest.Pytester, foreign_fire: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(foreign_fire))  # python-fire's `fire` comes first
    pytester.makepyfile(UNRELATED)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, warnings=1)
    output = result.stdout.str()
    assert output.count("the fire plugin is off in this run") == 1
    assert f"imported from {foreign_fire / 'fire' / '__init__.py'} is not fire" in output
    assert REINSTALL in output and "-p no:fire" in output


@pytest.mark.usefixtures("no_fire_settings")
def test_the_plugin_checks_the_fire_package_without_djfire(
    pytester: pytest.Pytester, foreign_fire: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A test runner's environment needs no djfire module: one that cannot be imported
    # changes nothing in what the plugin reports.
    (foreign_fire / "djfire").mkdir()
    (foreign_fire / "djfire" / "__init__.py").write_text("raise ImportError('no djfire')\n")
    monkeypatch.setenv("PYTHONPATH", str(foreign_fire))
    pytester.makepyfile(UNRELATED)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, warnings=1)
    assert "the fire plugin is off in this run" in result.stdout.str()
    stopped = pytester.runpytest_subprocess("--fire-servers=shop=/tmp/unused-fire.sock")
    assert stopped.ret == pytest.ExitCode.USAGE_ERROR
    assert "is not fire from djfire" in stopped.stderr.str()


@pytest.mark.usefixtures("no_fire_settings")
def test_fire_options_beside_python_fire_stop_the_run_with_the_advice(
    pytester: pytest.Pytester, foreign_fire: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(foreign_fire))
    pytester.makepyfile(UNRELATED)
    result = pytester.runpytest_subprocess("--fire-servers=shop=/tmp/unused-fire.sock")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert "is not fire from djfire" in errors
    assert "pip uninstall fire" in errors and REINSTALL in errors
    assert "pip install --force-reinstall djfire" not in errors  # djfire is on no index


@pytest.mark.usefixtures("no_fire_settings")
def test_a_fire_fixture_beside_python_fire_errors_with_the_advice(
    pytester: pytest.Pytester, foreign_fire: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(foreign_fire))
    pytester.makepyfile(
        """
        def test_uses_fire(fire_remotes):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1, warnings=1)
    assert REINSTALL in result.stdout.str()


def test_no_fire_in_the_ini_turns_the_plugin_off(
    pytester: pytest.Pytester, foreign_fire: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(foreign_fire))
    pytester.makeini("[pytest]\naddopts = -p no:fire\n")
    pytester.makepyfile(UNRELATED)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, warnings=0)
    assert "djfire" not in result.stdout.str()  # the plugins line does not list it
