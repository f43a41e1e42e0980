"""djfire's server helpers without the service's optional packages."""

from __future__ import annotations

import sys

import pytest

from djfire.helpers import factory_boy


def test_factory_boy_helpers_say_the_service_lacks_factory_boy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "factory", None)  # a service without factory_boy
    with pytest.raises(ModuleNotFoundError) as raised:
        factory_boy("factory.random", "reseed_random")
    assert str(raised.value) == (
        "reseed_random() needs factory_boy in the service's environment, and it is not "
        "installed there: `pip install factory_boy` in the service's virtualenv"
    )


def test_factory_boy_helpers_import_it_when_it_is_there() -> None:
    assert factory_boy("factory.random", "reseed_random") is sys.modules["factory.random"]
