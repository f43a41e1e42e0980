"""What runfireserver says at start about the service: its Django, production settings."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import django
import pytest
from django.core.management.base import CommandError

from djfire.checks import check_django_version, live_server_warnings
from djfire.launch import RUNFIRESERVER
from fire.errors import FireError
from fire.runners.spawn import ServerSpec, SpawnedServer

from ..conftest import MANAGE, TESTS, make_venv
from .test_command import run_manage


def spawn_with_settings(settings: str, tmp_path: Path) -> SpawnedServer:
    spec = ServerSpec(
        name="shop",
        program=MANAGE,
        launcher=RUNFIRESERVER,
        settings=settings,
        env={"DJFIRE_TEST_DB": "sqlite", "DJFIRE_TEST_DIR": str(tmp_path)},
    )
    return SpawnedServer(spec, socket_dir=str(tmp_path)).start()


@pytest.mark.parametrize("version", [(5, 2, 9, "final", 0), (6, 0, 1, "final", 0), (6, 1, 0)])
def test_a_supported_django_says_nothing(version: tuple) -> None:
    assert check_django_version(version, "/venv/bin/python") is None


@pytest.mark.parametrize("version", [(4, 2, 11, "final", 0), (5, 1, 4, "final", 0), (3, 2, 0)])
def test_an_older_django_is_refused_naming_the_supported_ones(version: tuple) -> None:
    with pytest.raises(CommandError) as raised:
        check_django_version(version, "/venv/bin/python")
    found = ".".join(map(str, version[:3]))
    assert str(raised.value) == (
        f"Django {found} is not supported by djfire, which supports Django 5.2, 6.0 and 6.1: "
        "upgrade the service's Django, in the environment of /venv/bin/python: "
        "pip install 'Django>=5.2,<6.2'"
    )


def test_a_newer_django_runs_with_a_warning() -> None:
    assert check_django_version((6, 2, 0, "alpha", 0), "python") == (
        "Django 6.2.0 is newer than the releases djfire is tested with (5.2, 6.0 and 6.1): "
        "runfireserver runs, but if something fails that a supported Django does not, say "
        "so with the Django version"
    )


def test_runfireserver_refuses_an_older_django_before_touching_a_database(
    tmp_path: Path,
) -> None:
    result = run_manage(
        "runfireserver",
        str(tmp_path / "f.sock"),
        "--settings=djproject.settings_old_django",
        env={"DJFIRE_TEST_DB": "sqlite-file", "DJFIRE_TEST_DIR": str(tmp_path)},
    )
    assert result.returncode == 1
    assert (
        "CommandError: Django 4.2.11 is not supported by djfire, which supports Django 5.2, "
        f"6.0 and 6.1: upgrade the service's Django, in the environment of {sys.executable}"
    ) in result.stderr
    assert "Creating test database" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


PRODUCTION = SimpleNamespace(
    MIDDLEWARE=["django.middleware.security.SecurityMiddleware"],
    SECURE_SSL_REDIRECT=True,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
    SESSION_COOKIE_DOMAIN=".example.com",
    CSRF_COOKIE_DOMAIN=None,
)
#: The warning of each setting in the way, as runfireserver prints it (one line each).
WARNINGS = {
    "SECURE_SSL_REDIRECT": (
        "SECURE_SSL_REDIRECT is True: the live server speaks plain HTTP, and "
        "SecurityMiddleware answers every request to it with a redirect to https://, which "
        "nothing serves; set it to False in the settings the tests run with"
    ),
    "SESSION_COOKIE_SECURE": (
        "SESSION_COOKIE_SECURE is True: clients do not send the session cookie back over the "
        "live server's plain HTTP, so a login does not last past its request; set it to "
        "False in the settings the tests run with"
    ),
    "CSRF_COOKIE_SECURE": (
        "CSRF_COOKIE_SECURE is True: clients do not send the CSRF cookie back over the live "
        "server's plain HTTP, so a POST fails the CSRF check (403); set it to False in the "
        "settings the tests run with"
    ),
    "SESSION_COOKIE_DOMAIN": (
        "SESSION_COOKIE_DOMAIN is '.example.com': clients keep no such cookie from the live "
        "server at 127.0.0.1; set it to None in the settings the tests run with"
    ),
}


def test_each_production_setting_in_the_live_server_s_way_is_named() -> None:
    assert live_server_warnings(PRODUCTION, "127.0.0.1") == list(WARNINGS.values())
    # Without SecurityMiddleware, SECURE_SSL_REDIRECT does nothing.
    without = SimpleNamespace(**{**vars(PRODUCTION), "MIDDLEWARE": []})
    assert WARNINGS["SECURE_SSL_REDIRECT"] not in live_server_warnings(without, "127.0.0.1")
    # A cookie domain the live server's host is in is no problem.
    assert not any("DOMAIN" in w for w in live_server_warnings(PRODUCTION, "shop.example.com"))


def test_development_settings_draw_no_warning() -> None:
    from django.conf import global_settings

    assert live_server_warnings(global_settings, "127.0.0.1") == []


def test_runfireserver_names_the_production_settings_in_the_live_server_s_way(
    tmp_path: Path,
) -> None:
    server = spawn_with_settings("djproject.settings_production_like", tmp_path)
    try:
        for warning in WARNINGS.values():
            assert any(f"runfireserver: warning: {warning}" in line for line in server.output)
        # ALLOWED_HOSTS lacks the live server's host, which runfireserver adds: the
        # request passes the host check (400 otherwise) and meets the https redirect.
        assert server.url is not None
        opener = urllib.request.build_opener(_NoRedirects)
        with pytest.raises(urllib.error.HTTPError) as answered:
            opener.open(f"{server.url}/products/", timeout=10)
        assert answered.value.code == 301
        assert answered.value.headers["Location"].startswith("https://127.0.0.1:")
    finally:
        assert server.stop() == 0


def test_a_server_without_http_says_nothing_of_the_live_server_s_settings(
    tmp_path: Path,
) -> None:
    result = run_manage(
        "runfireserver",
        "/tmp/unused-fire.sock",
        "--max-message-size",
        "1000",  # refused right after the checks: no database is made
        "--settings=djproject.settings_production_like",
    )
    assert result.returncode == 1
    assert "runfireserver: warning" not in result.stderr


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def venv_without_djfire(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv that sees this one's Django, not its djfire (a plain path entry, so
    the editable install's .pth there is not read)."""
    root = tmp_path_factory.mktemp("venv") / "service"
    django_site = str(Path(django.__file__).parent.parent)
    return make_venv(root, "django_only.pth", django_site + "\n")


def test_a_service_without_djfire_installed_names_the_package_and_the_interpreter(
    venv_without_djfire: Path, tmp_path: Path
) -> None:
    spec = ServerSpec(
        name="shop",
        program=MANAGE,
        launcher=RUNFIRESERVER,
        python=str(venv_without_djfire),
        env={"DJFIRE_TEST_DB": "sqlite", "DJFIRE_TEST_DIR": str(tmp_path)},
    )
    with pytest.raises(FireError) as raised:
        SpawnedServer(spec, socket_dir=str(tmp_path)).start()
    message = str(raised.value)
    assert message.startswith(f"fire server 'shop' exited ({venv_without_djfire} ")
    assert "ModuleNotFoundError: No module named 'djfire'" in message
    assert message.endswith(
        "\nfire: djfire is not installed in the service's environment: install it with the "
        "interpreter of the command above, from where this djfire came (it is not on the "
        f"package index): `python -m pip install -e {TESTS.parent}`"
    )
