"""Fixtures of the runners' tests: an ``sshd`` of their own, for ssh gateways.

The ssh tests (servers spawned through ssh gateways, pytest-xdist workers over ssh, their
coverage) start an ``sshd`` on a free loopback port, with a host key and an authorized
key made for the test; they are skipped where openssh-server is missing (CI installs
it, and fails the run without it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _sshd() -> str | None:
    return shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)), None
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ssh_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An sshd on a free loopback port; the ssh client config that reaches it as this user."""
    sshd = _sshd()
    if sshd is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but sshd is not installed: .ci/run installs openssh-server")
        pytest.skip("sshd not installed (apt-get install openssh-server): ssh gateway untested")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("the ssh client is not installed: ssh gateway untested")
    folder = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True
        )
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = _free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
    )
    (folder / "ssh_config").write_text(
        f"Host 127.0.0.1\n  Port {port}\n  IdentityFile {folder / 'client_key'}\n"
        "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        "  BatchMode yes\n  LogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    daemon = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(folder / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "sshd.log", "w"),  # noqa: SIM115 (the daemon keeps it)
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and daemon.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        if daemon.poll() is not None:
            pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()}")
        yield folder / "ssh_config"
    finally:
        daemon.terminate()
        daemon.wait(30)
