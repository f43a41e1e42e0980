from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import fire
from djfire import DjangoRemote
from fire.runners.spawn import SpawnedServer


@pytest.fixture
def shop(shop_server: SpawnedServer) -> Iterator[fire.Remote]:
    """A fresh connection to the shop service (no scope open)."""
    with fire.connect(shop_server.address, name="shop", timeout=20) as remote:
        yield remote


@pytest.fixture
def dj(shop: fire.Remote) -> DjangoRemote:
    return DjangoRemote(shop)


@pytest.fixture
def scoped(shop: fire.Remote) -> Iterator[fire.Remote]:
    """The shop connection inside a test scope."""
    with shop.scope():
        yield shop


class Counter:
    """Counts exchanges (round trips) on a Remote."""

    def __init__(self, remote: fire.Remote) -> None:
        self.count = 0
        original = remote._exchange

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)

        remote._exchange = counted  # type: ignore[method-assign]
