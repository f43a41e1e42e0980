"""The ``python -m fire`` command line: a fire server without a framework."""

from __future__ import annotations

import argparse
import logging
import sys

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
from .tokens import read_token_file

#: The help text's description: plain words, since argparse prints it as it is.
DESCRIPTION = (
    "Serve Python modules to fire clients, without Django (a Django service runs "
    "manage.py runfireserver instead)."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fire", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve Python modules at ADDRESS")
    serve_parser.add_argument("address", help="socket path, ipc:///path or tcp://HOST:PORT")
    serve_parser.add_argument("--token-file", help="file holding the token clients must know")
    serve_parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="let a TCP server listen on a non-loopback address",
    )
    serve_parser.add_argument("-v", "--verbose", action="store_true", help="log each session")
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if options.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    try:
        token = read_token_file(options.token_file) if options.token_file else None
        serve(
            options.address,
            token=token,
            allow_remote=options.allow_remote,
            ready=lambda server: print(f"fire server ready at {server.endpoint}", flush=True),
        )
    except FireError as exc:
        print(f"fire: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
