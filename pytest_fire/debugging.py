"""``--pdb`` into the service's frame, and ``breakpoint()`` in a service, for pytest.

- With ``--pdb``, the run's connections ask their servers to keep each failed call's
  traceback (`fire.client.debugging.attach`), and pytest's own post-mortem plugin
  (``pdbinvoke``) is replaced by `RemotePdbInvoke`, which does what it does (capture
  suspended, the captured output and the traceback shown) but, for a remote exception
  the server kept, opens pdb in the service on the frame that raised, with the
  service's locals (`fire.client.debugging.post_mortem`). ``c`` returns to the run; the
  test then ends as any failed test, its scope rolled back. ``q`` ends the run, as pdb's
  does. Any other exception gets pytest's own local pdb.
- With ``--fire-pdb``, ``-s`` or ``--trace``, a `fire.runners.debugging.DebuggerListener`
  listens for services' ``breakpoint()`` and relays each to this terminal; without
  them, a service's ``breakpoint()`` is skipped with one warning
  (`warn_skipped_breakpoints`), never waiting for a terminal nobody types in.
- pytest's pdb, as it opens (``--trace``, ``breakpoint()`` in a test, ``--pdb``), steps
  over fire's client (`step_into_services`); ``s`` on a fire call then stops at the
  service function's first line, through that same listener
  (`fire.client.stepping`).

Nothing here imports ``fire`` until the run uses it (the plugin's cost rule).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import pytest
from _pytest.debugging import PdbInvoke

if TYPE_CHECKING:
    from fire.runners.core import RunConfig

__all__ = [
    "RemotePdbInvoke",
    "install_remote_post_mortem",
    "start_debugging",
    "step_into_services",
    "stop_debugging",
    "warn_skipped_breakpoints",
]

#: The run's breakpoint listener (`fire.runners.debugging.DebuggerListener`), if any.
_listener_key: pytest.StashKey[Any] = pytest.StashKey()
#: What a server writes when it skips a breakpoint (`fire.server.breakpoints`).
SKIPPED = "fire: breakpoint() at "


def breakpoints_allowed(config: pytest.Config) -> bool:
    """Whether services' ``breakpoint()`` may stop in this terminal: ``--fire-pdb``,
    ``--trace`` (a person steps through each test, into its fire calls), or ``-s`` with a
    terminal to type in (``-s`` alone is common in CI, whose stdin may be a pipe nobody
    writes to); never in an xdist worker, which has no terminal."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    if config.getoption("fire_pdb", False) or config.getvalue("trace"):
        return True
    return config.getoption("capture") == "no" and _stdin_is_a_terminal()


def _stdin_is_a_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def start_debugging(config: pytest.Config, run: RunConfig) -> None:
    """Set the run's debugging up as its runner is made (`pytest_fire.activate`)."""
    run.post_mortem = bool(config.getvalue("usepdb"))
    if not breakpoints_allowed(config):
        return
    from fire.runners.debugging import DebuggerListener

    capture = config.pluginmanager.getplugin("capturemanager")
    resume: list[bool] = []  # per session: whether it suspended the capture

    def before() -> None:
        resume.append(_capturing(capture))
        if resume[-1]:
            capture.suspend_global_capture(in_=True)
        sys.stdout.write("\n")

    def after() -> None:
        if resume.pop():
            capture.resume_global_capture()

    listener = DebuggerListener(before=before, after=after)
    config.stash[_listener_key] = listener
    run.debugger = listener.address


def _capturing(capture: Any) -> bool:
    """Whether pytest captures the output now: not when its own pdb, which a service's
    session then runs within (``s`` into a fire call), already suspended it, and must
    find it so when the session ends (pytest's `global_and_fixture_disabled` asks the
    same)."""
    multi = getattr(capture, "_global_capturing", None)
    return multi is not None and multi.is_started()


def step_into_services(pdb: Any) -> None:
    """pytest's `pdb`, opening: stepping over fire's client, and ``s`` on a fire call
    into the service (`fire.client.stepping`). Nothing when the run does not use fire."""
    if "fire.client.stepping" in sys.modules:
        from fire.client.stepping import skip_fire_client

        skip_fire_client(pdb)


def stop_debugging(config: pytest.Config) -> None:
    listener = config.stash.get(_listener_key, None)
    if listener is not None:
        del config.stash[_listener_key]
        listener.close()


def install_remote_post_mortem(config: pytest.Config) -> None:
    """Stand `RemotePdbInvoke` for pytest's ``pdbinvoke`` (registered with ``--pdb``)."""
    manager = config.pluginmanager
    local = manager.get_plugin("pdbinvoke")
    if local is None or isinstance(local, RemotePdbInvoke):
        return
    manager.unregister(local, "pdbinvoke")
    manager.register(RemotePdbInvoke(), "pdbinvoke")


class RemotePdbInvoke(PdbInvoke):
    """pytest's ``--pdb``, opening a remote exception's pdb in the service that raised it."""

    def pytest_exception_interact(self, node: Any, call: Any, report: Any) -> None:
        found = _kept_failure(call.excinfo.value if call.excinfo is not None else None)
        if found is None:
            super().pytest_exception_interact(node, call, report)
            return
        remote, number = found
        capman = node.config.pluginmanager.getplugin("capturemanager")
        if capman:
            capman.suspend_global_capture(in_=True)
            out, err = capman.read_global_capture()
            sys.stdout.write(out)
            sys.stdout.write(err)
        tw = node.config.pluginmanager.getplugin("terminalreporter")._tw
        tw.line()
        tw.sep(">", "traceback")
        report.toterminal(tw)
        tw.sep(">", f"entering PDB in fire server {remote.name!r}")
        report._pdbshown = True
        from fire.client.debugging import post_mortem
        from fire.errors import FireError

        try:
            quit = post_mortem(remote, number, _read_line, _write)
        except FireError as exc:
            tw.line(f"fire: no remote post-mortem ({exc}); pytest's own pdb instead")
            super().pytest_exception_interact(node, call, report)
            return
        if quit:
            pytest.exit("Quitting debugger")


def _kept_failure(error: BaseException | None) -> Any:
    if error is None or "fire.client.debugging" not in sys.modules:
        return None  # fire unused, or not debugging remotely: not a kept remote failure
    from fire.client.debugging import failure_of

    return failure_of(error)


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def warn_skipped_breakpoints(item: pytest.Item, lines: list[str]) -> None:
    """A pytest warning for each breakpoint a spawned server skipped during the test."""
    for line in lines:
        if line.startswith(SKIPPED) and " skipped: " in line:
            item.warn(pytest.PytestWarning(line.strip()))
