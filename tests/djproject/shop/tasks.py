"""Code the tests call remotely to register on_commit callbacks."""

from django.core.mail import send_mail
from django.db import transaction


def notify_on_commit(subject: str) -> None:
    transaction.on_commit(
        lambda: send_mail(subject, "body", "shop@example.com", ["staff@example.com"])
    )
