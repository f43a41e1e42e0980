"""Proxies against a server in memory: every operation, and how many round trips each costs."""

from __future__ import annotations

import copy
import gc
import pickle
import traceback
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from servers import ExchangeCounter

import fire
from fire.net.loopback import Loopback
from fire.server.dispatch import Dispatcher


@pytest.fixture
def remote(memory_remote: fire.Remote) -> fire.Remote:
    """In memory (conftest.memory_remote): this module checks logic, not sockets."""
    return memory_remote


# -- attributes -------------------------------------------------------------------------


def test_get_set_delete_attributes(helpers: Any) -> None:
    thing = helpers.Thing("a", value=1)
    assert thing.name == "a"
    assert thing.value == 1
    thing.value = [1, 2]
    assert thing.value == [1, 2]
    thing.extra = "new"
    assert thing.extra == "new"
    del thing.extra
    with pytest.raises(AttributeError, match="extra"):
        _ = thing.extra


def test_plain_attribute_reads_as_the_real_local_value(helpers: Any) -> None:
    thing = helpers.Thing("plain")
    name = thing.name
    assert type(name) is str
    assert name == "plain"
    saved = thing.saved
    assert type(saved) is list


def test_is_none_is_honest(helpers: Any) -> None:
    thing = helpers.Thing("child")
    assert thing.parent is None
    thing.parent = helpers.Thing("parent")
    parent = thing.parent
    assert parent is not None
    assert fire.is_proxy(parent)
    assert parent.name == "parent"


def test_setting_an_attribute_to_a_proxy_stores_the_real_object(helpers: Any) -> None:
    parent, child = helpers.Thing("p"), helpers.Thing("c")
    child.parent = parent
    assert helpers.is_thing(child.parent)
    assert helpers.same(child.parent, parent)


def test_evaluation_keeps_python_order(helpers: Any) -> None:
    thing = helpers.Thing("old")
    old = thing.name
    thing.name = "new"
    saved = thing.save()
    assert old == "old"
    assert saved == "new"
    assert thing.saved == ["new"]


def test_a_bound_method_read_without_a_call_is_a_proxy(helpers: Any) -> None:
    thing = helpers.Thing("m")
    method = thing.describe
    thing.name = "renamed"
    assert fire.is_proxy(method)
    assert method("<", suffix=">") == "<renamed>"


def test_instance_attribute_shadowing_a_method_reads_as_data(helpers: Any) -> None:
    thing = helpers.Thing("s")
    thing.save = "shadowed"
    value = thing.save
    assert type(value) is str
    assert value == "shadowed"


def test_misspelled_attribute_names_it(helpers: Any) -> None:
    thing = helpers.Thing("typo")
    with pytest.raises(AttributeError, match="nmae"):
        _ = thing.nmae


def test_misspelled_method_in_a_pipelined_chain_names_the_failing_step(remote: fire.Remote) -> None:
    os_module = remote.module("os")
    with pytest.raises(AttributeError, match="joinn") as raised:
        os_module.path.joinn("a", "b")
    assert isinstance(raised.value, fire.RemoteError)
    assert any(".path.joinn" in note for note in raised.value.__notes__)


def test_proxy_cannot_be_constructed_or_pickled(helpers: Any) -> None:
    with pytest.raises(TypeError, match="don't create them"):
        fire.Proxy()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(helpers.Thing("p"))


def test_fire_private_names_are_not_remote(helpers: Any) -> None:
    thing = helpers.Thing("x")
    with pytest.raises(AttributeError):
        thing._fire_unknown  # noqa: B018
    with pytest.raises(AttributeError, match="fire's own attribute"):
        thing._fire_target = 1


# -- calls and containers ---------------------------------------------------------------


def test_call_with_positional_and_keyword_arguments(helpers: Any) -> None:
    thing = helpers.Thing("call")
    assert thing.describe("<", suffix=">") == "<call>"
    assert helpers.Thing(name="kw", value=(1,)).value == (1,)


def test_items_get_set_delete(helpers: Any) -> None:
    bag = helpers.Bag(a=1)
    assert fire.is_proxy(bag)
    assert bag["a"] == 1
    bag["b"] = (2, 3)
    assert bag["b"] == (2, 3)
    del bag["a"]
    with pytest.raises(KeyError):
        bag["a"]
    assert len(bag) == 1


def test_len_contains_bool(helpers: Any) -> None:
    bag = helpers.Bag(a=1, b=2)
    assert len(bag) == 2
    assert "a" in bag
    assert "z" not in bag
    assert bool(bag) is True
    assert bool(helpers.Bag()) is False
    assert not helpers.Bag()


