"""Code the tests call remotely to register on_commit callbacks."""

from django.core.mail import send_mail
from django.db import transaction


def notify_on_commit(subject: str) -> None:
    transaction.on_commit(
        lambda: send_mail(subject, "body", "shop@example.com", ["staff@example.com"])
    )


def create_durably(name: str) -> int:
    """Service code that insists on committing its own work (a durable block)."""
    from shop.models import Product

    with transaction.atomic(durable=True):
        return Product.objects.create(name=name, price="1.00").id


def on_commit_database_error(name: str) -> None:
    """Registers a callback that hits a unique constraint after writing a first row."""
    from shop.models import Category

    def callback() -> None:
        Category.objects.create(name=name)
        Category.objects.create(name=name)

    transaction.on_commit(callback)


def on_commit_chain(subject: str) -> None:
    """A callback that registers another callback, as code run after a commit may."""
    transaction.on_commit(lambda: notify_on_commit(subject))


def create_on_commit(name: str) -> None:
    """Registers a callback that writes a row: the data-change report must show it."""
    from shop.models import Category

    transaction.on_commit(lambda: Category.objects.create(name=name))


def create_then_swallow_integrity_error(name: str) -> str:
    """Service code that catches a failed save(): Django marks the transaction for rollback."""
    from django.db import IntegrityError

    from shop.models import Category

    Category.objects.create(name=name)
    try:
        Category.objects.create(name=name)
    except IntegrityError:
        return "swallowed"
    return "saved twice"
