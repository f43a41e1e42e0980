"""A remote post-mortem, in memory: the server keeps a failed call, pdb runs on its frame.

What the terminal sees through pytest is tests/runners/test_remote_pdb.py; here, the
operations themselves (``debug_attach``, ``debug_start``, ``debug_input``), through a
server's dispatcher in this process.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

import fire
from fire.client.debugging import attach, failure_of, post_mortem
from fire.errors import FireError
from fire.net.loopback import Loopback
from fire.server.dispatch import Dispatcher


def _failure(remote: fire.Remote, key: str = "missing") -> Any:
    with pytest.raises(KeyError) as raised:
        remote.module("remote_helpers").fail_key(key)
    return raised.value


def _session(remote: fire.Remote, error: Any, lines: list[str]) -> tuple[bool, str]:
    """Run a post-mortem on `error` typing `lines`; whether it quit, and what it wrote."""
    found = failure_of(error)
    assert found is not None
    written: list[str] = []
    typed = iter(lines)
    quit = post_mortem(found[0], found[1], lambda prompt: next(typed, None), written.append)
    return quit, "".join(written)


def test_pdb_opens_on_the_remote_frame_with_its_locals(memory_remote: fire.Remote) -> None:
    attach(memory_remote, post_mortem=True, breakpoints=None)
    error = _failure(memory_remote, "the key asked for")
    quit, output = _session(memory_remote, error, ["p key", "p data", "where", "c"])
    assert not quit
    assert "remote_helpers.py" in output and "fail_key()" in output
    assert "'the key asked for'" in output  # the service's local
    assert "{}" in output


def test_quit_says_so_and_continue_does_not_stop_the_threads_tracer(
    memory_remote: fire.Remote,
) -> None:
    attach(memory_remote, post_mortem=True, breakpoints=None)
    tracer = sys.gettrace()
    quit, _ = _session(memory_remote, _failure(memory_remote), ["q"])
    assert quit
    quit, _ = _session(memory_remote, _failure(memory_remote), ["c"])
    assert not quit
    assert sys.gettrace() is tracer  # a coverage tracer of the server's thread is kept


def test_end_of_input_continues(memory_remote: fire.Remote) -> None:
    attach(memory_remote, post_mortem=True, breakpoints=None)
    quit, output = _session(memory_remote, _failure(memory_remote), [])
    assert not quit and "fail_key()" in output


def test_nothing_is_kept_for_a_connection_that_did_not_ask(memory_remote: fire.Remote) -> None:
    error = _failure(memory_remote)
    assert error.remote_failure is None and failure_of(error) is None
    with pytest.raises(FireError, match="only for a connection that asked"):
        memory_remote._request("debug_start", [1])


def test_only_the_last_failure_is_kept(memory_remote: fire.Remote) -> None:
    attach(memory_remote, post_mortem=True, breakpoints=None)
    first = _failure(memory_remote, "first")
    second = _failure(memory_remote, "second")
    assert second.remote_failure == first.remote_failure + 1
    with pytest.raises(FireError, match="a later call failed after it"):
        _session(memory_remote, first, ["c"])
    _, output = _session(memory_remote, second, ["p key", "c"])
    assert "'second'" in output


def test_input_without_a_session_is_refused(memory_remote: fire.Remote) -> None:
    attach(memory_remote, post_mortem=True, breakpoints=None)
    with pytest.raises(FireError, match="no remote debugger session is open"):
        memory_remote._request("debug_input", ["p 1"])


def test_a_session_opened_again_keeps_failures_too(connect_memory: Any) -> None:
    """A connection whose session the server closed (a TCP link cut) greets it again:
    the new session is set up for debugging as the old one was."""
    server = Loopback(Dispatcher)
    remote = connect_memory(server)
    attach(remote, post_mortem=True, breakpoints=None)
    (identity,) = server.dispatcher.sessions
    server.dispatcher.disconnected(identity)
    error = _failure(remote, "after the new session")
    assert error.remote_failure is not None
    _, output = _session(remote, error, ["p key", "c"])
    assert "'after the new session'" in output


def test_the_failure_is_let_go_once_its_debugger_ends(memory_remote: fire.Remote) -> None:
    """Its frames keep objects alive (cursors, generators): not for the rest of the run."""
    attach(memory_remote, post_mortem=True, breakpoints=None)
    error = _failure(memory_remote)
    _session(memory_remote, error, ["c"])
    with pytest.raises(FireError, match="its debugger session ended"):
        _session(memory_remote, error, ["c"])
