"""Run on the far side of an execnet gateway: start a server, report it, stop it.

`fire.runners.spawn` sends this module's source through the gateway (``remote_exec``), so it
runs in whatever interpreter the gateway reaches, with the standard library only (the
far side's fire may be another version). Without a gateway, `fire.runners.spawn` runs the same
`supervise` in a thread, with a local stand-in for the channel. Messages:

- in: one dict (the arguments after the interpreter, working directory, environment,
  the CURVE certificates to write for a TCP server), then ``"stop"``;
- out: ``("host", hostname, command)`` first; ``("output", line)`` for each line the
  server prints; ``("ready", endpoint, url, pid)`` once; ``("killed", returncode)``
  when a signal ended the server (its clean-up's output lines follow, see below);
  ``("exited", returncode)`` when the server ends; ``("stopped", returncode)`` after
  ``"stop"``; with coverage, ``("coverage", …)`` or ``("coverage-lost", …)`` before its
  exit (below).

A server killed by a signal (a negative return code: SIGKILL, SIGSEGV, the OOM killer)
never ran its teardown, so its test databases are left. When the request names the
launcher's clean-up option (``"cleanup"``, djfire's ``--drop-left-databases``), the
supervisor then runs the server's command again with that option (the same interpreter,
directory, environment and options, hence the same test database names), relays its
lines as the server's output, and only then says ``"exited"`` (or ``"stopped"``). An exit
status the server chose, or a stop it obeyed, is no reason for it.

With ``"coverage"`` in the request (the options of ``coverage run`` and the data file's
name), the server runs under ``python -m coverage run --parallel-mode``, its data file
in its own directory (where ``coverage run manage.py …`` would write it), written as it
stops. Once it ended, the supervisor sends each data file it wrote, ``("coverage", file
name, bytes)``, and removes it; where there is none, ``("coverage-lost", why)``: killed
before it could write, or run without coverage (its directory is read-only, its
interpreter has no coverage.py).

A dying gateway never leaves a server running: when the channel closes (the test run
ended or was killed, the ssh connection broke) the waiting ``receive`` fails and the
server is stopped; on Linux the server also gets SIGTERM if this process is killed
outright (``PR_SET_PDEATHSIG``).

The ready line lives here too, as the one place that writes it (`ready_line`: ``python
-m fire serve``, ``runfireserver``) and reads it (`parse_ready`), with the one way to
wait for it (`wait_ready`, and `start` for a plain child process: the tests' and the
bench's servers), since this module can import nothing of fire.
"""

from __future__ import annotations

import functools
import io
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

#: How a server's ready line begins: it prints it once it takes connections.
READY = "fire server ready at "
_READY = re.compile(re.escape(READY) + r"(\S+?)(?:, HTTP at (\S+?))?(?:; .*)?$")
_STOP_SECONDS = 30.0
#: How long the clean-up after a killed server may take (its start-up, the drops).
CLEANUP_SECONDS = 60.0


class NotReady(Exception):
    """A process ended its output, or ran out of time, before printing its ready line."""


def ready_line(
    endpoint: str,
    http: str | None = None,
    data_changes: str | None = None,
    test_databases: str | None = None,
) -> str:
    """The line a server prints once it takes connections at `endpoint` (no newline).

    `http` is its live HTTP server's URL; `data_changes` says, for people, what its
    capture watches; `test_databases` how its test databases were made (cloned from a
    template, how old, or migrated, and how long it took). `parse_ready` reads the first
    two back.
    """
    line = READY + endpoint
    if http is not None:
        line += f", HTTP at {http}"
    if test_databases is not None:
        line += f"; test databases: {test_databases}"
    if data_changes is not None:
        line += f"; data changes: {data_changes}"
    return line


def parse_ready(line: str) -> tuple[str, str | None] | None:
    """The endpoint and HTTP URL (or None) of a `ready_line`; None for any other line."""
    match = _READY.search(line.strip())
    return (match.group(1), match.group(2)) if match else None


