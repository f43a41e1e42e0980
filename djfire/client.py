"""Client-side helpers for a Remote served by ``runfireserver``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fire import Remote

__all__ = ["DjangoRemote"]


class DjangoRemote:
    """Django test helpers for one connected djfire server.

    Examples:
        >>> accounts = DjangoRemote(fire.connect("accounts.sock"))
        >>> requests.get(accounts.live_url + "/api/users/")
        >>> accounts.mail_outbox()[0]["subject"]
    """

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    @property
    def live_url(self) -> str:
        """The live HTTP server's base URL (``--http``); raises if the server has none."""
        url = self.remote.call_extension("live_url")
        if url is None:
            raise RuntimeError(
                f"fire server {self.remote.name!r} has no live HTTP server: start it with "
                "`runfireserver --http 127.0.0.1:0`"
            )
        return url

    def mail_outbox(self) -> list[dict[str, Any]]:
        """E-mails sent during the current test, as dicts (subject, body, to, …)."""
        return self.remote.call_extension("mail_outbox")

    def clear_mail_outbox(self) -> None:
        """Empty the server's outbox (it is also emptied when a test scope begins and ends)."""
        self.remote.call_extension("clear_mail_outbox")

    @contextlib.contextmanager
    def settings(self, **values: Any) -> Iterator[None]:
        """Override the server's settings inside the block (plain-data values only)."""
        depth = self.remote.call_extension("override_settings", **values)
        try:
            yield
        finally:
            self.remote.call_extension("restore_settings", depth)

    def reset_sequences(self, value: int | None = None) -> int:
        """Reset every factory_boy sequence on the server; returns how many factories."""
        return self.remote.call_extension("reset_sequences", value)

    def reseed_random(self, seed: int | str) -> None:
        """Reseed factory_boy's (and Faker's) random generator on the server."""
        self.remote.call_extension("reseed_random", seed)

    def data_changes(self) -> dict[str, Any]:
        """The rows the current test changed so far, netted, per database alias and table.

        ``{alias: {"vendor": "sqlite", "tables": {table: {"inserted": [row, …],
        "updated": [{"key": {…}, "changed": {column: [old, new]}}, …], "deleted": [row,
        …]}}}}``; ``"tables"`` is None for a backend that cannot be captured. Needs a
        test scope begun with ``data_changes=True`` (the runners' default).
        """
        return self.remote.call_extension("data_changes")

    def captured_on_commit(self) -> list[str]:
        """Callbacks captured in a scope begun with ``on_commit="capture"``."""
        return self.remote.call_extension("captured_on_commit")

    def run_captured_on_commit(self) -> int:
        """Run the captured callbacks now; returns how many ran."""
        return self.remote.call_extension("run_captured_on_commit")
