"""A payment provider's client: what a full-system test must not reach, so it patches it."""


class PaymentDeclined(Exception):
    """The provider refused the charge."""


def charge(amount: str, *, currency: str = "EUR") -> dict[str, object]:
    """Charge `amount`; the real one would call the provider over the network."""
    raise RuntimeError("the test service must never reach a real payment provider")


def declined(amount: str, *, currency: str = "EUR") -> dict[str, object]:
    """A stand-in a test may name as a side effect: always declines."""
    raise PaymentDeclined(f"{amount} {currency} declined")
