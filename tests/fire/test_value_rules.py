"""`ValueRules` belong to one server: its descriptors pipeline, its iterables come whole.

The server with rules runs in its own process; the shared server (no rules) shows what
the same objects cost without them, and two shape tables in this process show that
rules given to one server are not seen by another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import remote_helpers
from servers import ExchangeCounter, ServerProcess

import fire
from fire.extensions import ValueRules
from fire.server.shapes import ShapeTable

SERVER_WITH_RULES = """
import sys
import fire
import remote_helpers as h
from fire.runners.supervise import ready_line
from fire.extensions import ValueRules

rules = ValueRules(
    reference_descriptors={h.RelatedDescriptor: lambda descriptor: h.Related},
    materialized_iterables=(h.Rows,),
)
server = fire.Server(sys.argv[1], values=rules)
server.bind()
print(ready_line(server.endpoint), flush=True)
server.serve_forever()
"""


@pytest.fixture
def ruled(
    server_factory: Callable[..., ServerProcess], tmp_dir: Path
) -> Iterator[tuple[fire.Remote, ExchangeCounter]]:
    server = server_factory(["-c", SERVER_WITH_RULES, str(tmp_dir / "ruled.sock")])
    with fire.connect(server.path, timeout=10, name="ruled") as remote:
        yield remote, ExchangeCounter(remote)


def test_a_reference_descriptor_of_the_server_is_pipelined_to_its_result(
    ruled: tuple[fire.Remote, ExchangeCounter],
) -> None:
    remote, exchanges = ruled
    holder = remote.module("remote_helpers").Holder()
    with exchanges.counting():
        assert holder.related.count() == 3
    assert exchanges.count == 1, exchanges.operations


def test_without_rules_the_descriptor_is_read_first(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    holder = helpers.Holder()
    with exchanges.counting():
        assert holder.related.count() == 3
    assert exchanges.count == 2, exchanges.operations


def test_a_materialized_iterable_of_the_server_comes_in_one_reply(
    ruled: tuple[fire.Remote, ExchangeCounter],
) -> None:
    remote, exchanges = ruled
    rows = remote.module("remote_helpers").Rows(5000)
    with exchanges.counting():
        assert list(rows) == list(range(5000))
    assert exchanges.count == 1, exchanges.operations


def test_without_rules_an_iterable_comes_in_growing_batches(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    rows = helpers.Rows(5000)
    with exchanges.counting():
        assert list(rows) == list(range(5000))
    assert exchanges.count > 1, exchanges.operations


def test_rules_given_to_one_server_are_not_seen_by_another() -> None:
    rules = ValueRules(reference_descriptors={remote_helpers.RelatedDescriptor: None})
    with_rules, without = ShapeTable(rules), ShapeTable()
    assert "related" in with_rules.content(with_rules.shape_id(remote_helpers.Holder()))[1]
    assert "related" not in without.content(without.shape_id(remote_helpers.Holder()))[1]
