"""A call stepped into (``debug_call``), in memory: it stops at its function's first line.

What a person sees through pytest's ``--trace`` is tests/runners/test_remote_pdb.py;
here, the operation itself, through a server's dispatcher in this process, its pdb's
terminal a `DebuggerListener` that types scripted lines.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

import fire
from fire.client.debugging import attach
from fire.runners.debugging import DebuggerListener


def _step(remote: fire.Remote, function: Any, *args: Any, typed: tuple[str, ...]) -> Any:
    """``debug_call`` of the remote `function` with a debugger attached that types
    `typed` (then end of input); its value and everything the debugger wrote."""
    lines = iter(typed)
    written: list[str] = []
    ended = threading.Event()
    listener = DebuggerListener(
        read_line=lambda: next(lines, None), write=written.append, after=ended.set
    )
    attach(remote, post_mortem=False, breakpoints=listener.address)
    try:
        value = remote._request("debug_call", [function._fire_target, list(args), {}])
        assert ended.wait(10), "the debugger's session did not end"  # a bound, not a measure
        return value, written
    finally:
        listener.close()


def test_stops_at_the_first_line_with_the_services_locals(memory_remote: fire.Remote) -> None:
    echo = memory_remote.module("remote_helpers").echo
    tracer = sys.gettrace()
    value, written = _step(memory_remote, echo, "the test's argument", typed=("p value", "c"))
    assert value == "the test's argument"
    assert sys.gettrace() is tracer  # a coverage tracer of the server's thread is kept
    output = "".join(written)
    assert "fire: stepped into remote_helpers.echo() in the service" in output
    assert "remote_helpers.py" in output and "echo()\n-> return value" in output
    assert '"the test\'s argument"' in output  # `p value`, in the service's frame


def test_an_exception_still_reaches_the_caller(memory_remote: fire.Remote) -> None:
    fail_key = memory_remote.module("remote_helpers").fail_key
    with pytest.raises(KeyError, match="the key asked for"):
        _step(memory_remote, fail_key, "the key asked for", typed=("n", "n", "c"))


def test_a_builtin_has_nothing_to_stop_at(memory_remote: fire.Remote) -> None:
    length = memory_remote.module("builtins").len
    value, written = _step(memory_remote, length, "abc", typed=())
    assert value == 3
    assert "fire: builtins.len() runs no Python code: nothing to stop at" in "".join(written)


def test_without_a_debugger_it_is_a_plain_call(memory_remote: fire.Remote) -> None:
    echo = memory_remote.module("remote_helpers").echo
    assert memory_remote._request("debug_call", [echo._fire_target, [1], {}]) == 1
