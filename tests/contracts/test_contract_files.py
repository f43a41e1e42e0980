"""Files that are not Pact V4 JSON: one error naming the file and what was expected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PACT_V3 = {
    "consumer": {"name": "shop"},
    "provider": {"name": "accounts"},
    "interactions": [],
    "metadata": {"pactSpecification": {"version": "3.0.0"}},
}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("not json at all", "not JSON"),
        (json.dumps({"orders": []}), "JSON, but not a Pact file"),
        (json.dumps(PACT_V3), "a Pact file of version 3.0.0, not 4.x"),
    ],
)
def test_the_versions_report_refuses_a_file_that_is_not_pact_v4(
    tmp_path: Path, text: str, said: str
) -> None:
    (tmp_path / "shop-accounts.json").write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "fire", "contracts", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"fire: {tmp_path / 'shop-accounts.json'}: {said}")
    assert "expected Pact V4 JSON" in line


def test_the_versions_report_of_a_directory_that_is_not_there(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fire", "contracts", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == f"fire: {tmp_path / 'nowhere'}: no such directory of contracts (expected DIR/*.json)\n"
    )
