"""CURVE keys for TCP: zmq.auth's certificate files, read, checked and put on sockets.

TCP servers and clients authenticate each other with ZeroMQ's CURVE mechanism: the
server has a key pair and allows the clients whose public keys are in a directory; a
client has a key pair and knows the server's public key. Keys live in the certificate
files `zmq.auth.create_certificates` writes: ``NAME.key`` (public, to hand out) and
``NAME.key_secret`` (both keys, mode 0600, never to leave its host).

The check of a client's key runs in ZeroMQ's ZAP handshake, before the connection
carries any message: a refused peer never reaches the server's loop and never gets a
session.

``zmq.auth`` is imported only where keys are read, made or checked: every ``ipc://``
server and client imports this module for its types and variables, and ``zmq.auth`` with
its thread authenticator was 6 ms of CPU of each such process's start (median of 9).
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import zmq

from ..errors import FireError

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

__all__ = [
    "ClientKeys",
    "ServerKeys",
    "client_keys",
    "create_key_pair",
    "server_keys",
]

log = logging.getLogger("fire.server")

#: The server's own certificate (``NAME.key_secret``), when --curve-secret is not given.
SERVER_SECRET_VARIABLE = "FIRE_SERVER_CURVE_SECRET"
#: The directory of the public keys of the clients a server allows.
SERVER_CLIENTS_VARIABLE = "FIRE_SERVER_CURVE_CLIENTS"
#: A client's own certificate (``NAME.key_secret``), read by the runners.
CLIENT_SECRET_VARIABLE = "FIRE_CURVE_SECRET"
#: The directory of the servers' public keys, ``SERVER_NAME.key``, read by the runners.
CLIENT_SERVERS_VARIABLE = "FIRE_CURVE_SERVERS"

_MAKE_KEYS = "make key pairs with `python -m fire keys DIRECTORY NAME`"


@dataclass(frozen=True)
class ServerKeys:
    """A TCP server's key pair, and the directory of the public keys it allows."""

    public: bytes
    secret: bytes
    clients: Path


@dataclass(frozen=True)
class ClientKeys:
    """A client's key pair and the public key of the server it talks to."""

    public: bytes
    secret: bytes
    server: bytes
    #: Where the keys came from, for error messages ("--fire-curve-secret …").
    origin: str = "the given keys"


