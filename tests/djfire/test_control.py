"""Patches and one clock on Django services: views over live HTTP, the ORM, sessions, signing.

Real runfireserver processes (tests/djproject) on in-memory SQLite: the shared one and a
second service, for a clock set on two services at once (issue 25).
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator
from unittest import mock

import pytest
import requests

import fire
from djfire import DjangoRemote
from fire.client.clock import freeze_time
from fire.runners.spawn import SpawnedServer

from ..conftest import spawn_shop

NEW_YEAR = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def second_shop() -> Iterator[SpawnedServer]:
    """A second service, so that one clock is seen by two."""
    server = spawn_shop("sqlite", "--http", "127.0.0.1:0")
    yield server
    server.stop()


@pytest.fixture
def shop(sqlite_shop: SpawnedServer) -> Iterator[DjangoRemote]:
    """The shared shop service, inside a test scope."""
    with fire.connect(sqlite_shop.address, name="shop", timeout=20) as remote, remote.scope():
        yield DjangoRemote(remote)


@pytest.fixture
def other(second_shop: SpawnedServer) -> Iterator[DjangoRemote]:
    """The second service, inside a test scope."""
    with fire.connect(second_shop.address, name="other", timeout=20) as remote, remote.scope():
        yield DjangoRemote(remote)


def test_a_patched_function_is_seen_by_a_view_and_a_fire_call(shop):
    charge = shop.patch("shop.payments.charge", return_value={"id": "receipt-1"})

    answer = requests.get(shop.live_url + "/pay/?amount=9.99", timeout=10)
    remote_answer = shop.remote.module("shop.payments").charge("1.00")

    assert answer.json() == {"receipt": {"id": "receipt-1"}}
    assert remote_answer == {"id": "receipt-1"}
    assert charge.call_args_list == [mock.call("9.99", currency="EUR"), mock.call("1.00")]
    assert charge.call_count == 2


def test_a_side_effect_named_by_its_path_runs_in_the_view(shop):
    shop.patch("shop.payments.charge", side_effect="shop.payments.declined")

    answer = requests.get(shop.live_url + "/pay/?amount=5.00", timeout=10)

    assert (answer.status_code, answer.json()) == (402, {"declined": "5.00 EUR declined"})


def test_the_patch_is_gone_once_the_scope_ended(sqlite_shop):
    with fire.connect(sqlite_shop.address, timeout=20) as remote:
        shop = DjangoRemote(remote)
        with remote.scope():
            shop.patch("shop.payments.charge", return_value={"id": "patched"})
        answer = requests.get(shop.live_url + "/pay/", timeout=10)
        assert answer.status_code == 500  # the real charge, which refuses to run in tests
        with pytest.raises(RuntimeError, match="never reach a real payment provider"):
            remote.module("shop.payments").charge("1.00")


def _clock_view(service: DjangoRemote) -> dict[str, object]:
    answer = requests.get(service.live_url + "/clock/", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_frozen_and_shifted_time_is_seen_by_two_services_and_their_views(shop, other):
    clocks = freeze_time({"shop": shop.remote, "other": other.remote}, NEW_YEAR)

    for service in (shop, other):
        seen = _clock_view(service)
        assert seen["now"] == seen["created"] == "2026-01-01T12:00:00+00:00"  # auto_now_add
        assert seen["time"] == NEW_YEAR.timestamp()
    clocks.shift(dt.timedelta(hours=2))
    for service in (shop, other):
        assert _clock_view(service)["now"] == "2026-01-01T14:00:00+00:00"
    product = shop.remote.module("shop.factories").ProductFactory()  # the ORM, by a fire call
    assert product.created == NEW_YEAR + dt.timedelta(hours=2)
    updated = shop.remote.module("django.db.models").DateTimeField(auto_now=True)
    updated.set_attributes_from_name("updated")
    assert updated.pre_save(product, False) == NEW_YEAR + dt.timedelta(hours=2)  # auto_now


def test_session_expiry_and_signing_timestamps_follow_the_clock(shop):
    clock = shop.freeze_time(NEW_YEAR)
    sessions = shop.remote.module("django.contrib.sessions.backends.signed_cookies")
    signing = shop.remote.module("django.core.signing")
    session = sessions.SessionStore()
    session["cart"] = [1, 2]
    session.save()
    key = session.session_key
    signed = signing.TimestampSigner().sign("token")
    age = shop.remote.module("django.conf").settings.SESSION_COOKIE_AGE

    assert session.get_expiry_date() == NEW_YEAR + dt.timedelta(seconds=age)
    assert signing.TimestampSigner().unsign(signed, max_age=60) == "token"
    assert sessions.SessionStore(session_key=key).load() == {"cart": [1, 2]}
    clock.shift(61)
    with pytest.raises(shop.remote.exception("django.core.signing.SignatureExpired")):
        signing.TimestampSigner().unsign(signed, max_age=60)
    clock.shift(age)
    assert sessions.SessionStore(session_key=key).load() == {}  # expired


RUN_WITH_PATCHES = textwrap.dedent(
    """
    import pytest
    import requests
    from djfire import DjangoRemote
    from fire.testing import FireTestCase

    CHARGE = "shop.payments.charge"

    @pytest.mark.fire(patch={"shop": {CHARGE: {"return_value": {"id": "r1"}}}})
    def test_fails_with_its_patch_in_place(fire_remotes):
        charge = fire_remotes.patches["shop"][CHARGE]
        url = DjangoRemote(fire_remotes["shop"]).live_url
        assert requests.get(url + "/pay/?amount=5").json() == {"receipt": {"id": "r1"}}
        charge.assert_called_once_with("5", currency="EUR")
        assert False, "this test fails with its patch in place"

    def test_the_next_test_has_the_real_function(fire_remotes):
        with pytest.raises(RuntimeError, match="never reach"):
            fire_remotes["shop"].module("shop.payments").charge("1")

    @pytest.mark.fire(freeze_time="2026-01-01T12:00Z")
    def test_a_marked_clock(fire_remotes):
        url = DjangoRemote(fire_remotes["shop"]).live_url
        assert requests.get(url + "/clock/").json()["now"] == "2026-01-01T12:00:00+00:00"
        fire_remotes.clock.tick()
        assert requests.get(url + "/clock/").json()["now"] == "2026-01-01T12:00:01+00:00"

    def test_a_clock_set_in_the_test_and_here(fire_remotes):
        import datetime as dt
        fire_remotes.freeze_time("2030-01-01T00:00Z", here=True)
        assert dt.date.today() == dt.date(2030, 1, 1)

    def test_and_both_clocks_are_back(fire_remotes):
        import datetime as dt
        assert dt.date.today().year < 2030
        url = DjangoRemote(fire_remotes["shop"]).live_url
        assert requests.get(url + "/clock/").json()["now"][:4] < "2030"

    class DeclinedTest(FireTestCase):
        fire_servers = {"shop": "x.sock"}  # the run's server is used
        fire_patch = {"shop": {CHARGE: {"side_effect": "shop.payments.declined"}}}
        fire_time = "2026-03-01T00:00Z"

        def test_declined_at_the_set_time(self):
            shop = DjangoRemote(self.fire_remotes["shop"])
            answer = requests.get(shop.live_url + "/pay/?amount=7")
            assert answer.status_code == 402
            assert len(self.fire_patches["shop"][CHARGE].call_args_list) == 1
            assert requests.get(shop.live_url + "/clock/").json()["now"].startswith("2026-03-01")

    def test_after_the_class_nothing_is_left(fire_remotes):
        with pytest.raises(RuntimeError, match="never reach"):
            fire_remotes["shop"].module("shop.payments").charge("1")

    @pytest.mark.fire(patch={"shop": {CHARGE: "not options"}})
    def test_a_bad_patch_marker(fire_remotes):
        pass

    @pytest.mark.fire(freeze_time="2026-01-01T12:00")
    def test_a_naive_clock_marker(fire_remotes):
        pass
    """
)


def test_marker_patches_clock_and_fire_testcase_under_pytest(pytester, sqlite_shop):
    pytester.makepyfile(test_patched_run=RUN_WITH_PATCHES)
    result = pytester.runpytest(f"--fire-servers=shop={sqlite_shop.address}")
    result.assert_outcomes(passed=6, failed=1, errors=2)
    result.stdout.fnmatch_lines(["*this test fails with its patch in place*"])
    result.stdout.fnmatch_lines(
        ["*takes the patch's options as a dict (return_value=..., side_effect=..., *"]
    )
    result.stdout.fnmatch_lines(["*freeze_time needs a time zone*"])
