"""Settings of the accounts service: users, and a JSON API other services call."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "djfire",  # adds `manage.py runfireserver`, for the full-system tests
    "accounts",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "accounts.urls"
WSGI_APPLICATION = "accounts.wsgi.application"
# runfireserver only ever uses the *test* database (for SQLite: in memory).
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "accounts.sqlite3"}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
