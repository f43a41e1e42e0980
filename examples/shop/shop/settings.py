"""Settings of the shop service: orders, placed by users whom accounts knows."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "djfire",  # adds `manage.py runfireserver`, for the full-system tests
    "django.contrib.auth",  # for request.user only: no passwords here, see shop/gateway.py
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "shop",
]
# No CsrfViewMiddleware, to keep the example short; a real shop adds it.
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "shop.gateway.GatewayUserMiddleware",  # request.user: whom the gateway vouches for
]
# Users come from the gateway's header, never from a password. The backend keeps a local
# row per user (username = the accounts user's id), created on first sight.
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.RemoteUserBackend"]
SESSION_COOKIE_NAME = "shop_session"
ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"  # the gateway wraps the shop here
# How mail is sent, as Django 6.1 configures it (5.2 and 6.0 ignore MAILERS and use SMTP
# by default too). Under runfireserver every mailer writes to the in-memory outbox.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}

# Tests only ever use the *test* database (for SQLite: in memory). EXAMPLE_DB=postgres
# switches to PostgreSQL; each service has a database name of its own.
if os.environ.get("EXAMPLE_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "fire_example_shop",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "USER": os.environ.get("PGUSER", "postgres"),
        }
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "shop.sqlite3"}
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
DEFAULT_FROM_EMAIL = "shop@example.com"

# The accounts service: where it lives (the system tests point this at the accounts
# server they run, see system_tests/conftest.py), which version of its user API the
# shop speaks, and the name of its session cookie.
ACCOUNTS_URL = "http://127.0.0.1:8001"
ACCOUNTS_API_VERSION = "v2"
ACCOUNTS_SESSION_COOKIE = "accounts_session"
