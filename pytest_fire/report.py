"""A test's data changes in its report: a section per server, and JSON for JUnit XML."""

from __future__ import annotations

import pytest

from .activate import active_runner
from .fixtures import excluded_changes

__all__ = ["add_data_changes"]


def add_data_changes(item: pytest.Item, report: pytest.TestReport) -> None:
    """After a test's call: what it changed on each fire server, when the mode says so.

    ``fire_remotes`` tests are asked now (their scopes are still open); a FireTestCase
    has reported its own before its scopes ended (``fire_changes_report``).
    """
    runner = active_runner(item.config)
    if runner is None:
        return
    from fire.runners.core import reports_changes
    from fire.runners.data_changes import DEFAULT_ROWS_PER_TABLE

    if not reports_changes(runner.config.data_changes, report.failed):
        return
    remotes = getattr(item, "funcargs", {}).get("fire_remotes")
    if remotes is not None:  # a server lost meanwhile took the test's changes with it
        remotes = {name: remote for name, remote in remotes.items() if not remote.closed}
    if remotes is None:
        for title, text in getattr(getattr(item, "instance", None), "fire_changes_report", ()):
            report.sections.append((title, text))
        return
    rows = None if item.config.get_verbosity() >= 2 else DEFAULT_ROWS_PER_TABLE
    try:
        changes = runner.change_report(remotes, excluded_changes(item, runner), rows_per_table=rows)
    except Exception as exc:  # RemoteError, FireError, OSError, …
        # A server that lost its database connection, died, or raised while reading them:
        # a line in the report, never an INTERNALERROR that loses the run.
        report.sections.append(("fire data changes", f"could not be read: {_said(exc)}"))
        return
    report.sections.extend(changes.sections)
    # On the item: JUnit XML reads the properties of the teardown report, made from it.
    item.user_properties.append(("fire_data_changes", changes.to_json()))


def _said(exc: BaseException) -> str:
    """`exc` and its notes (a remote error's note names the lost database connection)."""
    notes = [note for note in getattr(exc, "__notes__", ()) if note.startswith("fire:")]
    return "\n".join([f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc), *notes])
