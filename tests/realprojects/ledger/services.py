"""The ledger's service code: a payment, recorded with its purpose in pghistory's context."""

from decimal import Decimal

import pghistory
from django.db.models import F

from .models import Account


def pay(account: Account, amount: Decimal | str, purpose: str) -> None:
    with pghistory.context(purpose=purpose):
        Account.objects.filter(pk=account.pk).update(balance=F("balance") + Decimal(amount))
