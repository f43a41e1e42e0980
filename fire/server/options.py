"""The command-line arguments every fire server takes, declared once.

``python -m fire serve`` and a framework's own command (djfire's ``manage.py
runfireserver``, whose parser is an `argparse.ArgumentParser` too) add them with
`add_server_arguments`, then add their own.
"""

from __future__ import annotations

import argparse

from ..net.curve import SERVER_CLIENTS_VARIABLE, SERVER_SECRET_VARIABLE
from ..wire.protocol import DEFAULT_MAX_MESSAGE_SIZE
from .liveness import DEFAULT_LIVENESS

__all__ = ["add_server_arguments"]


def add_server_arguments(
    parser: argparse.ArgumentParser,
    *,
    default_address: str | None = None,
    listeners: str = "a TCP address",
) -> None:
    """Add the address, the CURVE keys, ``--allow-remote``, ``--max-message-size`` and
    ``--liveness``.

    With `default_address` (words for the help, such as "fire.sock beside manage.py")
    the address may be left out, and is then None for the command to fill in.
    `listeners` names what ``--allow-remote`` lets listen beyond loopback.
    """
    address_help = "socket path, ipc:///path or tcp://HOST:PORT"
    if default_address is None:
        parser.add_argument("address", help=address_help)
    else:
        parser.add_argument(
            "address", nargs="?", default=None, help=f"{address_help} (default: {default_address})"
        )
    parser.add_argument(
        "--curve-secret",
        metavar="NAME.key_secret",
        help=f"the server's CURVE key pair, needed for TCP (default: ${SERVER_SECRET_VARIABLE})",
    )
    parser.add_argument(
        "--curve-clients",
        metavar="DIR",
        help="directory of the public keys (NAME.key) of the clients allowed over TCP "
        f"(default: ${SERVER_CLIENTS_VARIABLE})",
    )
    parser.add_argument(
        "--allow-remote", action="store_true", help=f"let {listeners} listen beyond loopback"
    )
    parser.add_argument(
        "--max-message-size",
        type=int,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help="the largest request a client may send "
        f"(default: {DEFAULT_MAX_MESSAGE_SIZE // 2**20} MiB)",
    )
    parser.add_argument(
        "--liveness",
        type=float,
        default=DEFAULT_LIVENESS,
        metavar="SECONDS",
        help="over TCP, a client silent this long (its link cut, frozen or half-open) loses "
        "its session: its test scopes are rolled back (default: %(default)g)",
    )
