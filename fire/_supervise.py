"""Run on the far side of an execnet gateway: start a server, report it, stop it.

`fire.spawn` sends this module's source through the gateway (``remote_exec``), so it
runs in whatever interpreter the gateway reaches, with the standard library only (the
far side's fire may be another version). Without a gateway, `fire.spawn` runs the same
`supervise` in a thread, with a local stand-in for the channel. Messages:

- in: one dict (the arguments after the interpreter, working directory, environment,
  the CURVE certificates to write for a TCP server), then ``"stop"``;
- out: ``("host", hostname, command)`` first; ``("output", line)`` for each line the
  server prints; ``("ready", endpoint, url, pid)`` once; ``("exited", returncode)``
  when the server ends; ``("stopped", returncode)`` after ``"stop"``.

A dying gateway never leaves a server running: when the channel closes (the test run
ended or was killed, the ssh connection broke) the waiting ``receive`` fails and the
server is stopped; on Linux the server also gets SIGTERM if this process is killed
outright (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any

_READY = re.compile(r"fire server ready at (\S+?)(?:, HTTP at (\S+?))?(?:; .*)?$")
_STOP_SECONDS = 30.0


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervising thread's process dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the channel watch alone stops it
        pass


def _write_keys(directory: str, keys: dict[str, Any]) -> list[str]:
    """Write the server's certificate and the allowed client's; return the options."""
    secret = os.path.join(directory, "server.key_secret")
    clients = os.path.join(directory, "clients")
    os.mkdir(clients, 0o700)
    with open(os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(keys["server_secret"])
    with open(os.path.join(clients, "client.key"), "w") as file:
        file.write(keys["client_public"])
    return ["--curve-secret", secret, "--curve-clients", clients]


def _stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the server tears its test databases down
        try:
            return process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _relay(channel: Any, process: subprocess.Popen[str]) -> None:
    """Send the server's output line by line, its ready line once, its exit."""
    assert process.stdout is not None
    for line in process.stdout:
        channel.send(("output", line))
        match = _READY.search(line.strip())
        if match:
            channel.send(("ready", match.group(1), match.group(2), process.pid))
    code = process.wait()
    if not channel.isclosed():
        channel.send(("exited", code))


def supervise(channel: Any) -> None:
    request = channel.receive()
    directory = tempfile.mkdtemp(prefix="fire-keys-")  # 0700
    try:
        argv = [request.get("python") or sys.executable, *request["argv"]]
        if request["keys"]:
            argv += _write_keys(directory, request["keys"])
        environ = {**os.environ, **request["env"], "PYTHONUNBUFFERED": "1"}
        channel.send(("host", socket.gethostname(), " ".join(argv)))
        if not os.path.isfile(argv[1]):
            channel.send(("output", f"{argv[1]} does not exist on {socket.gethostname()}\n"))
            channel.send(("exited", None))
            return
        try:
            process = subprocess.Popen(
                argv,
                cwd=request["cwd"],
                env=environ,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            channel.send(("output", f"cannot start {' '.join(argv)}: {exc}\n"))
            channel.send(("exited", None))
            return
        relay = threading.Thread(target=_relay, args=(channel, process), daemon=True)
        relay.start()
        try:
            channel.receive()  # "stop", or an error when the channel or gateway closes
        finally:
            code = _stop(process)
            relay.join(5)
            if not channel.isclosed():
                channel.send(("stopped", code))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__channelexec__":
    supervise(channel)  # type: ignore[name-defined]  # noqa: F821  (execnet's global)
