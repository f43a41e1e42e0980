"""``manage.py verifyfirecontracts DIR``: verify this provider against its consumers' contracts.

The provider's own command, beside its tests: it starts this project's fire server
(``runfireserver`` on its test databases, with a live HTTP server on a free port),
verifies every contract in DIR whose provider is this service with Pact
(`fire.contracts.verify`: a test scope per interaction, its state recreated, the
request replayed, rolled back), stops the server and exits non-zero if an interaction
failed. The same verification runs from a test run with ``pytest --fire-verify
NAME=DIR``, against that run's servers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Verify this service against the contracts its consumers recorded (Pact V4 files "
        "from --fire-contracts): each interaction replayed on the test database, its "
        "state recreated by fire, rolled back after."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "sources", nargs="+", metavar="DIR", help="contract files, or directories of them"
        )
        parser.add_argument(
            "--provider",
            default=None,
            help="this service's name in the contracts (its fire server's name in the run "
            "that recorded them); default: the name of manage.py's directory",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from fire import FireError, connect
        from fire.contracts.files import ContractFileError, contracts_of
        from fire.contracts.verify import verify_provider
        from fire.runners.spawn import SpawnedServer, parse_spawn_spec

        script = Path(sys.argv[0]).resolve()
        if script.name != "manage.py":
            raise CommandError("run verifyfirecontracts through the project's manage.py")
        provider = options["provider"] or script.parent.name
        try:  # every file checked before the (slower) server start
            for source in options["sources"]:
                contracts_of(source, provider)
        except ContractFileError as exc:
            raise CommandError(str(exc)) from None
        spec = parse_spawn_spec(f"{provider}={script}")
        spec.settings = os.environ.get("DJANGO_SETTINGS_MODULE")
        server = SpawnedServer(spec)
        try:
            server.start()
        except FireError as exc:
            raise CommandError(f"the fire server did not start: {exc}") from None
        try:
            with connect(server.address, name=provider) as remote:
                assert server.url is not None
                verification = verify_provider(
                    remote, server.url, options["sources"], provider=provider, out=self.stdout
                )
        except ContractFileError as exc:
            raise CommandError(str(exc)) from None
        finally:
            server.stop()
        if not verification.passed:
            raise CommandError(
                f"{len(verification.failures)} of {verification.verified} interactions failed"
                if verification.failures
                else "no interaction was verified"
            )
