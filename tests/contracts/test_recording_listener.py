"""The provider's recording listener (djfire.contract_recording), on the test service.

Real server, real HTTP: a request through `live_url_for(consumer)` is recorded with
its response and the test's rows at the moment it came; the plain live URL records
nothing; a run that does not record gets the live URL itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

import fire
from djfire import DjangoRemote
from fire.runners.core import RunConfig, Runner
from fire.runners.spawn import SpawnedServer
from fire.testing import use_runner


@pytest.fixture
def shop(sqlite_shop: SpawnedServer) -> Iterator[fire.Remote]:
    with fire.connect(sqlite_shop.address, name="shop", timeout=20) as remote:
        yield remote


@pytest.fixture
def recording(tmp_path: object) -> Iterator[Runner]:
    """A run that records contracts, as --fire-contracts makes it."""
    runner = Runner(RunConfig(contracts=str(tmp_path)))
    previous = use_runner(runner)
    yield runner
    use_runner(previous)


def test_without_recording_live_url_for_is_the_live_url(shop: fire.Remote) -> None:
    previous = use_runner(Runner())
    try:
        dj = DjangoRemote(shop)
        assert dj.live_url_for("billing") == dj.live_url
    finally:
        use_runner(previous)


def test_a_request_through_the_consumers_url_is_recorded_with_the_rows_it_found(
    shop: fire.Remote, recording: Runner
) -> None:
    dj = DjangoRemote(shop)
    with shop.scope(data_changes=True):
        url = dj.live_url_for("billing")
        assert url != dj.live_url
        assert dj.live_url_for("billing") == url  # one listener per consumer
        shop.module("shop.models").Product.objects.create(name="lamp", price="3.50")
        created = requests.post(
            url + "/products/create/?tag=new",
            json={"name": "desk"},
            headers={"X-Request-Id": "42", "Cookie": "csrftoken=secret; other=1"},
            timeout=10,
        )
        requests.get(dj.live_url + "/products/", timeout=10)  # not a consumer's: not recorded
        recorded = shop.call_extension("contract_interactions")
        assert shop.call_extension("contract_interactions") == []  # taken once
    assert created.status_code == 201
    [interaction] = recorded
    assert interaction["consumer"] == "billing"
    request, response = interaction["request"], interaction["response"]
    assert (request["method"], request["path"], request["query"]) == (
        "POST",
        "/products/create/",
        {"tag": ["new"]},
    )
    assert request["body"] == '{"name": "desk"}'
    assert request["headers"]["X-Request-Id"] == "42"
    assert "Cookie" not in request["headers"]  # no session cookie: no cookie kept at all
    assert response == {
        "status": 201,
        "contentType": "application/json",
        "body": created.text,
    }
    # The rows when the request came: the lamp, not yet the desk it made.
    database = interaction["state"]["databases"]["default"]
    assert database["vendor"] == "sqlite"
    inserted = database["tables"]["shop_product"]["inserted"]
    assert [(row["name"], row["price"]) for row in inserted] == [("lamp", "3.50")]


def test_a_failing_tests_requests_are_dropped_a_passing_ones_kept_under_its_name(
    shop: fire.Remote, recording: Runner
) -> None:
    assert recording.contracts is not None
    url = DjangoRemote(shop).live_url_for("billing")
    assert recording.contracts.providers == {"shop"}
    for test, passed in (("t.py::test_fails", False), ("t.py::test_passes", True)):
        with shop.scope(data_changes=True):
            requests.get(url + "/products/", timeout=10)
            recording.contracts.collect({"shop": shop}, test, passed=passed)
    recording.contracts.gather()
    [interaction] = recording.contracts.interactions.values()
    assert interaction.tests == ["t.py::test_passes"]
    assert interaction.description == "GET /products/ (t.py::test_passes)"
    assert recording.contracts.tests == 1
