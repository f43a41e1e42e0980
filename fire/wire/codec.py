"""msgpack encoding of plain data, with extension types for what msgpack lacks.

Plain data travels by value: None, bool, int (any size), float, str, bytes, list,
tuple, dict, set, frozenset, datetime/date/time/timedelta, Decimal, UUID and slice (for
``queryset[:10]``), nested freely. Anything else is handed to the `encode_other` hook
(the server turns it into a reference, the client into a reference back or a
TypeError), and references coming in are handed to `decode_reference`. `str` and
`int` subclasses travel as their value, a plain str or int: Django's SafeString, an enum
member mixed with str (``class Color(str, Enum)`` sends ``"red"``), an IntEnum member.

A value held in an extension (a tuple, set, frozenset or slice) is packed and unpacked by
a nested call, and each nested unpack holds a msgpack context of some 40 KB on the C
stack: some 200 tuples one inside the other, a few hundred bytes from any peer, overflow
the stack and kill the process (found writing `make fuzz`). So both directions stop at
`MAX_NESTING` such levels, with a ValueError naming the bound; lists and dicts nest
within one msgpack call and are bounded by msgpack itself (512 levels packed).
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

import msgpack

__all__ = ["EXT_ARGREF", "EXT_REF", "MAX_NESTING", "CannotSend", "Codec", "plain_codec"]

EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_BIGINT = 4
EXT_DATETIME = 5
EXT_DATE = 6
EXT_TIME = 7
EXT_TIMEDELTA = 8
EXT_DECIMAL = 9
EXT_UUID = 10
EXT_SLICE = 11
EXT_REF = 20  # server -> client: an object that stays on the server
EXT_ARGREF = 21  # client -> server: a proxy handed back as an argument

_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1

#: How many tuples, sets, frozensets or slices a value may hold one inside the other. Far
#: beyond real data, far below the ~200 that overflow the C stack (a thread's 8 MiB).
MAX_NESTING = 64


class CannotSend(TypeError):
    """A value is neither plain data nor something the hook can send (a local object).

    Its own class, so a proxy's comparison can tell "this operand cannot travel" (Python's
    fallback applies) from a TypeError raised by the remote comparison.
    """


def _decimal(data: bytes) -> decimal.Decimal:
    """A Decimal from its text; other text is a ValueError that shows it (decimal's own
    error names only its signal class: ``[<class 'decimal.ConversionSyntax'>]``)."""
    text = data.decode(errors="replace")
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not a decimal number") from None


def _encode_tz(tz: dt.tzinfo | None, value: dt.datetime | dt.time) -> Any:
    if tz is None:
        return None
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key:
        return tz.key
    offset = value.utcoffset()
    return None if offset is None else [offset.days * 86400 + offset.seconds, offset.microseconds]


def _decode_tz(encoded: Any) -> dt.tzinfo | None:
    if encoded is None:
        return None
    if isinstance(encoded, str):
        return zoneinfo.ZoneInfo(encoded)
    seconds, micro = encoded
    offset = dt.timedelta(seconds=seconds, microseconds=micro)
    return dt.UTC if not offset else dt.timezone(offset)


class Codec:
    """Packs and unpacks one direction's values; the hooks decide what references mean."""

    def __init__(
        self,
        encode_other: Callable[[Any], msgpack.ExtType],
        decode_reference: Callable[[int, bytes], Any],
    ) -> None:
        self._encode_other = encode_other
        self._decode_reference = decode_reference
        self._packers: list[msgpack.Packer] = []
        #: This thread's count of nested packs and unpacks (`_nested_pack`, `_nested_unpack`).
        self._depth = threading.local()
        nested_pack, nested_unpack = self._nested_pack, self._nested_unpack
        self._encoders: dict[type, Callable[[Any], Any]] = {
            tuple: lambda v: msgpack.ExtType(EXT_TUPLE, nested_pack(list(v))),
            set: lambda v: msgpack.ExtType(EXT_SET, nested_pack(list(v))),
            frozenset: lambda v: msgpack.ExtType(EXT_FROZENSET, nested_pack(list(v))),
            int: self._big_int,
            dt.datetime: lambda v: msgpack.ExtType(
                EXT_DATETIME,
                self.pack(
                    [
                        v.year,
                        v.month,
                        v.day,
                        v.hour,
                        v.minute,
                        v.second,
                        v.microsecond,
                        v.fold,
                        _encode_tz(v.tzinfo, v),
                    ]
                ),
            ),
            dt.date: lambda v: msgpack.ExtType(EXT_DATE, self.pack([v.year, v.month, v.day])),
            dt.time: lambda v: msgpack.ExtType(
                EXT_TIME,
                self.pack(
                    [v.hour, v.minute, v.second, v.microsecond, v.fold, _encode_tz(v.tzinfo, v)]
                ),
            ),
            dt.timedelta: lambda v: msgpack.ExtType(
                EXT_TIMEDELTA, self.pack([v.days, v.seconds, v.microseconds])
            ),
            decimal.Decimal: lambda v: msgpack.ExtType(EXT_DECIMAL, str(v).encode()),
            uuid.UUID: lambda v: msgpack.ExtType(EXT_UUID, v.bytes),
            slice: lambda v: msgpack.ExtType(EXT_SLICE, nested_pack([v.start, v.stop, v.step])),
        }
        self._decoders: dict[int, Callable[[bytes], Any]] = {
            EXT_TUPLE: lambda b: tuple(nested_unpack(b)),
            EXT_SET: lambda b: set(nested_unpack(b)),
            EXT_FROZENSET: lambda b: frozenset(nested_unpack(b)),
            EXT_BIGINT: lambda b: int.from_bytes(b, "big", signed=True),
            EXT_DATETIME: self._datetime,
            EXT_DATE: lambda b: dt.date(*self.unpack(b)),
            EXT_TIME: self._time,
            EXT_TIMEDELTA: lambda b: dt.timedelta(*self.unpack(b)),
            EXT_DECIMAL: _decimal,
            EXT_UUID: lambda b: uuid.UUID(bytes=b),
            EXT_SLICE: lambda b: slice(*nested_unpack(b)),
        }

    def _enter(self) -> int:
        """One level deeper in this thread; a ValueError past `MAX_NESTING`."""
        depth: int = getattr(self._depth, "value", 0)
        if depth >= MAX_NESTING:
            raise ValueError(
                f"tuples, sets or slices nested more than {MAX_NESTING} deep cannot travel"
            )
        self._depth.value = depth + 1
        return depth

    def _nested_pack(self, value: Any) -> bytes:
        depth = self._enter()
        try:
            return self.pack(value)
        finally:
            self._depth.value = depth

    def _nested_unpack(self, data: bytes) -> Any:
        depth = self._enter()
        try:
            return self.unpack(data)
        finally:
            self._depth.value = depth

    @staticmethod
    def _big_int(value: int) -> Any:
        length = (value.bit_length() + 8) // 8
        return msgpack.ExtType(EXT_BIGINT, value.to_bytes(length, "big", signed=True))

    def _default(self, value: Any) -> Any:
        encoder = self._encoders.get(type(value))
        if encoder is not None:
            return encoder(value)
        # The value itself, not str()/int() of it: str(Color.RED) is "Color.RED".
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, int):
            value = int.__int__(value)
            return value if _INT64_MIN <= value <= _UINT64_MAX else self._big_int(value)
        return self._encode_other(value)

    def _datetime(self, data: bytes) -> dt.datetime:
        year, month, day, hour, minute, second, microsecond, fold, tz = self.unpack(data)
        return dt.datetime(
            year, month, day, hour, minute, second, microsecond, _decode_tz(tz), fold=fold
        )

    def _time(self, data: bytes) -> dt.time:
        hour, minute, second, microsecond, fold, tz = self.unpack(data)
        return dt.time(hour, minute, second, microsecond, _decode_tz(tz), fold=fold)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        decoder = self._decoders.get(code)
        if decoder is not None:
            return decoder(data)
        return self._decode_reference(code, data)

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(
            default=self._default, use_bin_type=True, strict_types=True, datetime=False
        )

    def pack(self, value: Any) -> bytes:
        """Encode `value`; ints beyond 64 bits and non-plain objects go through extensions."""
        # Making a Packer costs ten times what packing a small value does, so packers
        # are reused. One is not re-entrant (`_default` packs nested values, and threads
        # may share a codec), so each pack takes one from the pool (list.pop and append
        # are atomic) and a new one is made only when all are in use.
        pool = self._packers
        try:
            packer = pool.pop()
        except IndexError:
            packer = self._new_packer()
        try:
            return packer.pack(value)
        finally:
            pool.append(packer)

    def unpack(self, data: bytes) -> Any:
        """Decode bytes made by `pack` (lists stay lists, tuples stay tuples)."""
        return msgpack.unpackb(
            data, ext_hook=self._ext_hook, raw=False, strict_map_key=False, use_list=True
        )


def _refuse(value: Any) -> msgpack.ExtType:
    raise CannotSend(f"{type(value).__qualname__} is not plain data")


def _refuse_reference(code: int, data: bytes) -> Any:
    raise ValueError(f"unexpected msgpack extension type {code}")


def plain_codec() -> Codec:
    """A codec that only accepts plain data (used for the handshake and error payloads)."""
    return Codec(_refuse, _refuse_reference)


# msgpack's Packer packs ints in [-2**63, 2**64) natively and calls `default` for others.
assert _INT64_MIN < 0 < _UINT64_MAX
