"""`ValueRules` belong to one server: its descriptors pipeline, its iterables come whole.

In memory: a server with rules, and one without to show what the same objects cost
without them; two shape tables in this process show that rules given to one server are
not seen by another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import remote_helpers
from servers import ExchangeCounter

import fire
from fire.extensions import ValueRules
from fire.net.loopback import Loopback
from fire.server.dispatch import Dispatcher
from fire.server.shapes import ShapeTable


@pytest.fixture
def remote(memory_remote: fire.Remote) -> fire.Remote:
    """In memory (conftest.memory_remote): this module checks logic, not sockets."""
    return memory_remote


@pytest.fixture
def ruled(
    connect_memory: Callable[..., fire.Remote],
) -> tuple[fire.Remote, ExchangeCounter]:
    rules = ValueRules(
        reference_descriptors={remote_helpers.RelatedDescriptor: lambda d: remote_helpers.Related},
        materialized_iterables=(remote_helpers.Rows,),
    )
    remote = connect_memory(Loopback(Dispatcher, values=rules), name="ruled")
    return remote, ExchangeCounter(remote)


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
