"""Values through a server in memory: plain data by value both ways, everything else by
reference (the codec's bytes are the same over a socket: test_large_messages.py)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from plain_data import assert_same, plain
from servers import ExchangeCounter

import fire
from fire.net.loopback import Loopback
from fire.server.dispatch import Dispatcher

SAMPLE = {
    "none": None,
    "bool": True,
    "int": -7,
    "big": 2**100,
    "negative big": -(2**80),
    "float": 2.5,
    "str": "héllo",
    "bytes": b"\x00\xff",
    "list": [1, [2, [3]]],
    "tuple": (1, (2, "x")),
    "set": {1, 2},
    "frozenset": frozenset({"a"}),
    "dict": {1: "int key", (1, 2): "tuple key", b"b": "bytes key"},
    "datetime": dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Zurich")),
    "fixed": dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    "naive": dt.datetime(2024, 1, 1, 12),
    "date": dt.date(2024, 2, 29),
    "time": dt.time(1, 2, 3, 4),
    "timedelta": dt.timedelta(days=-2, seconds=5),
    "decimal": decimal.Decimal("3.140"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
}


@pytest.fixture(scope="module")
def module_remote() -> Iterator[fire.Remote]:
    """One connection in memory for every example hypothesis makes."""
    server = Loopback(Dispatcher)
    with fire.Remote(transport=server.transport(), timeout=10) as connection:
        yield connection
    server.close()


@pytest.fixture
def remote(memory_remote: fire.Remote) -> fire.Remote:
    """In memory (conftest.memory_remote): this module checks logic, not sockets."""
    return memory_remote


def test_plain_data_round_trips_through_the_server(helpers: Any) -> None:
    assert_same(SAMPLE, helpers.echo(SAMPLE))


def test_plain_data_arrives_on_the_server_with_its_types(helpers: Any) -> None:
    value = [(1, b"b"), {"k": ("v",)}, {1}, frozenset({2}), 2**70, decimal.Decimal(1)]
    assert helpers.type_names(value) == {
        "list": [
            {"tuple": ["int", "bytes"]},
            {"dict": [["str", {"tuple": ["str"]}]]},
            {"set": ["int"]},
            {"frozenset": ["int"]},
            "int",
            "Decimal",
        ]
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=plain)
def test_any_plain_value_round_trips_through_the_server(
    module_remote: fire.Remote, value: Any
) -> None:
    assert_same(value, module_remote.module("remote_helpers").echo(value))


def test_plain_module_attributes_are_local_values(remote: fire.Remote, helpers: Any) -> None:
    assert helpers.PLAIN_CONSTANT == {"answer": 42, "when": (1, 2)}
    assert type(helpers.PLAIN_CONSTANT) is dict
    sep = remote.module("os").path.sep
    assert type(sep) is str
    assert sep == "/"


def test_non_plain_results_are_proxies(helpers: Any) -> None:
    thing = helpers.Thing("t")
    assert fire.is_proxy(thing)
    assert isinstance(thing, fire.Proxy)
    assert not fire.is_proxy("t")


def test_list_of_objects_is_a_local_list_of_proxies_in_one_round_trip(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    with exchanges.counting():
        things = helpers.make_things(5)
    assert exchanges.count == 1
    assert type(things) is list
    assert len(things) == 5
    assert all(fire.is_proxy(thing) for thing in things)
    assert [thing.name for thing in things] == [f"thing-{i}" for i in range(5)]


def test_dict_of_objects_is_a_local_dict_of_proxies(helpers: Any) -> None:
    things = helpers.things_by_name(3)
    assert type(things) is dict
    assert sorted(things) == ["thing-0", "thing-1", "thing-2"]
    assert all(fire.is_proxy(thing) for thing in things.values())
    assert things["thing-2"].name == "thing-2"


def test_mixed_container_keeps_values_and_references(helpers: Any) -> None:
    thing = helpers.Thing("mixed")
    mixed = helpers.echo((1, thing, [thing, "x"]))
    assert type(mixed) is tuple
    assert mixed[0] == 1
    assert fire.is_proxy(mixed[1])
    assert mixed[2][1] == "x"
    assert helpers.same(mixed[1], thing)
    assert helpers.same(mixed[2][0], thing)


def test_proxies_inside_arguments_resolve_on_the_server(helpers: Any) -> None:
    a, b = helpers.Thing("a"), helpers.Thing("b")
    assert helpers.names_of([a, b]) == ["a", "b"]
    assert helpers.is_thing(a) is True
    assert helpers.echo({"key": (a,)})["key"][0].name == "a"


def test_str_subclass_results_arrive_as_str(helpers: Any) -> None:
    assert helpers.is_markup(helpers.markup("<b>")) is False  # a str went, a str came back
    value = helpers.markup("<b>")
    assert type(value) is str
    assert value == "<b>"


def test_str_and_int_subclasses_arrive_as_their_value(helpers: Any) -> None:
    color = helpers.color()  # class Color(str, Enum): RED = "red"
    assert type(color) is str and color == "red"  # not str(Color.RED), "Color.RED"
    level = helpers.level()  # an IntEnum member
    assert type(level) is int and level == 3
    permissions = helpers.permissions()  # an IntFlag
    assert type(permissions) is int and permissions == 6
    assert helpers.echo([helpers.level(), {"c": helpers.color()}]) == [3, {"c": "red"}]
