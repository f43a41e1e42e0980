"""CURVE-secured TCP next to ipc: the same simple call, over loopback TCP with CURVE.

A server on another host is reached this way, so this row prices encryption,
authentication and the TCP stack against the Unix socket that local servers use. The
server is a plain ``python -m fire serve`` on 127.0.0.1 with key pairs made for the run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from .registry import Call, Comparison, Env, case, compare

_IPC_ROW = "fire: op.add(1, 2)"  # bench/cases.py
_CURVE_ROW = "fire: op.add(1, 2) over CURVE TCP (loopback)"


@case(_CURVE_ROW, order=15)
def curve_call(env: Env) -> Iterator[Call]:
    import fire
    from fire.net.curve import ClientKeys, create_key_pair, read_public, read_secret
    from fire.runners.supervise import parse_ready

    keys = env.tmpdir / "curve"
    server_public, server_secret = create_key_pair(keys / "server", "bench")
    _, client_secret = create_key_pair(keys / "clients", "client")
    options = ["--curve-secret", str(server_secret), "--curve-clients", str(keys / "clients")]
    process = env.spawn([sys.executable, "-m", "fire", "serve", "tcp://127.0.0.1:0", *options])
    endpoint, _ = parse_ready(process.ready_line) or ("", None)
    public, secret = read_secret(client_secret)
    curve = ClientKeys(public, secret, read_public(server_public))
    with fire.connect(endpoint, curve=curve) as remote:
        op = remote.module("operator")
        yield lambda: op.add(1, 2)


compare(
    Comparison(
        title=(
            "CURVE TCP vs ipc, a simple call: CURVE TCP ÷ ipc, the median of per-round ratios\n"
            "(ipc: the Unix socket of servers on this host; CURVE TCP: encrypted, mutually "
            "authenticated loopback TCP, as servers on other hosts are reached)"
        ),
        base_label="ipc µs",
        other_label="CURVE TCP µs",
        ratio_label="CURVE ÷ ipc",
        pairs=(("op.add(1, 2)", _IPC_ROW, _CURVE_ROW),),
    )
)
