"""Settings of a service built on public Django projects (tests/test_realprojects.py).

Wagtail (a CMS; on SQLite its search index is an FTS5 virtual table with triggers of its
own, on PostgreSQL tsvector columns behind GIN indexes) on every backend; on PostgreSQL
also django-pghistory, whose django-pgtrigger triggers write an event row for every
change of the models it tracks, and (Django 5.2 only) django-postgres-extra's
range-partitioned table. DJFIRE_TEST_DB picks the database:

- ``sqlite`` (default): SQLite, an in-memory test database;
- ``postgres``: PostgreSQL at 127.0.0.1:5432 (user from DJFIRE_PG_USER, default postgres).

DJFIRE_TEST_DIR holds the media files (images, documents) the tests upload.
"""

import importlib.util
import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "djfire-realprojects-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
_backend = os.environ.get("DJFIRE_TEST_DB", "sqlite")
_dir = Path(os.environ.get("DJFIRE_TEST_DIR", BASE_DIR))

INSTALLED_APPS = [
    "cms",
    "wagtail_localize",
    "wagtail_localize.locales",  # in place of wagtail.locales
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djfire",
]
if _backend == "postgres":  # django-pgtrigger writes PostgreSQL triggers: not on SQLite
    INSTALLED_APPS += ["pgtrigger", "pghistory", "ledger"]
# django-postgres-extra (partitioned tables) supports Django <6.0: installed on 5.2 only.
_partitions = (
    _backend == "postgres"
    and django.VERSION < (6, 0)
    and importlib.util.find_spec("psqlextra") is not None
)
if _partitions:
    INSTALLED_APPS += ["psqlextra", "metrics"]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]
ROOT_URLCONF = "realprojects.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "/static/"
MEDIA_ROOT = _dir / "media"
MEDIA_URL = "/media/"
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only

WAGTAIL_SITE_NAME = "fire real projects"
WAGTAILADMIN_BASE_URL = "http://127.0.0.1"
WAGTAIL_I18N_ENABLED = True  # wagtail-localize translates pages
LANGUAGE_CODE = "en"
WAGTAIL_CONTENT_LANGUAGES = LANGUAGES = [("en", "English"), ("fr", "French")]
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}

if _backend == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "psqlextra.backend" if _partitions else "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "USER": os.environ.get("DJFIRE_PG_USER", "postgres"),
            "NAME": "djfire_realprojects",
        }
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _dir / "realprojects.sqlite3"}
    }