def create_key_pair(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` and ``NAME.key_secret`` (mode 0600) in `directory`; return both."""
    folder = Path(directory)
    if not name or "/" in name or name.startswith("."):
        raise FireError(f"bad key name {name!r}: use a plain name such as 'shop' or 'ci'")
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = (folder / f"{name}.key", folder / f"{name}.key_secret")
    if public.exists() or secret.exists():
        raise FireError(f"{secret} or {public} exists already: choose another name or directory")
    import zmq.auth

    made_public, made_secret = zmq.auth.create_certificates(os.fspath(folder), name)
    os.chmod(made_secret, 0o600)
    return Path(made_public), Path(made_secret)


def read_secret(path: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """The public and secret key of a ``NAME.key_secret`` file, or a `FireError` with the fix."""
    public, secret = _load(path)
    if secret is None:
        raise FireError(
            f"{path} holds no secret key: give the NAME.key_secret file, not NAME.key "
            f"({_MAKE_KEYS})"
        )
    mode = stat.S_IMODE(Path(path).stat().st_mode)
    if mode & 0o077:
        raise FireError(
            f"{path} is readable by other users (mode {mode:o}): a secret key must be "
            f"private; run `chmod 600 {path}`"
        )
    return public, secret


def read_public(path: str | os.PathLike[str]) -> bytes:
    """The public key in a ``NAME.key`` (or ``NAME.key_secret``) file."""
    return _load(path)[0]


def _load(path: str | os.PathLike[str]) -> tuple[bytes, bytes | None]:
    import zmq.auth

    try:
        public, secret = zmq.auth.load_certificate(os.fspath(path))
    except OSError as exc:
        raise FireError(
            f"cannot read CURVE key file {path}: {exc.strerror} ({_MAKE_KEYS})"
        ) from None
    except Exception:
        raise FireError(f"{path} is not a CURVE certificate ({_MAKE_KEYS})") from None
    if not public:
        raise FireError(f"{path} holds no public key ({_MAKE_KEYS})")
    return public, secret


def server_keys(secret_file: str | None, clients_dir: str | None) -> ServerKeys | None:
    """A server's keys from its options, else from ``FIRE_SERVER_CURVE_*``; None if neither.

    Giving one of the two without the other is an error: both are needed.
    """
    secret_file = secret_file or os.environ.get(SERVER_SECRET_VARIABLE) or None
    clients_dir = clients_dir or os.environ.get(SERVER_CLIENTS_VARIABLE) or None
    if secret_file is None and clients_dir is None:
        return None
    if secret_file is None or clients_dir is None:
        raise FireError(
            "a CURVE server needs both its own key (--curve-secret NAME.key_secret, or "
            f"{SERVER_SECRET_VARIABLE}) and the directory of the clients' public keys "
            f"(--curve-clients DIR, or {SERVER_CLIENTS_VARIABLE})"
        )
    public, secret = read_secret(secret_file)
    clients = Path(clients_dir)
    if not clients.is_dir():
        raise FireError(
            f"the clients' key directory {clients} does not exist: create it and copy each "
            "allowed client's NAME.key into it"
        )
    return ServerKeys(public, secret, clients)


def client_keys(
    server_name: str, secret_file: str | None = None, servers_dir: str | None = None
) -> ClientKeys:
    """A client's keys for the server named `server_name`: its own key pair, and the
    server's public key ``SERVER_NAME.key`` from the servers' key directory.

    Each falls back to ``FIRE_CURVE_SECRET`` / ``FIRE_CURVE_SERVERS``.
    """
    secret_file = secret_file or os.environ.get(CLIENT_SECRET_VARIABLE) or None
    servers_dir = servers_dir or os.environ.get(CLIENT_SERVERS_VARIABLE) or None
    if secret_file is None or servers_dir is None:
        raise FireError(
            f"fire server {server_name!r} is on TCP, which needs CURVE keys: this client's "
            f"key (--fire-curve-secret NAME.key_secret, the fire_curve_secret ini option or "
            f"{CLIENT_SECRET_VARIABLE}) and a directory holding the server's public key as "
            f"{server_name}.key (--fire-curve-servers DIR, fire_curve_servers or "
            f"{CLIENT_SERVERS_VARIABLE}); {_MAKE_KEYS}"
        )
    public, secret = read_secret(secret_file)
    server_file = Path(servers_dir) / f"{server_name}.key"
    if not server_file.exists():
        raise FireError(
            f"no public key for fire server {server_name!r}: copy the server's NAME.key "
            f"to {server_file}"
        )
    return ClientKeys(public, secret, read_public(server_file), f"{secret_file} and {server_file}")


def secure_client(socket: zmq.Socket[bytes], keys: ClientKeys) -> None:
    """Make `socket` a CURVE client of the server whose public key `keys` holds."""
    socket.curve_publickey = keys.public
    socket.curve_secretkey = keys.secret
    socket.curve_serverkey = keys.server


def secure_server(socket: zmq.Socket[bytes], keys: ServerKeys) -> None:
    """Make `socket` a CURVE server (the ZAP handler of its context checks the clients)."""
    socket.curve_publickey = keys.public
    socket.curve_secretkey = keys.secret
    socket.curve_server = True


class _AllowList:
    """The ZAP check: a client's key must be in the clients directory *now*.

    Each authentication (a connection or a reconnection, rare) reads every ``.key`` file
    of the directory again: a key copied in counts, and a key removed or replaced is
    refused, from the next connection on. Nothing is cached: a key rewritten in place
    keeps its name, size (every CURVE public key has the same) and possibly its time, so
    no cheaper check can tell. What the reading costs is in docs/security.md.
    A file that cannot be read (a dangling link, no permission, not a certificate) is
    skipped with a log line: one bad file never shuts the other clients out.
    """

    def __init__(self, keys: ServerKeys) -> None:
        self.keys = keys

    def known(self) -> set[bytes]:
        """The public keys of the clients directory's ``NAME.key`` files, read now."""
        try:
            with os.scandir(self.keys.clients) as entries:
                names = sorted(
                    entry.name
                    for entry in entries
                    if entry.name.endswith(".key") and not entry.name.startswith(".")
                )
        except OSError as exc:
            log.warning(
                "cannot list the clients' key directory %s (%s): refusing every client",
                self.keys.clients,
                exc.strerror,
            )
            return set()
        import zmq.auth

        known = set()
        for name in names:
            path = self.keys.clients / name
            try:
                public, _secret = zmq.auth.load_certificate(os.fspath(path))
            except OSError as exc:  # one bad file must not shut every client out
                log.warning("skipped %s: cannot read it (%s)", path, exc.strerror or exc)
                continue
            except Exception:
                log.warning("skipped %s: not a CURVE certificate", path)
                continue
            if public:
                known.add(public)
        return known

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.known():
            return True
        log.warning(
            "refused a client whose CURVE public key %s is not in %s: to allow it, copy "
            "the client's NAME.key there",
            key.decode(),
            self.keys.clients,
        )
        return False


def start_authenticator(
    context: zmq.Context[zmq.Socket[bytes]], keys: ServerKeys
) -> ThreadAuthenticator:
    """Run the ZAP handler of `context` (a thread) that allows the keys of `keys.clients`."""
    from zmq.auth.thread import ThreadAuthenticator

    authenticator = ThreadAuthenticator(context, log=logging.getLogger("fire.server.zap"))
    authenticator.start()
    authenticator.configure_curve_callback("*", credentials_provider=_AllowList(keys))
    return authenticator
