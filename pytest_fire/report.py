"""A test's data changes in its report: a section per server, and JSON for JUnit XML."""

from __future__ import annotations

import pytest

from .activate import active_servers
from .fixtures import excluded_changes

__all__ = ["add_data_changes"]


def add_data_changes(item: pytest.Item, report: pytest.TestReport) -> None:
    """After a test's call: what it changed on each fire server, when the mode says so.

    ``fire_remotes`` tests are asked now (their scopes are still open); a FireTestCase
    has reported its own before its scopes ended (``fire_changes_report``).
    """
    servers = active_servers(item.config)
    if servers is None or servers.config.data_changes == "off":
        return
    if servers.config.data_changes == "fail" and not report.failed:
        return
    from fire.errors import FireError
    from fire.runners import data_changes

    remotes = getattr(item, "funcargs", {}).get("fire_remotes")
    if remotes is None:
        for title, text in getattr(getattr(item, "instance", None), "fire_changes_report", ()):
            report.sections.append((title, text))
        return
    try:
        collected = data_changes.collect(remotes, excluded_changes(item, servers))
    except FireError as exc:
        report.sections.append(("fire data changes", f"could not be read: {exc}"))
        return
    verbose = item.config.get_verbosity() >= 2
    for name, changes in collected.items():
        if data_changes.has_changes(changes):
            text = data_changes.format_changes(changes, rows_per_table=None if verbose else 10)
            report.sections.append((data_changes.section_title(name, changes), text))
    # On the item: JUnit XML reads the properties of the teardown report, made from it.
    item.user_properties.append(("fire_data_changes", data_changes.to_json(collected)))
