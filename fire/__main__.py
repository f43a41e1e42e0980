"""``python -m fire serve ADDRESS``: a framework-free server; ``python -m fire keys``: CURVE keys.

``python -m fire serve tcp://HOST:PORT --curve-secret NAME.key_secret --curve-clients DIR
[--allow-remote]`` serves over CURVE-secured TCP; ``python -m fire keys DIR NAME`` writes
the key pair ``DIR/NAME.key`` (public) and ``DIR/NAME.key_secret`` (private);
``python -m fire contracts DIR [--json]`` says which consumers use which paths of each
provider, from recorded contracts (docs/contracts.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

try:
    from . import serve
except ImportError:  # python-fire's fire/__init__.py written over ours: same package name
    sys.exit(
        "fire: the installed 'fire' package is not fire from djfire (probably Google's "
        "python-fire, which uses the same name). Fix the environment: `pip uninstall fire`, "
        "then reinstall djfire from the checkout or git URL it came from (it is not on the "
        "package index), e.g. `pip install --force-reinstall --no-deps /path/to/fire`; or "
        "keep python-fire and the tests in separate virtualenvs."
    )
from .errors import FireError
from .net.curve import create_key_pair, server_keys
from .runners.supervise import ready_line
from .server.options import add_server_arguments

if TYPE_CHECKING:
    from .server.loop import Server


def description() -> str:
    """The help text's description, in plain words (argparse prints it as it is).

    It names how each installed framework's service starts its server instead (its
    `fire.runners.spawn.Launcher`: djfire's ``manage.py runfireserver``).
    """
    from .runners.spawn import installed_launchers

    instead = "; ".join(
        f"a {launcher.name} service runs `{launcher.start_command.format(address='ADDRESS')}`"
        for launcher in installed_launchers().values()
        if launcher.start_command
    )
    return "Serve Python modules to fire clients, without a framework" + (
        f" ({instead} instead)." if instead else "."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fire", description=description())
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve Python modules at ADDRESS")
    add_server_arguments(serve_parser)
    serve_parser.add_argument("-v", "--verbose", action="store_true", help="log each session")
    keys_parser = commands.add_parser(
        "keys", help="write a CURVE key pair: DIR/NAME.key (public) and DIR/NAME.key_secret"
    )
    keys_parser.add_argument("directory", help="where to write the two files")
    keys_parser.add_argument("name", help="the key's name: a server's name, or a client's")
    contracts_parser = commands.add_parser(
        "contracts",
        help="which consumers use which paths of each provider, from the Pact files in DIR",
    )
    contracts_parser.add_argument("directory", help="the contracts' directory (DIR/*.json)")
    contracts_parser.add_argument("--json", action="store_true", help="say it as JSON")
    options = parser.parse_args(argv)
    if options.command == "keys":
        return _keys(options.directory, options.name)
    if options.command == "contracts":
        return _contracts(options.directory, as_json=options.json)
    logging.basicConfig(
        level=logging.INFO if options.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    try:
        curve = server_keys(options.curve_secret, options.curve_clients)
        serve(
            options.address,
            curve=curve if options.address.startswith("tcp://") else None,
            allow_remote=options.allow_remote,
            max_message_size=options.max_message_size,
            liveness=options.liveness,
            ready=_print_ready,
        )
    except FireError as exc:
        print(f"fire: {exc}", file=sys.stderr)
        return 2
    return 0


def _print_ready(server: Server) -> None:
    assert server.endpoint is not None  # serve() calls it once the server is bound
    print(ready_line(server.endpoint), flush=True)


def _keys(directory: str, name: str) -> int:
    try:
        public, secret = create_key_pair(directory, name)
    except FireError as exc:
        print(f"fire: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {public} (public: hand it out) and {secret} (secret: keep it here).\n"
        f"For a server: start it with --curve-secret {secret} --curve-clients DIR, and give\n"
        f"clients {public} named after the server, e.g. in their --fire-curve-servers DIR.\n"
        f"For a client: use --fire-curve-secret {secret}, and copy {public} into each\n"
        "server's --curve-clients directory."
    )
    return 0


def _contracts(directory: str, *, as_json: bool) -> int:
    """The versions report (`fire.contracts.versions`); 2 and one line for a bad file."""
    from .contracts.versions import format_uses, uses, uses_json

    try:
        found = uses(directory)
    except FireError as exc:
        print(f"fire: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(uses_json(found))
    elif found:
        print(format_uses(found))
    else:
        print(f"no interactions in {directory}: no consumer uses any provider there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
