"""Hypothesis strategies for plain data, and an exact comparison (types all the way down)."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import Any

from hypothesis import strategies as st

# -- strategies -----------------------------------------------------------------------

fixed_offsets = st.builds(
    dt.timezone,
    st.timedeltas(
        min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
    ),
)
zones = st.sampled_from(
    ["UTC", "Europe/Zurich", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
).map(zoneinfo.ZoneInfo)
timezones = st.one_of(st.none(), fixed_offsets, zones, st.timezones())

datetimes = st.datetimes(timezones=timezones, allow_imaginary=True)
times = st.times(timezones=st.one_of(st.none(), fixed_offsets))
big_ints = st.one_of(
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**63)),
    st.sampled_from([2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**100, -(10**100)]),
)
decimals = st.decimals(allow_nan=False)
hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    big_ints,
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.dates(),
    datetimes,
    times,
    st.timedeltas(),
    decimals,
    st.uuids(),
)
hashables = st.recursive(
    hashable_scalars,
    lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=4)),
    max_leaves=6,
)
plain = st.recursive(
    hashable_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(hashables, inner, max_size=5),
        st.sets(hashables, max_size=5),
        st.frozensets(hashables, max_size=5),
        st.builds(slice, inner, inner, inner),
    ),
    max_leaves=25,
)


# -- exact comparison -----------------------------------------------------------------


def same_tz(a: dt.tzinfo | None, b: dt.tzinfo | None, when: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, zoneinfo.ZoneInfo):
        return isinstance(b, zoneinfo.ZoneInfo) and a.key == b.key
    return a.utcoffset(when) == b.utcoffset(when)


def assert_same(expected: Any, actual: Any) -> None:
    """Equal, of the very same types all the way down (no tuple→list, bytes→str, tz change)."""
    assert type(actual) is type(expected), (expected, actual)
    if isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        for e, a in zip(expected, actual, strict=True):
            assert_same(e, a)
    elif isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(expected[key], actual[key])
    elif isinstance(expected, slice):
        for part in ("start", "stop", "step"):
            assert_same(getattr(expected, part), getattr(actual, part))
    elif isinstance(expected, dt.datetime):
        # Aware datetimes compare by instant: compare the fields and the zone too.
        assert actual.replace(tzinfo=None) == expected.replace(tzinfo=None)
        assert actual.fold == expected.fold
        assert same_tz(expected.tzinfo, actual.tzinfo, expected)
    elif isinstance(expected, dt.time):
        assert actual.replace(tzinfo=None) == expected.replace(tzinfo=None)
        assert same_tz(expected.tzinfo, actual.tzinfo, None)
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == expected
        if isinstance(expected, float):
            assert math.copysign(1, actual) == math.copysign(1, expected)
