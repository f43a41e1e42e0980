"""The runner core's rules, with stand-in remotes: no server, no socket."""

from __future__ import annotations

from typing import Any

import pytest

from fire.errors import FireError
from fire.runners import core


class StandIn:
    """Records what a runner asks of a `fire.Remote`."""

    def __init__(self, name: str, *, fails: str | None = None, changes: Any = None) -> None:
        self.name = name
        self.fails = fails  # the one request that raises
        self.changes = changes
        self.closed = False
        self.calls: list[tuple[str, Any]] = []

    def _record(self, what: str, detail: Any = None) -> None:
        self.calls.append((what, detail))
        if what == self.fails:
            raise FireError(f"{self.name}: {what} failed")

    def begin_scope(self, kind: str, **options: Any) -> None:
        self._record("begin_scope", (kind, options))

    def begin_next_scope(self, kind: str, **options: Any) -> None:
        self._record("begin_next_scope", (kind, options))

    def end_scope(self, *, wait: bool, of: str | None) -> None:
        self._record("end_scope", (wait, of))

    def sync(self) -> None:
        self._record("sync")

    def call_extension(self, operation: str) -> Any:
        self._record(operation)
        return self.changes


def asked(remote: StandIn) -> list[str]:
    return [what for what, _ in remote.calls]


def test_scopes_end_last_opened_first_and_raise_the_first_failure_after_all() -> None:
    first, second = StandIn("first", fails="end_scope"), StandIn("second", fails="end_scope")
    scopes = core.Scopes("class")
    scopes.begin([first, second])
    with pytest.raises(FireError, match="second: end_scope failed"):
        scopes.end()
    assert first.calls[-1] == ("end_scope", (True, None))  # tried, though second failed
    assert scopes.opened == []


def test_a_test_scope_ends_without_waiting_naming_what_it_was_for() -> None:
    remote = StandIn("shop")
    scopes = core.Scopes("test", of="test t.py::test_x")
    scopes.begin([remote], transactional=False)
    scopes.end()
    assert remote.calls == [
        ("begin_scope", ("test", {"transactional": False})),
        ("end_scope", (False, "test t.py::test_x")),
    ]


def test_a_begin_that_fails_leaves_the_opened_scopes_to_end() -> None:
    opened, refused = StandIn("opened"), StandIn("refused", fails="begin_scope")
    scopes = core.Scopes("test")
    with pytest.raises(FireError):
        scopes.begin([opened, refused])
    assert scopes.opened == [opened]


def test_the_next_test_is_asked_for_ahead_and_the_others_checked() -> None:
    shop, billing = StandIn("shop"), StandIn("billing")
    ended = {"shop": shop, "billing": billing}
    result = core.Runner().next_test(ended, {"shop": shop}, data_changes=True)
    assert result == ["shop"]
    assert shop.calls == [("begin_next_scope", ("test", {"data_changes": True}))]
    assert asked(billing) == ["sync"]


@pytest.mark.parametrize("rule", [{"may_skip": True}, {"transactional": True}])
def test_a_test_that_may_not_run_or_commits_is_never_asked_for_ahead(rule: Any) -> None:
    shop = StandIn("shop")
    assert core.Runner().next_test({"shop": shop}, {"shop": shop}, **rule) == []
    assert asked(shop) == ["sync"]


def test_a_server_that_cannot_be_asked_stops_the_asking() -> None:
    refused, later = StandIn("refused", fails="begin_next_scope"), StandIn("later")
    upcoming = {"refused": refused, "later": later}
    assert core.Runner().next_test({}, upcoming) == []
    assert asked(later) == []


def test_the_change_report_has_a_section_per_server_that_changed_data() -> None:
    changed = {
        "default": {
            "vendor": "sqlite",
            "tables": {"shop_category": {"inserted": [{"id": 1}], "updated": [], "deleted": []}},
        }
    }
    untouched = {"default": {"vendor": "sqlite", "tables": {}}}
    remotes = {"shop": StandIn("shop", changes=changed), "idle": StandIn("idle", changes=untouched)}
    report = core.Runner().change_report(remotes)
    assert list(report.changes) == ["shop", "idle"]
    assert [title for title, _ in report.sections] == ["fire data changes: shop (sqlite)"]
    assert report.text().startswith("\n---- fire data changes: shop (sqlite) ----\n")
    assert '"shop_category"' in report.to_json()


def test_the_modes_say_when_a_report_is_made() -> None:
    assert [core.reports_changes(mode, True) for mode in ("fail", "always", "off")] == [
        True,
        True,
        False,
    ]
    assert [core.reports_changes(mode, False) for mode in ("fail", "always", "off")] == [
        False,
        True,
        False,
    ]
    assert core.scope_arguments("off", transactional=True) == {
        "data_changes": False,
        "transactional": True,
    }
    with pytest.raises(FireError, match="must be one of fail, always, off, not 'never'"):
        core.check_mode("never")


def test_the_run_s_servers_by_name_and_the_names_it_has_not() -> None:
    runner = core.Runner(core.RunConfig(attached={"shop": "/tmp/shop.sock"}))
    assert runner.names == ["shop"]
    assert runner.run_address("shop") == "/tmp/shop.sock"
    assert runner.run_address("billing") is None
    assert runner.connected("shop") is None  # nothing connected yet
    assert runner.reported_unavailable("shop") is False
    assert runner.reported_unavailable("shop") is True


def test_the_holder_makes_one_runner_and_puts_back_the_one_replaced() -> None:
    holder = core.RunnerHolder()
    own = holder.get()
    assert holder.get() is own
    run = core.Runner()
    assert holder.use(run) is own
    assert holder.get() is run
    holder.use(own)
    assert holder.get() is own
