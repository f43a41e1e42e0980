"""Settings of the shop service: orders, checked against the accounts service."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "djfire",  # adds `manage.py runfireserver`, for the full-system tests
    "shop",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
# runfireserver only ever uses the *test* database (for SQLite: in memory).
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "shop.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# Where the accounts service lives. The system tests point it at the accounts server
# they run (see system_tests/conftest.py).
ACCOUNTS_URL = "http://127.0.0.1:8001"
DEFAULT_FROM_EMAIL = "shop@example.com"
# How mail is sent, as Django 6.1 configures it (5.2 and 6.0 ignore MAILERS and use SMTP
# by default too). Under runfireserver every mailer writes to the in-memory outbox.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
