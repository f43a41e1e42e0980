"""Installing this checkout as `make install` does: quietly, and importable afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def test_an_editable_install_prints_nothing_and_imports_the_checkout(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    # pip's own deprecations are not this project's: the suite makes them errors.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    # As `make install` does: a current pip shows what the build backend warns.
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", CHECKOUT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    # setuptools' editable-install notice ("Please be careful with folders in your working
    # directory…") is a BuildBackendWarning in a box of asterisks.
    assert "BuildBackendWarning" not in installed.stderr
    assert "*****" not in installed.stderr
    imported = subprocess.run(
        [python, "-c", "import importlib.util; print(importlib.util.find_spec('fire').origin)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == str(CHECKOUT / "fire" / "__init__.py")
