"""Token files: how servers and runners read the shared secret of a TCP server."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import FireError

__all__ = ["TOKEN_FILE_VARIABLE", "read_token_file", "token_from_environment"]

#: Names the token file the runners (FireTestCase, the pytest plugin) use for TCP servers.
TOKEN_FILE_VARIABLE = "FIRE_TOKEN_FILE"


def read_token_file(path: str | os.PathLike[str]) -> str:
    """A token file's content, surrounding whitespace ignored; it must not be empty."""
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise FireError(f"cannot read token file {path}: {exc.strerror}") from None
    if not token:
        raise FireError(f"token file {path} is empty")
    return token


def token_from_environment() -> str | None:
    """The token in the file that ``FIRE_TOKEN_FILE`` names, or None when it is unset."""
    path = os.environ.get(TOKEN_FILE_VARIABLE)
    return read_token_file(path) if path else None
