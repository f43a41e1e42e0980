"""Reference lifetime: releases ride on the next request; a gone client's references are freed."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import textwrap
from typing import Any

from servers import ExchangeCounter, ServerProcess, server_env, wait_for

import fire


def test_dropped_proxies_are_released_with_the_next_request(
    remote: fire.Remote, helpers: Any, exchanges: ExchangeCounter
) -> None:
    before = remote.info()["refs"]
    things = [helpers.Thing(f"t{i}") for i in range(100)]
    assert remote.info()["refs"] >= before + 100
    del things
    gc.collect()
    with exchanges.counting():
        refs = remote.info()["refs"]
    assert exchanges.count == 1  # the releases travelled with the info request
    assert refs == before


def test_pending_paths_hold_no_server_reference(remote: fire.Remote, helpers: Any) -> None:
    before = remote.info()["refs"]
    paths = [helpers.Outer.Inner for _ in range(20)]
    assert remote.info()["refs"] == before
    assert all(fire.is_proxy(path) for path in paths)


def test_refs_stay_while_proxies_live(remote: fire.Remote, helpers: Any) -> None:
    thing = helpers.Thing("kept")
    gc.collect()
    remote.ping()
    remote.ping()
    assert thing.name == "kept"


def test_closed_client_references_are_freed(
    shared_server: ServerProcess, remote: fire.Remote
) -> None:
    baseline = remote.info()["total_refs"]
    other = fire.connect(shared_server.path)
    helpers = other.module("remote_helpers")
    things = [helpers.Thing(f"o{i}") for i in range(50)]
    assert remote.info()["total_refs"] >= baseline + 50
    other.close()
    assert wait_for(lambda: remote.info()["total_refs"] == baseline)
    del things, helpers  # dropping proxies of a closed connection is harmless
    gc.collect()


KILLED_CLIENT = textwrap.dedent("""
    import sys, time, fire
    remote = fire.connect(sys.argv[1])
    helpers = remote.module("remote_helpers")
    things = [helpers.Thing(str(i)) for i in range(40)]
    print(remote.info()["refs"], flush=True)
    time.sleep(60)
""")


def test_killed_client_references_are_freed(
    shared_server: ServerProcess, remote: fire.Remote
) -> None:
    baseline = remote.info()
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, str(shared_server.path)],
        stdout=subprocess.PIPE,
        text=True,
        env=server_env(),
    )
    try:
        assert client.stdout is not None
        assert int(client.stdout.readline()) == 41  # the module and 40 things
        during = remote.info()
        assert during["total_refs"] == baseline["total_refs"] + 41
    finally:
        client.kill()
        client.wait(timeout=30)
        if client.stdout is not None:
            client.stdout.close()
    assert wait_for(lambda: remote.info()["total_refs"] == baseline["total_refs"])
    # Not == baseline: a session an earlier test closed may only now be noticed gone.
    assert remote.info()["sessions"] < during["sessions"]


def test_releases_survive_a_failed_request(own_server: ServerProcess) -> None:
    with fire.connect(own_server.path, timeout=1) as remote:
        helpers = remote.module("remote_helpers")
        before = remote.info()["refs"]
        things = [helpers.Thing(str(i)) for i in range(10)]
        del things
        gc.collect()
        own_server.send(signal.SIGSTOP)
        try:
            remote.ping()
        except fire.ServerUnavailable:
            pass
        else:
            raise AssertionError("a stopped server answered")
        own_server.send(signal.SIGCONT)
        assert remote.info()["refs"] == before


SERVER_WITH_A_RELEASER = """
import sys, threading, fire

class Releaser:
    '''Drops released objects on a thread of its own, as an extension guarding them may.'''
    name = "releaser"
    def __init__(self):
        self.dropped = []
    def operations(self):
        return {"dropped": lambda session: list(self.dropped)}
    def release_references(self, session, objects):
        def drop():
            self.dropped.extend(sorted(type(o).__name__ for o in objects))
            objects.clear()
        thread = threading.Thread(target=drop)
        thread.start()
        thread.join()

server = fire.Server(sys.argv[1], extensions=[fire.extensions.Scopes(), Releaser()])
server.bind()
print(f"fire server ready at {server.endpoint}", flush=True)
server.serve_forever()
"""


def test_an_extension_drops_released_objects_where_it_says(
    server_factory: Any, tmp_dir: Any
) -> None:
    server = server_factory(["-c", SERVER_WITH_A_RELEASER, str(tmp_dir / "releaser.sock")])
    with fire.connect(server.path, timeout=10) as remote:
        helpers = remote.module("remote_helpers")
        things = [helpers.Thing(str(i)) for i in range(3)]
        before = remote.info()["refs"]
        del things
        gc.collect()
        assert remote.info()["refs"] == before - 3  # gone from the session at once
        assert remote.call_extension("dropped") == ["Thing", "Thing", "Thing"]
        kept = helpers.Thing("kept")
    with fire.connect(server.path, timeout=10) as other:
        assert wait_for(lambda: other.call_extension("dropped").count("Thing") == 4)
        assert "module" in other.call_extension("dropped")  # a closing session's references too
    del kept