def wait_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[str], object] = parse_ready,
    timeout: float | None = None,
    output: Callable[[str], object] | None = None,
) -> str:
    """Read `process`'s output line by line until `ready(line)` is true; return that line.

    The output must be piped unbuffered (``stdout=PIPE, bufsize=0``), so that no line
    waits in a buffer the timeout cannot see. `output` is given every line read, the
    ready one too. Raises `NotReady` saying why: the output ended first, or `timeout`
    seconds passed.
    """
    stream = process.stdout
    assert stream is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotReady(f"printed no ready line within {timeout:g} s")
            if not select.select([stream], [], [], remaining)[0]:
                continue
        # Unbuffered: readline takes one line, so select() sees any that follow.
        data = stream.readline()
        if not data:
            try:
                code: int | None = process.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            raise NotReady(f"ended its output (exit status {code}) before its ready line")
        line = data.decode(errors="replace")
        if output is not None:
            output(line)
        if ready(line):
            return line


def start(
    argv: list[str],
    ready: Callable[[str], object] = parse_ready,
    timeout: float | None = None,
    **options: Any,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `argv` (`subprocess.Popen` `options`); return it and its ready line once printed.

    Its output is piped (`wait_ready`); the caller reads or closes it. Where it printed
    no ready line, it is stopped and `NotReady` raised.
    """
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, bufsize=0, **options)
    try:
        return process, wait_ready(process, ready, timeout)
    except NotReady:
        stop(process)
        assert process.stdout is not None
        process.stdout.close()
        raise


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervising thread's process dies; and
    Ctrl-C's SIGINT as a process of the terminal gets it (the supervisor may ignore it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
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


def stop(
    process: subprocess.Popen[Any],
    seconds: float = _STOP_SECONDS,
    *,
    signum: int = signal.SIGTERM,
) -> int:
    """SIGTERM, or `signum` (a server tears its test databases down), SIGKILL after
    `seconds`; reap."""
    if process.poll() is None:
        process.send_signal(signum)
        try:
            return process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def _clean_up(channel: Any, argv: list[str], cwd: str, environ: dict[str, str]) -> None:
    """Run the clean-up command `argv` of a killed server; send its output as the server's.

    In a session of its own: the terminal's Ctrl-C must not cut a drop short; it ends by
    itself, within `CLEANUP_SECONDS`.
    """
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=CLEANUP_SECONDS,
            start_new_session=True,
        )
        text = done.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as exc:
        text = (exc.output or b"").decode(errors="replace")
        text += f"{' '.join(argv)} did not end within {CLEANUP_SECONDS:g} s: killed\n"
    except OSError as exc:
        text = f"cannot start {' '.join(argv)}: {exc}\n"
    for line in text.splitlines(keepends=True):
        if not channel.isclosed():
            channel.send(("output", line))


def _under_coverage(
    channel: Any, request: dict[str, Any], argv: list[str], environ: dict[str, str]
) -> tuple[list[str], str | None]:
    """`argv` run under ``coverage run`` where the request asks for coverage, and the path
    its data file's names begin with; `argv` as it is and None where it is not measured
    (said in a ``"coverage-lost"`` message: the server then runs without)."""
    wanted = request.get("coverage")
    if not wanted:
        return argv, None
    for variable in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
        environ.pop(variable, None)  # coverage.py's own measuring of subprocesses: not twice
    folder = request["cwd"]
    if not os.access(folder, os.W_OK):
        why = f"its directory {folder} is read-only, so it ran without coverage"
        channel.send(("coverage-lost", why))
        return argv, None
    if argv[0] == sys.executable:
        import importlib.util

        found = importlib.util.find_spec("coverage") is not None
    else:
        probe = [argv[0], "-c", "import coverage"]
        found = subprocess.run(probe, env=environ, capture_output=True).returncode == 0
    if not found:
        why = (
            f"{argv[0]} has no coverage.py, so it ran without coverage: install djfire's "
            "coverage extra in the service's environment (djfire[coverage])"
        )
        channel.send(("coverage-lost", why))
        return argv, None
    data_file = os.path.join(folder, wanted["data_file"])
    run = ["-m", "coverage", "run", "--parallel-mode", f"--data-file={data_file}"]
    return [argv[0], *run, *wanted["options"], *argv[1:]], data_file


def _send_coverage(channel: Any, data_file: str, pid: int, code: int) -> None:
    """Send the data files the server `pid` wrote (``DATA_FILE.HOST.pidPID.RANDOM``,
    coverage's parallel names), removing each; or why there is none."""
    folder, base = os.path.split(data_file)
    try:
        names = sorted(
            name
            for name in os.listdir(folder)
            if name.startswith(base + ".") and (f".pid{pid}." in name or f".{pid}." in name)
        )
    except OSError:
        names = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as file:
                data = file.read()
            os.remove(path)
        except OSError as exc:
            channel.send(("coverage-lost", f"its data file {path} could not be read: {exc}"))
            return
        channel.send(("coverage", name, data))
    if not names:
        why = (
            f"it was killed (signal {-code}) before it could write it"
            if code < 0
            else f"it wrote no data file in {folder} (exit status {code})"
        )
        channel.send(("coverage-lost", why))


def _relay(
    channel: Any,
    process: subprocess.Popen[bytes],
    clean_up: Callable[[], None] | None,
    cleaning: threading.Event,
    data_file: str | None = None,
) -> None:
    """Send the server's output line by line, its ready line once, its exit; before its
    exit, its coverage data (where `data_file` names it) and, where a signal ended it,
    the output of `clean_up` (`cleaning` is set meanwhile)."""
    assert isinstance(process.stdout, io.FileIO)  # piped with bufsize=0: raw, unbuffered

    def output(line: str) -> None:
        channel.send(("output", line))

    try:
        line = wait_ready(process, output=output)
    except NotReady:
        pass
    else:
        endpoint, url = parse_ready(line) or (None, None)
        channel.send(("ready", endpoint, url, process.pid))
        for data in io.BufferedReader(process.stdout):  # buffered from here: no more select
            output(data.decode(errors="replace"))
    code = process.wait()
    if data_file is not None and not channel.isclosed():
        _send_coverage(channel, data_file, process.pid, code)
    if code < 0 and clean_up is not None:
        cleaning.set()
        if not channel.isclosed():
            channel.send(("killed", code))
        clean_up()
    if not channel.isclosed():
        channel.send(("exited", code))


def supervise(channel: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        # Through a gateway this is its main thread, which the terminal's Ctrl-C would
        # interrupt anywhere (inside the channel's locks too), leaving the server running:
        # the channel stops the server (the runner says "stop" at once), and the server
        # gets the terminal's SIGINT itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    request = channel.receive()
    # 0700; removed before the last message, so that a stopped supervisor left nothing
    directory = tempfile.mkdtemp(prefix="fire-keys-") if request["keys"] else None
    try:
        command = [request.get("python") or sys.executable, *request["argv"]]
        argv = list(command)
        if directory is not None:
            argv += _write_keys(directory, request["keys"])
        environ = {**os.environ, **request["env"], "PYTHONUNBUFFERED": "1"}
        clean_up = None
        if request.get("cleanup"):
            cleanup_argv = [*command, request["cleanup"]]
            clean_up = functools.partial(_clean_up, channel, cleanup_argv, request["cwd"], environ)
        channel.send(("host", socket.gethostname(), " ".join(argv)))
        if not os.path.isfile(argv[1]):
            channel.send(("output", f"{argv[1]} does not exist on {socket.gethostname()}\n"))
            channel.send(("exited", None))
            return
        argv, data_file = _under_coverage(channel, request, argv, environ)
        try:
            process = subprocess.Popen(
                argv,
                cwd=request["cwd"],
                env=environ,
                stdout=subprocess.PIPE,
                bufsize=0,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            channel.send(("output", f"cannot start {' '.join(argv)}: {exc}\n"))
            channel.send(("exited", None))
            return
        cleaning = threading.Event()
        relay = threading.Thread(
            target=_relay, args=(channel, process, clean_up, cleaning, data_file), daemon=True
        )
        relay.start()
        asked = "stop"
        try:
            # "stop" or "interrupt" (the run's Ctrl-C), or an error when the channel or
            # gateway closes
            asked = channel.receive()
        finally:
            code = stop(process, signum=signal.SIGINT if asked == "interrupt" else signal.SIGTERM)
            relay.join(5)
            if cleaning.is_set():  # a killed server's clean-up: it ends before "stopped"
                relay.join(CLEANUP_SECONDS + 5)
            _remove(directory)
            if not channel.isclosed():
                channel.send(("stopped", code))
    finally:
        _remove(directory)


def _remove(directory: str | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__channelexec__":
    supervise(channel)  # type: ignore[name-defined]  # noqa: F821  (execnet's global)
