"""The built-in rows: the floor, and fire's call path over the same transport.

- the floor: `bench.echo`, a raw DEALER/ROUTER msgpack echo in a process of its own,
  its client waiting for the reply as fire's does (polling first, `fire.net.transport`);
- a simple call, ``op.add(1, 2)`` on a module proxy, as users write it (the attribute
  read happens in the loop: it is part of what a call costs);
- the floor and the simple call again with clients that sleep in ``recv`` at once
  (``spin_wait=0``): what polling saves, reported, not judged;
- a 3-attribute chain, ``targets.outer.inner.add(1, 2)``: still one round trip;
- ``list()`` of a remote ``range(10000)``: batched iteration, a few round trips.
"""

from __future__ import annotations

from collections.abc import Iterator

from .echo import EchoClient, echo_endpoint
from .registry import Call, Env, case

#: The targets issue 9 sets, as ratios to the floor.
SIMPLE_CALL_TARGET = 1.10
CHAIN_CALL_TARGET = 1.20
#: ``list()`` of 10,000 remote items: at most this many floor round trips of time.
ITERATION_TARGET = 20.0


@case("floor: raw pyzmq DEALER/ROUTER msgpack echo", floor=True, order=0)
def floor(env: Env) -> Iterator[Call]:
    client = EchoClient(echo_endpoint(env))
    try:
        yield client.call
    finally:
        client.close()


@case("floor, sleeping in recv at once (spin_wait=0)", order=1)
def floor_sleeping(env: Env) -> Iterator[Call]:
    client = EchoClient(echo_endpoint(env), spin_wait=0)
    try:
        yield client.call
    finally:
        client.close()


@case("fire: op.add(1, 2)", target=SIMPLE_CALL_TARGET, order=10)
def simple_call(env: Env) -> Iterator[Call]:
    op = env.fire_remote().module("operator")
    yield lambda: op.add(1, 2)


@case("fire: op.add(1, 2), spin_wait=0", order=11)
def simple_call_sleeping(env: Env) -> Iterator[Call]:
    op = env.fire_remote(spin_wait=0).module("operator")
    yield lambda: op.add(1, 2)


@case("fire: targets.outer.inner.add(1, 2)", target=CHAIN_CALL_TARGET, order=20)
def chain_call(env: Env) -> Iterator[Call]:
    targets = env.fire_remote().module("bench.targets")
    yield lambda: targets.outer.inner.add(1, 2)


@case("fire: list(range(10000)) (one call)", calls=10, target=ITERATION_TARGET, order=30)
def list_range(env: Env) -> Iterator[Call]:
    numbers = env.fire_remote().module("builtins").range(10000)
    yield lambda: list(numbers)
