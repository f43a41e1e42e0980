"""The codec alone: plain data round-trips exactly, everything else goes to the hooks."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import uuid
import zoneinfo
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plain_data import assert_same, big_ints, fixed_offsets, plain

from fire.wire.codec import EXT_DECIMAL, EXT_REF, EXT_TUPLE, MAX_NESTING, Codec, plain_codec

# -- hooks that record what they are given ---------------------------------------------


class Marker:
    def __init__(self, index: int) -> None:
        self.index = index


class RecordingCodec:
    """A codec whose hooks turn non-plain objects into numbered markers."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.received: list[tuple[int, bytes]] = []
        self.codec = Codec(self.encode_other, self.decode_reference)

    def encode_other(self, value: Any) -> msgpack.ExtType:
        self.sent.append(value)
        return msgpack.ExtType(EXT_REF, msgpack.packb(len(self.sent) - 1))

    def decode_reference(self, code: int, data: bytes) -> Marker:
        self.received.append((code, data))
        return Marker(msgpack.unpackb(data))


# -- properties -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(plain)
def test_plain_data_round_trips_exactly(value: Any) -> None:
    codec = plain_codec()
    assert_same(value, codec.unpack(codec.pack(value)))


@settings(max_examples=100, deadline=None)
@given(plain)
def test_plain_data_never_reaches_the_hooks(value: Any) -> None:
    recording = RecordingCodec()
    recording.codec.unpack(recording.codec.pack(value))
    assert recording.sent == []
    assert recording.received == []


@given(big_ints)
def test_ints_of_any_size_round_trip(value: int) -> None:
    codec = plain_codec()
    decoded = codec.unpack(codec.pack(value))
    assert type(decoded) is int
    assert decoded == value


@given(st.datetimes(timezones=st.timezones(), allow_imaginary=False))
def test_zoneinfo_datetimes_keep_their_zone_key(value: dt.datetime) -> None:
    codec = plain_codec()
    decoded = codec.unpack(codec.pack(value))
    assert isinstance(decoded.tzinfo, zoneinfo.ZoneInfo)
    assert decoded.tzinfo.key == value.tzinfo.key
    assert decoded == value
    assert decoded.utcoffset() == value.utcoffset()


@given(st.datetimes(timezones=fixed_offsets))
def test_fixed_offset_datetimes_keep_their_offset(value: dt.datetime) -> None:
    codec = plain_codec()
    decoded = codec.unpack(codec.pack(value))
    assert decoded.utcoffset() == value.utcoffset()
    assert decoded == value


# -- examples ---------------------------------------------------------------------------


def _example_id(value: Any) -> str:
    """The example's repr, a set's members sorted: a set's order follows the string hash,
    which differs between processes, and pytest-xdist's workers must collect one id."""
    if isinstance(value, (set, frozenset)) and value:
        return f"{type(value).__name__}({sorted(map(repr, value))})"
    return repr(value)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x00\xff raw",
        "text",
        "",
        (),
        (1, (2, (3,))),
        [(), []],
        {1: (2,)},
        {(1, "a"): "tuple key", frozenset({1}): "frozenset key", b"k": "bytes key"},
        set(),
        {1, 2},
        frozenset(),
        frozenset({"a", b"a"}),
        True,
        False,
        None,
        0,
        -1,
        2**64,
        -(2**63) - 1,
        1.5,
        -0.0,
        math.inf,
        decimal.Decimal("1.10"),
        decimal.Decimal("-0"),
        decimal.Decimal("Infinity"),
        decimal.Decimal("1E+400"),
        uuid.UUID(int=0),
        uuid.UUID("a9c297e9-d464-4dc8-9c43-3e65917c73a0"),  # fixed: xdist collects it twice
        dt.date(1, 1, 1),
        dt.date(9999, 12, 31),
        dt.timedelta(days=-1, microseconds=1),
        dt.datetime(2024, 3, 31, 2, 30),
        dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Zurich")),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 1, tzinfo=dt.timezone(-dt.timedelta(hours=3, minutes=30))),
        dt.time(23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=45))),
        {"nested": [{"deep": ({"set": {1, 2}},)}]},
        slice(None, 10),
        slice(1, None, -1),
        [slice(2**70, "a", dt.date(2024, 1, 1))],
    ],
    ids=_example_id,
)
def test_examples_round_trip(value: Any) -> None:
    codec = plain_codec()
    assert_same(value, codec.unpack(codec.pack(value)))


def test_nan_round_trips_as_nan() -> None:
    codec = plain_codec()
    assert math.isnan(codec.unpack(codec.pack(math.nan)))
    assert codec.unpack(codec.pack(decimal.Decimal("NaN"))).is_nan()


