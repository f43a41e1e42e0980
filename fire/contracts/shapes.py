"""Request shapes: which recorded requests are "the same" interaction of a contract.

A path's numeric ids and UUIDs stand for any (``/api/v2/users/7/`` is
``/api/v2/users/{id}/``); a shape is the consumer, the provider, the method, the path
template, the query's parameter names and the response's status. Many tests making
the same shape keep one interaction, listing them all.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["path_template", "shape"]

_UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
_ID_SEGMENT = re.compile(rf"^(?:\d+|{_UUID})$")


def path_template(path: str) -> str:
    """`path` with each segment that is a number or a UUID written ``{id}``."""
    return "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in path.split("/"))


def shape(consumer: str, provider: str, recorded: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two recorded requests one interaction of the contract."""
    request, response = recorded["request"], recorded["response"]
    return (
        consumer,
        provider,
        request["method"],
        path_template(request["path"]),
        tuple(sorted(request.get("query") or {})),
        response["status"],
    )
