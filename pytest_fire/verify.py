"""``pytest --fire-verify NAME=DIR``: verify the run's server NAME against the contracts in DIR.

Each ``NAME=DIR`` is one test item, run after the collected tests, against the run's
server of that name (spawned or attached, as for any fire test): Pact replays every
interaction of the contracts naming NAME as provider, fire recreating each one's state
in a scope of its own (`fire.contracts.verify`). The item fails with fire's report
(the failing interactions, the tests that recorded them, the provider's data changes
during the replay); Pact's own output is in its captured stdout. To run only the
verification, name a path without tests too: ``pytest --fire-verify accounts=contracts
contracts``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from .activate import activate

__all__ = ["verification_items"]


class ContractsNotVerified(Exception):
    """Some interaction of the contracts failed; the message is fire's report."""


class ContractVerification(pytest.Item):
    """One ``--fire-verify NAME=DIR``: the provider NAME against the contracts in DIR."""

    def __init__(self, *, provider: str, source: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.provider = provider
        self.source = source

    def runtest(self) -> None:
        from fire.contracts.verify import verify_provider

        remote = activate(self.config).remote(self.provider)
        url = remote.call_extension("live_url")
        if url is None:
            raise ContractsNotVerified(
                f"fire server {self.provider!r} has no live HTTP server to replay the "
                "contracts against: start it with --http (spawned servers have one)"
            )
        out = io.StringIO()
        verification = verify_provider(remote, url, [self.source], provider=self.provider, out=out)
        if not verification.passed:
            raise ContractsNotVerified(verification.report())
        self.add_report_section("call", "fire contracts", out.getvalue())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from fire.contracts.files import ContractFileError

        if isinstance(excinfo.value, ContractsNotVerified | ContractFileError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.source, None, f"fire verify {self.provider}={self.source}"


def verification_items(session: pytest.Session) -> list[pytest.Item]:
    """The items of the run's ``--fire-verify`` options (none without them)."""
    items: list[pytest.Item] = []
    for option in session.config.getoption("fire_verify") or []:
        provider, sep, source = option.partition("=")
        if not sep or not provider or not source:
            raise pytest.UsageError(f"--fire-verify takes NAME=DIR, not {option!r}")
        path = Path(source)
        path = path if path.is_absolute() else session.config.invocation_params.dir / path
        items.append(
            ContractVerification.from_parent(
                session,
                name=f"fire-verify[{provider}={source}]",
                provider=provider,
                source=path,
            )
        )
    return items
