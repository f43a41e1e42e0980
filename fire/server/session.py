"""One client's state on a server: its references, shapes already sent, and scope data."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import msgpack

from ..errors import FireError
from ..wire.clock import wall_time
from ..wire.codec import EXT_ARGREF, EXT_REF, Codec
from ..wire.protocol import DEFAULT_MAX_MESSAGE_SIZE
from ..wire.values import ValueRules
from .shapes import ShapeTable
from .undo import ScopeUndo

__all__ = ["Session"]

_GONE = object()


class Session:
    """Everything the server keeps for one connected client, keyed by its identity."""

    def __init__(
        self,
        identity: bytes,
        shapes: ShapeTable,
        values: ValueRules | None = None,
        ids: Iterator[int] | None = None,
    ) -> None:
        self.identity = identity
        #: The server's value rules (which iterables are read whole).
        self.values = values or ValueRules()
        #: The protocol version the handshake chose (`fire.wire.handshake`).
        self.version: int | None = None
        self.client: dict[str, Any] = {}
        #: The largest reply the client takes (its ``max_message_size``, said in hello).
        self.max_reply_size = DEFAULT_MAX_MESSAGE_SIZE
        self.started = time.time()
        #: This server's clock minus the client's when it said hello (`seconds_left`).
        self.clock_offset = 0.0
        #: Per-extension state (djfire keeps its open scopes here).
        self.extension_state: dict[str, Any] = {}
        #: What this client changed in the process (patches, the clock), undone when
        #: the scope it was made in ends: the scope extension calls ``scope_began`` and
        #: ``scope_ended`` (`fire.server.undo`).
        self.undo = ScopeUndo()
        self.refs: dict[int, Any] = {}
        #: Reference ids: the server's, shared by its sessions (`Dispatcher`), so that a
        #: reference of a closed session never names an object of a later one.
        self._ids = ids if ids is not None else itertools.count(1)
        self._shapes = shapes
        self._sent_shapes: set[int] = set()
        self._new_shapes: list[int] = []
        self.codec = Codec(self._encode_reference, self._decode_reference)

    def describe(self) -> str:
        """Who this client is, for messages such as "the server is held by …"."""
        label = self.client.get("label") or self.client.get("argv") or "a client"
        return f"{label} (pid {self.client.get('pid', '?')} on {self.client.get('host', '?')})"

    def seconds_left(self, client_deadline: float) -> float:
        """Seconds until `client_deadline`, a ``time.time()`` of the client's clock (the
        offset between the clocks is measured at hello, so the hosts' clocks may differ)."""
        return client_deadline + self.clock_offset - wall_time()

    # references out
    def _encode_reference(self, obj: Any) -> msgpack.ExtType:
        shape_id = self._shapes.shape_id(obj)
        if shape_id not in self._sent_shapes:
            self._new_shapes.extend(self._shapes.to_send(shape_id, self._sent_shapes))
        ref_id = next(self._ids)
        self.refs[ref_id] = obj
        shadowed = self._shapes.shadowed(shape_id, obj)
        payload = [ref_id, shape_id, shadowed] if shadowed else [ref_id, shape_id]
        return msgpack.ExtType(EXT_REF, msgpack.packb(payload))

    def take_new_shapes(self) -> dict[int, Any] | None:
        """Shapes to send with the next reply (each once per session)."""
        if not self._new_shapes:
            return None
        new = {shape_id: self._shapes.content(shape_id) for shape_id in self._new_shapes}
        self._new_shapes.clear()
        return new

    def reply_not_sent(self, refs_before: int, shapes: dict[int, Any] | None = None) -> None:
        """A reply was not sent (it failed to encode, or is over the client's bound).

        Forget what it would have given the client: the references it made (the last
        ``len(refs) - refs_before`` made, since packing a reply only adds references) and
        its shapes (`shapes`, if already taken, and those still to take).
        """
        refs = self.refs
        for _ in range(len(refs) - refs_before):
            refs.popitem()
        self._sent_shapes.difference_update(self._new_shapes)
        self._new_shapes.clear()
        if shapes:
            self._sent_shapes.difference_update(shapes)

    # references in
    def _decode_reference(self, code: int, data: bytes) -> Any:
        if code != EXT_ARGREF:
            raise FireError(f"unknown msgpack extension type {code} in request")
        return self.resolve(msgpack.unpackb(data))

    def resolve(self, target: Any) -> Any:
        """The object a target names: a reference id, or ``[id, attribute, attribute, …]``."""
        if isinstance(target, int):
            return self._lookup(target)
        if not isinstance(target, list) or not target or not isinstance(target[0], int):
            raise FireError(f"bad target {target!r}: expected a reference id or [id, names…]")
        obj = self._lookup(target[0])
        for step in range(1, len(target)):  # no slice or enumerate: this runs per call
            name = target[step]
            if not isinstance(name, str):
                raise FireError(f"bad attribute name {name!r} in target")
            try:
                obj = getattr(obj, name)
            except Exception as exc:
                path = ".".join(target[1 : step + 1])
                exc.add_note(f"(fire: while reading .{path} of a remote object)")
                raise
        return obj

    def _lookup(self, ref_id: int) -> Any:
        try:
            return self.refs[ref_id]
        except KeyError:
            if self.client.get("again"):
                raise FireError(
                    f"reference {ref_id} is not alive on this server: this client's link was "
                    "lost and its session was closed, with the references it held (get the "
                    "object again), or it was released"
                ) from None
            raise FireError(
                f"reference {ref_id} is not alive on this server "
                "(released, or from another connection)"
            ) from None

    def release(self, ref_ids: list[int]) -> None:
        """Drop references the client no longer holds."""
        refs = self.refs
        for ref_id in ref_ids:
            refs.pop(ref_id, None)

    def take(self, ref_ids: list[int]) -> list[Any]:
        """Forget references the client no longer holds; returns their objects.

        Whoever drops the list runs the finalizers of the objects it held the last
        references to (`fire.extensions`: an extension may drop it where that is safe).
        """
        refs = self.refs
        taken = []
        for ref_id in ref_ids:
            obj = refs.pop(ref_id, _GONE)
            if obj is not _GONE:
                taken.append(obj)
        return taken

    def take_all(self) -> list[Any]:
        """Forget every reference (the session closes); returns their objects, as `take`."""
        taken = list(self.refs.values())
        self.refs.clear()
        return taken

    def close(self) -> None:
        """Free everything this client held."""
        self.refs.clear()
        self.extension_state.clear()
