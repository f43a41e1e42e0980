"""Settings of the accounts service: users, login and sessions, and a JSON API."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "djfire",  # adds `manage.py runfireserver`, for the full-system tests
    "django.contrib.auth",  # the users and their passwords live here, and only here
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "accounts",
]
# No CsrfViewMiddleware: the API is called with JSON by the example's tests only. A
# real login page served to browsers adds it.
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "accounts.urls"
WSGI_APPLICATION = "accounts.wsgi.application"
# Its own name: on one host (as in the tests) the browser sends it to the shop too, and
# the shop's gateway picks it out of the cookies. Across subdomains: SESSION_COOKIE_DOMAIN.
SESSION_COOKIE_NAME = "accounts_session"

# Tests only ever use the *test* database (for SQLite: in memory). EXAMPLE_DB=postgres
# switches to PostgreSQL; each service has a database name of its own.
if os.environ.get("EXAMPLE_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "fire_example_accounts",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "USER": os.environ.get("PGUSER", "postgres"),
        }
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "accounts.sqlite3"}
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
