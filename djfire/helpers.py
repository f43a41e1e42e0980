"""Server-side helpers for tests: live URL, mail outbox, settings overrides, factories."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from django.core import mail
from django.test.utils import override_settings

from fire.extensions import Session

from .isolation import DjangoScopes

__all__ = ["DjangoHelpers"]


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
    """Operations the client helpers in `djfire.client` call."""

    name = "django"

    def __init__(self, scopes: DjangoScopes, live_url: str | None) -> None:
        self.scopes = scopes
        self.live_url = live_url

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

        return {"django": django.get_version(), "live_url": self.live_url}

    def mail_outbox(self, session: Session) -> list[dict[str, Any]]:
        """Messages sent since the test scope began, as plain data."""
        return [_message_as_data(m) for m in getattr(mail, "outbox", [])]

    def clear_mail_outbox(self, session: Session) -> None:
        mail.outbox.clear()

    def override_settings(self, session: Session, **values: Any) -> int:
        """Override settings until `restore_settings` or the end of the current scope."""
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
