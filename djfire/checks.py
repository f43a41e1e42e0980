"""What in the service stands in the way of its tests, said when runfireserver starts.

- `check_django_version`: a Django older than the supported ones is refused (they are
  out of upstream support and untested here); a newer one runs, with a warning.
- `live_server_warnings`: settings made for production that break every request to the
  live HTTP server in ways that look unrelated (a redirect to an ``https://`` nothing
  serves, a login that does not stick, a 403 from the CSRF check). They are left as
  they are: a test may be about them, and the fix belongs in the settings the tests
  run with. ``ALLOWED_HOSTS`` is not among them: runfireserver adds the live server's
  host, as Django's ``LiveServerTestCase`` does.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

__all__ = ["SUPPORTED_DJANGO", "check_django_version", "live_server_warnings"]

#: The Django feature releases djfire is tested with, and pyproject's ``django`` extra.
SUPPORTED_DJANGO = ((5, 2), (6, 0), (6, 1))
DJANGO_REQUIREMENT = "Django>=5.2,<6.2"


def _supported() -> str:
    names = [f"{major}.{minor}" for major, minor in SUPPORTED_DJANGO]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def check_django_version(version: tuple[Any, ...], where: str) -> str | None:
    """Raise `CommandError` for a Django older than the supported ones; for a newer one,
    return the warning to print (None for a supported one).

    `version` is ``django.VERSION``; `where` names the interpreter, for the fix.
    """
    release = tuple(version[:2])
    found = ".".join(str(part) for part in version[:3])
    if release in SUPPORTED_DJANGO:
        return None
    if release < SUPPORTED_DJANGO[0]:
        raise CommandError(
            f"Django {found} is not supported by djfire, which supports Django "
            f"{_supported()}: upgrade the service's Django, in the environment of {where}: "
            f"pip install '{DJANGO_REQUIREMENT}'"
        )
    return (
        f"Django {found} is newer than the releases djfire is tested with ({_supported()}): "
        "runfireserver runs, but if something fails that a supported Django does not, "
        "say so with the Django version"
    )


def live_server_warnings(settings: Any, host: str) -> list[str]:
    """What in `settings` breaks requests to a plain-HTTP live server at `host`."""
    warnings: list[str] = []
    fix = "set it to False in the settings the tests run with"
    security = "django.middleware.security.SecurityMiddleware" in settings.MIDDLEWARE
    if security and settings.SECURE_SSL_REDIRECT:
        warnings.append(
            "SECURE_SSL_REDIRECT is True: the live server speaks plain HTTP, and "
            "SecurityMiddleware answers every request to it with a redirect to https://, "
            f"which nothing serves; {fix}"
        )
    for name, what, effect in (
        ("SESSION_COOKIE_SECURE", "session cookie", "a login does not last past its request"),
        ("CSRF_COOKIE_SECURE", "CSRF cookie", "a POST fails the CSRF check (403)"),
    ):
        if getattr(settings, name):
            warnings.append(
                f"{name} is True: clients do not send the {what} back over the live "
                f"server's plain HTTP, so {effect}; {fix}"
            )
    for name in ("SESSION_COOKIE_DOMAIN", "CSRF_COOKIE_DOMAIN"):
        domain = getattr(settings, name)
        if domain and not _in_domain(host, domain):
            warnings.append(
                f"{name} is {domain!r}: clients keep no such cookie from the live server "
                f"at {host}; set it to None in the settings the tests run with"
            )
    return warnings


def _in_domain(host: str, domain: str) -> bool:
    domain = domain.lower().lstrip(".")
    host = host.lower()
    return host == domain or host.endswith("." + domain)
