"""The matrix scripts in .ci/: finding each Python, and an entry whose Python is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CI_SCRIPTS = Path(__file__).resolve().parent.parent / ".ci"
THIS_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
NO_SUCH_VERSION = "3.99"


def run(script: str, *args: str, path: Path, ci: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{path}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [CI_SCRIPTS / script, *args], env=env, capture_output=True, text=True, timeout=60
    )


def fake_python(directory: Path, version: str, body: str) -> None:
    """A `pythonX.Y` on PATH that is not that Python (a pyenv shim with none selected)."""
    fake = directory / f"python{version}"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)


def test_find_python_prints_the_python_of_that_version_on_path(tmp_path: Path) -> None:
    (tmp_path / f"python{THIS_VERSION}").symlink_to(sys.executable)
    result = run("find-python", THIS_VERSION, path=tmp_path)
    assert result.returncode == 0, result.stderr
    found = result.stdout.strip()
    asked = subprocess.run(
        [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert asked.stdout.strip() == THIS_VERSION


@pytest.mark.parametrize(
    "body",
    [
        'echo "pyenv: python3.99: command not found" >&2; exit 127',
        f'exec "{sys.executable}" "$@"',  # runs, but is another version
    ],
    ids=["failing-shim", "wrong-version"],
)
def test_find_python_rejects_a_python_on_path_that_is_not_that_version(
    tmp_path: Path, body: str
) -> None:
    fake_python(tmp_path, NO_SUCH_VERSION, body)
    result = run("find-python", NO_SUCH_VERSION, path=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"no Python {NO_SUCH_VERSION}: python{NO_SUCH_VERSION} is not on PATH" in result.stderr
    assert f"install it (e.g. `pyenv install {NO_SUCH_VERSION}`)" in result.stderr


def test_matrix_entry_without_its_python_is_skipped_with_the_reason(tmp_path: Path) -> None:
    result = run("matrix-entry", NO_SUCH_VERSION, "Django>=6.1,<6.2", ".venv-x", path=tmp_path)
    assert result.returncode == 0
    assert f"matrix entry Python {NO_SUCH_VERSION} + Django>=6.1,<6.2 SKIPPED: " in result.stderr
    assert f"no Python {NO_SUCH_VERSION}" in result.stderr


def test_matrix_entry_without_its_python_fails_under_ci(tmp_path: Path) -> None:
    result = run(
        "matrix-entry", NO_SUCH_VERSION, "Django>=6.1,<6.2", ".venv-x", path=tmp_path, ci=True
    )
    assert result.returncode == 1
    assert f"matrix entry Python {NO_SUCH_VERSION} + Django>=6.1,<6.2 FAILED (CI=true): " in (
        result.stderr
    )
    assert f"no Python {NO_SUCH_VERSION}" in result.stderr