def test_len_is_fresh_after_a_loop_and_a_change(helpers: Any) -> None:
    bag = helpers.Bag(a=1)
    for _key in bag:  # a loop asks for no len: the length iter() sent must not linger
        pass
    bag["b"] = 2
    assert len(bag) == 2
    keys = list(bag)
    assert keys == ["a", "b"]
    helpers.Bag.update(bag, c=3)  # changed through another proxy
    assert len(bag) == 3


def test_list_of_a_proxy_takes_one_round_trip(helpers: Any, exchanges: ExchangeCounter) -> None:
    bag = helpers.Bag(a=1, b=2)
    with exchanges.counting():
        keys = list(bag)
    assert keys == ["a", "b"]
    assert exchanges.count == 1, exchanges.operations


def test_iteration(remote: fire.Remote, helpers: Any) -> None:
    builtins = remote.module("builtins")
    assert list(helpers.Bag(x=1, y=2)) == ["x", "y"]
    for size in (0, 1, 255, 256, 257, 1280, 1281):
        assert list(builtins.range(size)) == list(range(size)), size


def test_iteration_yields_proxies_for_objects(helpers: Any) -> None:
    things = helpers.Bag(one=helpers.Thing("one"))
    values = list(things.values())
    assert len(values) == 1
    assert fire.is_proxy(values[0])
    assert values[0].name == "one"


def test_iterating_10000_items_takes_a_handful_of_round_trips(
    remote: fire.Remote, exchanges: ExchangeCounter
) -> None:
    numbers = remote.module("builtins").range(10_000)
    with exchanges.counting():
        items = list(numbers)
    assert items == list(range(10_000))
    assert exchanges.count <= 6, exchanges.operations


def test_breaking_out_of_an_endless_remote_iterator(remote: fire.Remote) -> None:
    counter = remote.module("itertools").count()
    taken = []
    for number in counter:
        taken.append(number)
        if number == 9:
            break
    assert taken == list(range(10))


@pytest.mark.parametrize("count", [0, 10, 256, 300])
def test_items_yielded_before_an_error_are_all_seen(helpers: Any, count: int) -> None:
    seen = []
    with pytest.raises(ValueError, match=f"failed after {count}") as raised:
        for number in helpers.numbers_then_fail(count):
            seen.append(number)
    assert seen == list(range(count))
    assert traceback.extract_tb(raised.value.__traceback__)[-1].name == "numbers_then_fail"


# -- comparisons, hashing, text ---------------------------------------------------------


def test_comparisons_run_on_the_server(helpers: Any) -> None:
    one, two, other_one = helpers.Version(1), helpers.Version(2), helpers.Version(1)
    assert one == other_one
    assert one != two
    assert (one != other_one) is False
    assert one < two
    assert one <= other_one
    assert two > one
    assert two >= two
    assert one == 1  # the remote __eq__ also accepts ints
    assert two > 1
    assert not (one > 1)


def test_hash_is_consistent_with_equality(helpers: Any) -> None:
    one, other_one, two = helpers.Version(1), helpers.Version(1), helpers.Version(2)
    assert hash(one) == hash(other_one)
    assert len({one, other_one, two}) == 2
    assert {one: "x"}[other_one] == "x"


def test_two_references_to_one_object_are_equal_with_one_hash(helpers: Any) -> None:
    first, second = helpers.SINGLETON, helpers.SINGLETON
    assert first == second
    assert hash(first) == hash(second)
    assert helpers.same(first, second)
    assert helpers.Thing("a") != helpers.Thing("a")  # identity-compared objects


def test_repr_says_remote_and_which_server(remote: fire.Remote, helpers: Any) -> None:
    text = repr(helpers.Thing("r"))
    assert "fire proxy" in text
    assert "'shared'" in text  # the connection's name
    assert "Thing('r')" in text  # the remote repr
    assert "shared" in repr(remote)


def test_str_is_the_remote_str(helpers: Any) -> None:
    assert str(helpers.Thing("s")) == "Thing named s"
    assert f"{helpers.Thing('f')}" == "Thing named f"


def test_dir_lists_remote_names(helpers: Any) -> None:
    names = dir(helpers.Thing("d"))
    assert {"name", "save", "rename", "describe", "parent"} <= set(names)


# -- round trips ------------------------------------------------------------------------


def test_os_path_join_waits_for_one_round_trip(
    remote: fire.Remote, exchanges: ExchangeCounter
) -> None:
    os_module = remote.module("os")
    with exchanges.counting():
        joined = os_module.path.join("a", "b")
    assert joined == "a/b"
    assert exchanges.count == 1


