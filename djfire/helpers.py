"""Django test helpers: live URL, mail outbox, settings overrides, patches, the clock,
factory_boy, data changes.

One feature in two halves: `DjangoRemote`, in the test process, calls the operations
of ``runfireserver``'s server, which `DjangoHelpers` (an extension of that server)
provides, but for the data changes and the captured ``on_commit`` callbacks, which are
the test scopes' (`djfire.isolation.DjangoScopes`). Importing this module imports no
Django (the test process may have none): the server's half imports it where it needs it.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fire import Remote
    from fire.client.clock import RemoteClock
    from fire.client.patches import Patch
    from fire.extensions import Session

    from .isolation import DjangoScopes

__all__ = ["DjangoHelpers", "DjangoRemote"]


class DjangoRemote:
    """Django test helpers for one connected djfire server (the client's half).

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

    def live_url_for(self, consumer: str) -> str:
        """The live URL the service `consumer` calls this one at.

        In a run that records contracts (``--fire-contracts DIR``, docs/contracts.md), a
        listener of its own whose requests and responses become the contract between
        `consumer` and this service; otherwise `live_url`, at no cost.

        Examples:
            >>> shop.settings(ACCOUNTS_URL=accounts.live_url_for("shop"))
        """
        from fire.testing import contract_recording

        recording = contract_recording()
        if recording is None:
            return self.live_url
        url = self.remote.call_extension("live_url_for", consumer)
        if url is None:
            return self.live_url  # raises: no live HTTP server
        recording.providers.add(self.remote.name)  # asked for what it recorded, test by test
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

    def patch(self, target: str, *args: Any, **options: Any) -> Patch:
        """`unittest.mock.patch` in the service, undone with the current scope
        (`fire.Remote.patch`): ``shop.patch("shop.payments.charge", return_value=...)``."""
        return self.remote.patch(target, *args, **options)

    def patch_object(self, target: Any, attribute: str, *args: Any, **options: Any) -> Patch:
        """`unittest.mock.patch.object` in the service (`fire.Remote.patch_object`)."""
        return self.remote.patch_object(target, attribute, *args, **options)

    def patch_dict(
        self, target: Any, values: dict[Any, Any] | None = None, **options: Any
    ) -> Patch:
        """`unittest.mock.patch.dict` in the service (`fire.Remote.patch_dict`)."""
        return self.remote.patch_dict(target, values, **options)

    def freeze_time(self, destination: Any, *, tick: bool = False) -> RemoteClock:
        """Set the service's clock (`fire.Remote.freeze_time`); ``fire_remotes.freeze_time``
        sets every service of the test at once."""
        return self.remote.freeze_time(destination, tick=tick)

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


def factory_boy(module: str, helper: str) -> ModuleType:
    """Import factory_boy's `module` for `helper`, or say that the service lacks it.

    factory_boy is the service's own dependency, not djfire's (the ``django`` extra
    leaves it out), so only the helpers that reset or reseed it import it, on use.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "factory":
            raise
        raise ModuleNotFoundError(
            f"{helper}() needs factory_boy in the service's environment, and it is not "
            "installed there: `pip install factory_boy` in the service's virtualenv",
            name=exc.name,
        ) from None


def _message_as_data(message: Any) -> dict[str, Any]:
    attachments = []
    for attachment in message.attachments:
        if isinstance(attachment, tuple):  # (filename, content, mimetype)
            filename, content, mimetype = attachment
        else:  # a MIMEBase part
            filename, content, mimetype = (
                attachment.get_filename(),
                attachment.get_payload(decode=True),
                attachment.get_content_type(),
            )
        attachments.append({"filename": filename, "content": content, "mimetype": mimetype})
    return {
        "subject": message.subject,
        "body": message.body,
        "from_email": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "headers": {str(k): str(v) for k, v in message.extra_headers.items()},
        "alternatives": [
            {"content": content, "mimetype": mimetype}
            for content, mimetype in getattr(message, "alternatives", [])
        ],
        "attachments": attachments,
    }


class DjangoHelpers:
    """The server's half: the operations `DjangoRemote` calls (an extension of the server)."""

    name = "django"

    def __init__(
        self, scopes: DjangoScopes, live_url: str | None, test_databases_made: str | None = None
    ) -> None:
        self.scopes = scopes
        self.live_url = live_url
        #: How the test databases were made: cloned from templates or built (`djfire.templates`).
        self.test_databases_made = test_databases_made

    def operations(self) -> dict[str, Callable[..., Any]]:
        return {
            "live_url": lambda session: self.live_url,
            "mail_outbox": self.mail_outbox,
            "clear_mail_outbox": self.clear_mail_outbox,
            "override_settings": self.override_settings,
            "restore_settings": self.restore_settings,
            "reset_sequences": self.reset_sequences,
            "reseed_random": self.reseed_random,
        }

    def info(self) -> dict[str, Any]:
        import django

        return {
            "django": django.get_version(),
            "live_url": self.live_url,
            # What this server may leave if it cannot finish its teardown: a runner
            # interrupted twice names them (`fire.runners.interrupt`).
            "test_databases": _test_databases(),
            "test_databases_made": self.test_databases_made,
        }

    def mail_outbox(self, session: Session) -> list[dict[str, Any]]:
        """Messages sent since the test scope began, as plain data."""
        from django.core import mail

        return [_message_as_data(m) for m in getattr(mail, "outbox", [])]

    def clear_mail_outbox(self, session: Session) -> None:
        from django.core import mail

        mail.outbox.clear()

    def override_settings(self, session: Session, **values: Any) -> int:
        """Override settings until `restore_settings` or the end of the current scope."""
        from django.test.utils import override_settings

        scope = self.scopes.current(session)
        override = override_settings(**values)
        override.enable()
        scope.overrides.append(override)
        return len(scope.overrides)

    def restore_settings(self, session: Session, depth: int) -> None:
        """Undo the override `override_settings` numbered `depth` (and any made after it)."""
        scope = self.scopes.current(session)
        while len(scope.overrides) >= depth:
            scope.overrides.pop().disable()

    def reset_sequences(self, session: Session, value: int | None = None) -> int:
        """Reset the sequence of every factory_boy factory; returns how many were reset."""
        base = factory_boy("factory.base", "reset_sequences").BaseFactory
        count = 0
        pending = list(base.__subclasses__())
        while pending:
            factory_class = pending.pop()
            pending.extend(factory_class.__subclasses__())
            meta = getattr(factory_class, "_meta", None)
            if meta is None or meta.abstract:
                continue
            factory_class.reset_sequence(value, force=True)
            count += 1
        return count

    def reseed_random(self, session: Session, seed: int | str) -> None:
        """Reseed factory_boy's random generator (and so Faker's), for reproducible runs."""
        factory_boy("factory.random", "reseed_random").reseed_random(seed)


def _test_databases() -> list[str]:
    """The names of the test databases this server runs on (in-memory ones left out)."""
    from django.db import connections

    names = []
    for alias in connections:
        connection = connections[alias]
        name = str(connection.settings_dict["NAME"])
        in_memory = connection.vendor == "sqlite" and connection.creation.is_in_memory_db(name)
        if not in_memory and name not in names:
            names.append(name)
    return names
