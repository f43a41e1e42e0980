"""Addresses: a Unix socket path, `ipc:///abs/path` or `tcp://HOST:PORT`, and their checks."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import FireError, ServerUnavailable

__all__ = ["SOCKET_DIR_VARIABLE", "Address", "parse_address", "remove_socket"]

# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class Address:
    """A parsed address; `path` is set for Unix sockets, `host`/`port` for TCP."""

    endpoint: str  # what ZeroMQ binds or connects to
    path: Path | None = None
    host: str | None = None
    port: int | None = None

    @property
    def is_tcp(self) -> bool:
        return self.path is None

    @property
    def may_be_ipv6(self) -> bool:
        """Whether ZeroMQ must be allowed IPv6 (``[::1]``, or a name that may resolve to it)."""
        if self.host is None or self.host == "*":
            return False
        try:
            return ipaddress.ip_address(self.host).version == 6
        except ValueError:
            return True  # a host name

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else self.endpoint


def parse_address(address: str | os.PathLike[str], base: Path | None = None) -> Address:
    """Parse a user-given address; relative socket paths resolve against `base` (or the cwd)."""
    text = os.fspath(address)
    if text.startswith("tcp://"):
        host, sep, port = text[len("tcp://") :].rpartition(":")
        if not sep or not host or not (port.isdigit() or port == "*"):
            raise FireError(f"bad TCP address {text!r}: expected tcp://HOST:PORT")
        host = host.strip("[]")
        number = 0 if port == "*" else int(port)
        shown = f"[{host}]" if ":" in host else host  # tcp://[::1]:PORT
        return Address(f"tcp://{shown}:{port if port != '0' else '*'}", host=host, port=number)
    if text.startswith("ipc://"):
        text = text[len("ipc://") :]
        if not text.startswith("/"):
            raise FireError(f"bad ipc address {address!r}: use ipc:///absolute/path")
    elif "://" in text:
        raise FireError(
            f"unsupported address {text!r}: use a socket path, ipc:///path or tcp://HOST:PORT"
        )
    path = Path(text)
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    path = Path(os.path.normpath(path))
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise FireError(
            f"socket path {path} is {len(os.fsencode(path))} bytes long; Unix sockets allow "
            f"{_MAX_SOCKET_PATH}: choose a shorter path"
        )
    return Address(f"ipc://{path}", path=path)


def is_loopback(host: str) -> bool:
    """Whether a TCP host is on this machine only (``localhost`` or a loopback IP).

    A listener on another address is reachable from other machines, which fire allows
    only when told (``--allow-remote``).
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_hint(address: str, start_command: str | None = None) -> str:
    """How to start a server at `address`: the fix an unavailable-server error gives.

    `start_command` is how the service's framework starts one (``{address}`` replaced;
    a `fire.runners.spawn.Launcher` says it, e.g. djfire's ``python manage.py runfireserver``);
    without it the fix names fire's own server for plain Python modules.
    """
    curve = (
        " --curve-secret NAME.key_secret --curve-clients DIR"
        if address.startswith("tcp://")
        else ""
    )
    plain = f"python -m fire serve {address}{curve}"
    if start_command is None:
        return (
            f"start the service's fire server there (with its framework's command, or "
            f"`{plain}` for plain Python modules)"
        )
    framework = start_command.format(address=address) + curve
    return f"start it in the service's project with `{framework}` (or `{plain}`)"


def probe_unix_socket(path: Path, start_command: str | None = None) -> None:
    """Raise `ServerUnavailable` at once when nothing can listen at `path`."""
    start = start_hint(os.fspath(path), start_command)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ServerUnavailable(
            f"no fire server at {path}: the socket does not exist; {start}", str(path)
        ) from None
    if not stat.S_ISSOCK(mode):
        raise ServerUnavailable(f"{path} is not a socket: is the address right?", str(path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(os.fspath(path))
        except ConnectionRefusedError:
            raise ServerUnavailable(
                f"no fire server at {path}: the socket exists but nothing listens "
                f"(a server that died?); {start}",
                str(path),
            ) from None
        except PermissionError:
            raise ServerUnavailable(
                f"the fire server at {path} is not yours: the socket is private to its owner",
                str(path),
            ) from None


def prepare_socket_path(path: Path) -> None:
    """Check the socket's directory and clear a stale socket file; refuse a live one.

    Raises `FireError` naming the problem: a missing or unwritable directory, a file
    that is not a socket, another server answering there. A socket file nobody answers
    on (left by a killed server) is removed.
    """
    directory = path.parent
    if not directory.is_dir():
        raise FireError(f"cannot serve at {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FireError(f"cannot serve at {path}: directory {directory} is not writable")
    if not path.exists() and not path.is_symlink():
        return
    if not stat.S_ISSOCK(path.lstat().st_mode):
        raise FireError(f"cannot serve at {path}: a file that is not a socket is in the way")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(os.fspath(path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise
        else:
            raise FireError(f"cannot serve at {path}: another server is running there")
    path.unlink(missing_ok=True)


#: Names the directory a runner made for a server's socket (`fire.runners.spawn`): the
#: server removes it with its socket (`remove_socket`), so that a runner killed before
#: it leaves no directory behind.
SOCKET_DIR_VARIABLE = "FIRE_SOCKET_DIR"


def remove_socket(path: Path) -> None:
    """Remove the socket file; and its directory too, when empty and the one named by
    `SOCKET_DIR_VARIABLE` (made for this server, by a runner that may be gone)."""
    path.unlink(missing_ok=True)
    made = os.environ.get(SOCKET_DIR_VARIABLE)
    if made and Path(made) == path.parent:
        with contextlib.suppress(OSError):  # not empty, or removed already
            path.parent.rmdir()


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Create files (the socket) readable and writable by their owner only."""
    previous = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(previous)
