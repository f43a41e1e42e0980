"""The ``fire_contract_stub`` fixture: a recorded contract replayed as the test's double."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fire.contracts.replay import ReplayedContract

__all__ = ["fire_contract_stub"]


@pytest.fixture
def fire_contract_stub(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[str | Path], ReplayedContract]]:
    """``fire_contract_stub("contracts/shop-accounts.json")``: the contract served on a
    local port for this test (``.url``); a request it does not hold fails the test at
    its teardown, naming the nearest interaction. Relative paths are the rootdir's."""
    from fire.contracts.replay import stub

    with ExitStack() as stack:

        def serve(path: str | Path) -> ReplayedContract:
            path = Path(path)
            if not path.is_absolute():
                path = request.config.rootpath / path
            return stack.enter_context(stub(path))

        yield serve
