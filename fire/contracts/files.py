"""Reading contract files: Pact V4 JSON, or one error naming the file and what was expected.

Both the versions report and the verification read contracts through `read_pact`, so a
file that is not Pact JSON, or of another specification version, is refused the same
way everywhere, and never taken for a contract with nothing in it. Where pact-python
is installed, Pact's own core parses the file too (`pact_ffi`), so what fire accepts
Pact's tools accept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import FireError

__all__ = ["ContractFileError", "contract_files", "read_pact"]

EXPECTED = (
    'Pact V4 JSON (an object with "consumer", "provider", "interactions" and '
    '"metadata": {"pactSpecification": {"version": "4.0"}})'
)


class ContractFileError(FireError):
    """A contract file that is not Pact V4 JSON."""


def contract_files(directory: str | Path) -> list[Path]:
    """The ``*.json`` files of `directory`, sorted; an error if it is not a directory."""
    path = Path(directory)
    if not path.is_dir():
        raise ContractFileError(f"{path}: no such directory of contracts (expected DIR/*.json)")
    return sorted(path.glob("*.json"))


def read_pact(path: str | Path) -> dict[str, Any]:
    """The contract in `path`, checked to be Pact V4; `ContractFileError` otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        pact = json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractFileError(f"{path}: cannot be read ({exc}); expected {EXPECTED}") from None
    except ValueError as exc:
        raise ContractFileError(f"{path}: not JSON ({exc}); expected {EXPECTED}") from None
    if not isinstance(pact, dict) or not all(
        key in pact for key in ("consumer", "provider", "interactions")
    ):
        raise ContractFileError(f"{path}: JSON, but not a Pact file; expected {EXPECTED}")
    metadata = pact.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    specification = metadata.get("pactSpecification") or metadata.get("pact-specification")
    version = specification.get("version") if isinstance(specification, dict) else None
    if not isinstance(version, str) or version.split(".")[0] != "4":
        found = f"version {version}" if version else "no specification version"
        raise ContractFileError(
            f"{path}: a Pact file of {found}, not 4.x; expected {EXPECTED} (record it again "
            "with --fire-contracts, or convert it with Pact's tools)"
        )
    if not isinstance(pact["interactions"], list):
        raise ContractFileError(f"{path}: its interactions are not a list; expected {EXPECTED}")
    _parsed_by_pact(path, text)
    return pact


def _parsed_by_pact(path: Path, text: str) -> None:
    """Pact's own core parses `text` too, where pact-python is installed."""
    try:
        from pact_ffi import ffi, lib
    except ImportError:
        return
    pointer = lib.pactffi_parse_pact_json(text.encode("utf-8"))
    if pointer == ffi.NULL:
        raise ContractFileError(f"{path}: Pact's core cannot parse it; expected {EXPECTED}")
    lib.pactffi_pact_model_delete(pointer)