def test_str_subclasses_travel_as_str() -> None:
    class SafeString(str):
        pass

    codec = plain_codec()
    decoded = codec.unpack(codec.pack([SafeString("<b>")]))
    assert decoded == ["<b>"]
    assert type(decoded[0]) is str


class Color(str, enum.Enum):  # noqa: UP042 (not StrEnum: its str() is not its value)
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 2**70  # beyond 64 bits: through the big-int extension


def test_str_and_int_subclasses_travel_as_their_value() -> None:
    codec = plain_codec()
    decoded = codec.unpack(codec.pack([Color.RED, Level.HIGH, enum.IntFlag("F", "A B").B]))
    assert decoded == ["red", 2**70, 2]
    assert [type(value) for value in decoded] == [str, int, int]


class MyList(list):
    pass


def local_function() -> None:
    pass


@pytest.mark.parametrize(
    "value",
    [
        object(),
        Marker(0),
        local_function,
        Marker,
        MyList([1]),
        range(3),
        iter([1]),
        1j,
    ],
    ids=lambda v: type(v).__name__,
)
def test_non_plain_values_go_to_the_hook(value: Any) -> None:
    recording = RecordingCodec()
    decoded = recording.codec.unpack(recording.codec.pack({"key": [1, value, (value,)]}))
    assert recording.sent == [value, value]
    assert recording.sent[0] is value
    first, second = decoded["key"][1], decoded["key"][2][0]
    assert isinstance(first, Marker)
    assert isinstance(second, Marker)
    assert (first.index, second.index) == (0, 1)
    assert decoded["key"][0] == 1
    assert [code for code, _ in recording.received] == [EXT_REF, EXT_REF]


def test_plain_codec_refuses_non_plain_values_naming_the_type() -> None:
    with pytest.raises(TypeError, match="Marker is not plain data"):
        plain_codec().pack([Marker(1)])


def test_plain_codec_refuses_unknown_extensions() -> None:
    frame = msgpack.packb(msgpack.ExtType(EXT_REF, b"\x01"))
    with pytest.raises(ValueError, match=f"extension type {EXT_REF}"):
        plain_codec().unpack(frame)


def test_a_malformed_decimal_is_refused_showing_its_text() -> None:
    frame = msgpack.packb(msgpack.ExtType(EXT_DECIMAL, b"12,5"))
    with pytest.raises(ValueError, match=r"^'12,5' is not a decimal number$"):
        plain_codec().unpack(frame)


def test_bytearray_and_memoryview_travel_as_bytes() -> None:
    # msgpack packs any buffer as bin: the receiver gets immutable bytes, by value.
    recording = RecordingCodec()
    decoded = recording.codec.unpack(recording.codec.pack([bytearray(b"ab"), memoryview(b"cd")]))
    assert decoded == [b"ab", b"cd"]
    assert all(type(item) is bytes for item in decoded)
    assert recording.sent == []


def test_lists_and_tuples_are_distinct_on_the_wire() -> None:
    codec = plain_codec()
    assert codec.pack([1, 2]) != codec.pack((1, 2))
    assert codec.unpack(codec.pack([1, 2])) == [1, 2]
    assert codec.unpack(codec.pack((1, 2))) == (1, 2)


def nested_tuples(depth: int) -> tuple[Any, ...]:
    """`depth` tuples, each the only item of the one around it."""
    value: tuple[Any, ...] = ()
    for _ in range(depth - 1):
        value = (value,)
    return value


def nested_tuple_bytes(depth: int) -> bytes:
    """What `nested_tuples(depth)` packs to, built without the codec (which refuses it)."""
    data = msgpack.packb([])
    for _ in range(depth - 1):
        data = msgpack.packb([msgpack.ExtType(EXT_TUPLE, data)])
    return msgpack.packb(msgpack.ExtType(EXT_TUPLE, data))


def test_values_nested_up_to_max_nesting_round_trip() -> None:
    codec = plain_codec()
    value = [nested_tuples(MAX_NESTING), frozenset([nested_tuples(MAX_NESTING - 1)])]
    assert codec.unpack(codec.pack(value)) == value
    assert codec.pack(nested_tuples(MAX_NESTING)) == nested_tuple_bytes(MAX_NESTING)


def test_values_nested_past_max_nesting_are_refused_both_ways() -> None:
    # Found writing `make fuzz`: some 200 levels of a few bytes each overflowed the C stack.
    codec = plain_codec()
    message = "tuples, sets or slices nested more than 64 deep cannot travel"
    with pytest.raises(ValueError, match=message):
        codec.pack(nested_tuples(MAX_NESTING + 1))
    for depth in (MAX_NESTING + 1, 300, 5000):
        with pytest.raises(ValueError, match=message):
            codec.unpack(nested_tuple_bytes(depth))
    assert codec.unpack(codec.pack((1, (2,)))) == (1, (2,))  # the count went back to 0