def test_three_attribute_chain_call_waits_for_one_round_trip(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    with exchanges.counting():
        thing = helpers.Outer.Inner.make("chained")
    assert exchanges.count == 1
    assert fire.is_proxy(thing)
    assert thing.name == "chained"


def test_class_then_classmethod_waits_for_one_round_trip(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    with exchanges.counting():
        widget = helpers.Widget.create("w")
    assert exchanges.count == 1
    with exchanges.counting():
        kind = helpers.Widget.kind()
    assert exchanges.count == 1
    assert kind == "widget"
    assert widget.name == "w"


def test_method_call_on_an_instance_waits_for_one_round_trip(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    thing = helpers.Thing("once")
    with exchanges.counting():
        described = thing.describe("[", suffix="]")
    assert described == "[once]"
    assert exchanges.count == 1


def test_attribute_outside_the_shape_called_at_once_waits_for_one_round_trip(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    # An instance attribute is never in the shape: only the caller's bytecode (LOAD_METHOD
    # before Python 3.12, LOAD_ATTR with its low bit set since) tells it is called at once.
    thing = helpers.Thing("holder", helpers.echo)
    with exchanges.counting():
        echoed = thing.value(42)
    assert echoed == 42
    assert exchanges.count == 1, exchanges.operations
    with exchanges.counting():
        function = thing.value  # read without a call: fetched, a reference to the function
    assert fire.is_proxy(function)
    assert exchanges.count == 1, exchanges.operations
    assert function("again") == "again"


def test_plain_attribute_costs_one_round_trip(
    remote: fire.Remote, exchanges: ExchangeCounter
) -> None:
    os_module = remote.module("os")
    with exchanges.counting():
        sep = os_module.path.sep
    assert sep == "/"
    assert exchanges.count == 1


def test_pending_path_keeps_its_reference_alive(remote: fire.Remote) -> None:
    inner = remote.module("remote_helpers").Outer.Inner  # the module proxy is dropped
    gc.collect()
    remote.ping()  # carries any releases
    assert inner.make("alive").name == "alive"


# -- proxies as arguments ---------------------------------------------------------------


def test_proxy_argument_resolves_to_the_real_object(helpers: Any) -> None:
    thing = helpers.Thing("arg")
    assert helpers.is_thing(thing) is True
    assert helpers.same(thing, thing) is True
    assert helpers.is_class(helpers.Widget) is True  # a pending path resolves too


def test_proxy_of_another_connection_is_refused(
    connect_memory: Callable[..., fire.Remote], helpers: Any
) -> None:
    with connect_memory(name="other") as other:
        foreign = other.module("remote_helpers").Thing("foreign")
        with pytest.raises(
            TypeError, match="proxy from fire server 'other' was passed to server 'shared'"
        ):
            helpers.is_thing(foreign)
    assert helpers.is_thing(helpers.Thing("still works")) is True


def test_proxy_of_another_server_is_refused(
    helpers: Any, connect_memory: Callable[..., fire.Remote]
) -> None:
    with connect_memory(Loopback(Dispatcher), name="elsewhere") as elsewhere:
        foreign = elsewhere.module("remote_helpers").Thing("foreign")
        with pytest.raises(TypeError, match="proxy from fire server 'elsewhere'") as raised:
            helpers.names_of([foreign])
        assert "can only go back to the server it lives on" in str(raised.value)
        assert foreign.name == "foreign"  # still fine on its own server


class LocalThing:
    pass


def local_function() -> None:
    pass


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (LocalThing(), "test_proxies.LocalThing"),
        (local_function, "builtins.function"),
        (object(), "builtins.object"),
    ],
)
def test_local_non_plain_argument_is_refused_naming_the_type(
    remote: fire.Remote, helpers: Any, value: Any, type_name: str
) -> None:
    with pytest.raises(
        TypeError, match=f"cannot send {type_name} to fire server 'shared'"
    ) as raised:
        helpers.echo([value])
    assert "only plain data" in str(raised.value)
    assert remote.ping() > 0  # nothing was sent; the connection is fine


# -- a proxy behaves like the object it stands for ---------------------------------------


def test_copy_and_deepcopy_give_the_proxy_without_a_round_trip(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    thing = helpers.Thing("copied")
    with exchanges.counting():
        shallow = copy.copy(thing)
        deep = copy.deepcopy(thing)
        in_containers = copy.deepcopy({"things": [thing, (thing,)]})
    assert exchanges.count == 0, exchanges.operations
    assert shallow is thing and deep is thing
    assert in_containers["things"][0] is thing and in_containers["things"][1][0] is thing
    assert deep == thing
    assert deep.name == "copied"


def test_comparing_with_what_cannot_be_sent_falls_back_to_python(helpers: Any) -> None:
    thing = helpers.Thing("t")
    assert thing == mock.ANY
    assert mock.ANY == thing  # noqa: SIM300 (the other operand first)
    assert [thing] == [mock.ANY]
    assert (thing == object()) is False
    assert (thing != object()) is True
    with pytest.raises(TypeError, match="not supported between"):
        _ = thing < object()


def test_isinstance_and_issubclass_with_a_remote_class_ask_the_server(
    remote: fire.Remote, helpers: Any
) -> None:
    remote_int = remote.module("builtins").int
    widget, thing = helpers.Widget("w"), helpers.Thing("t")
    assert isinstance(widget, helpers.Thing)
    assert isinstance(widget, helpers.Widget)
    assert not isinstance(thing, helpers.Widget)
    assert isinstance(thing, (int, helpers.Thing))
    assert isinstance(3, remote_int) and not isinstance("3", remote_int)
    assert not isinstance(LocalThing(), helpers.Thing)  # a local object is no remote instance
    assert issubclass(helpers.Widget, helpers.Thing)
    assert not issubclass(helpers.Thing, helpers.Widget)


def test_callable_follows_the_remote_object(remote: fire.Remote, helpers: Any) -> None:
    assert callable(helpers.Thing)  # a class
    assert callable(helpers.echo)  # a function
    assert callable(helpers.Thing("t").save)  # a bound method
    assert not callable(helpers.Thing("t"))  # an instance of a class without __call__
    assert not callable(helpers)  # a module
    assert not callable(helpers.Bag(a=1))
    assert callable(remote.module("functools").partial(helpers.echo, 1))
    with pytest.raises(TypeError, match="not callable"):
        helpers.Thing("t")()


def test_len_iter_next_follow_the_remote_object(
    remote: fire.Remote, helpers: Any, exchanges: ExchangeCounter
) -> None:
    thing = helpers.Thing("t")
    with exchanges.counting():
        with pytest.raises(TypeError, match="object of type 'Thing' has no len"):
            len(thing)
        with pytest.raises(TypeError, match="'Thing' object is not an iterator"):
            next(thing)
    assert exchanges.count == 0  # the shape tells: no round trip
    with pytest.raises(TypeError, match="'Thing' object is not iterable"):
        iter(thing)
    numbers = remote.module("builtins").iter([1, 2, 3])
    assert iter(numbers) is numbers  # a remote iterator is its own iterator, as locally
    assert next(numbers) == 1
    assert list(numbers) == [2, 3]
    with pytest.raises(StopIteration):
        next(numbers)
    assert next(numbers, "done") == "done"
    with pytest.raises(TypeError, match="'Bag' object is not an iterator"):
        next(helpers.Bag(a=1))


def test_a_partly_consumed_remote_generator_loses_no_item(helpers: Any) -> None:
    numbers = helpers.counting(600)
    iterator = iter(numbers)
    assert next(iterator) == 0
    assert next(numbers) == 1
    for number in numbers:
        if number == 300:
            break
    assert 301 in numbers  # `in` consumes an iterator up to the match, as locally
    assert list(numbers) == list(range(302, 600))
    assert list(numbers) == []


def test_remote_code_consuming_a_generator_continues_after_what_was_read(
    helpers: Any,
) -> None:
    numbers = helpers.counting(10)
    assert [next(numbers), next(numbers)] == [0, 1]  # single next() reads no more than asked
    assert helpers.rest_of(numbers) == list(range(2, 10))


def test_iterating_a_10000_item_generator_takes_a_handful_of_round_trips(
    helpers: Any, exchanges: ExchangeCounter
) -> None:
    numbers = helpers.counting(10_000)
    with exchanges.counting():
        items = list(numbers)
    assert items == list(range(10_000))
    assert exchanges.count <= 9, exchanges.operations


def test_with_a_remote_context_manager(helpers: Any) -> None:
    guard = helpers.Guard()
    with guard as value:
        assert value == "entered"
        assert guard.ends == ["open"]
    assert guard.ends == [None]
    with pytest.raises(ValueError, match="inside"), guard:
        raise ValueError("inside")
    assert guard.ends == [None, "Exception: ValueError: inside"]  # told as its text
    with helpers.Guard(suppress=True):
        raise KeyError("suppressed, as the remote __exit__ says")


def test_with_an_object_that_is_no_context_manager_says_so(helpers: Any) -> None:
    thing = helpers.Thing("plain")
    with (
        pytest.raises(TypeError, match="'Thing' object does not support the context manager"),
        thing,
    ):
        pass
