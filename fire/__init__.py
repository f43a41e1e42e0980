"""fire: call Python objects on another process over ZeroMQ + msgpack, through proxies.

Plain data travels by value, everything else stays on the server and comes back as a
proxy. See docs/reference/fire.md for the rules; `djfire` adds Django test isolation.
"""

from ._version import __version__
from .client.proxy import Proxy, is_proxy
from .client.remote import Remote, connect
from .errors import (
    AuthenticationError,
    FireError,
    ProtocolError,
    RemoteError,
    ServerBusy,
    ServerUnavailable,
)
from .server.loop import Server, serve

#: Marks this package as fire from the djfire distribution (not Google's python-fire).
__fire_origin__ = "djfire"

__all__ = [
    "AuthenticationError",
    "FireError",
    "ProtocolError",
    "Proxy",
    "Remote",
    "RemoteError",
    "Server",
    "ServerBusy",
    "ServerUnavailable",
    "__version__",
    "connect",
    "is_proxy",
    "serve",
]
