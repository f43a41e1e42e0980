"""Settings of the test service. DJFIRE_TEST_DB picks the databases:

- ``sqlite`` (default): SQLite, in-memory test databases;
- ``sqlite-file``: SQLite files under DJFIRE_TEST_DIR (or the project directory);
- ``postgres``: PostgreSQL at 127.0.0.1:5432 (user from DJFIRE_PG_USER, default postgres);
- ``postgres-spellings``: 'default' on DJFIRE_PG_REAL at 127.0.0.1:5432, 'other' on the same
  server spelled DJFIRE_PG_OTHER_HOST / DJFIRE_PG_OTHER_PORT, whose TEST NAME is default's
  real NAME (or DJFIRE_PG_OTHER_NAME, DJFIRE_PG_OTHER_TEST_NAME): runfireserver must refuse;
- ``postgres-mirror`` / ``sqlite-mirror``: 'default' and a read replica 'replica'
  (``TEST: {"MIRROR": "default"}``, on PostgreSQL spelled ``localhost``), a router that
  sends reads to the replica.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "djfire-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "djfire",
    "shop",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "djproject.urls"
WSGI_APPLICATION = "djproject.wsgi.application"
STATIC_URL = "/static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Django 6.1's mail setting (5.2 and 6.0 ignore it): without it, 6.1 warns on every mail
# sent. runfireserver's test environment puts every mailer on the in-memory outbox anyway.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
GREETING = "hello"

_backend = os.environ.get("DJFIRE_TEST_DB", "sqlite")
_dir = Path(os.environ.get("DJFIRE_TEST_DIR", BASE_DIR))
if _backend == "postgres":
    _pg = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": os.environ.get("DJFIRE_PG_USER", "postgres"),
    }
    DATABASES = {
        "default": {**_pg, "NAME": "djfire_shop"},
        "other": {**_pg, "NAME": "djfire_shop_other"},
    }
elif _backend == "sqlite-file":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _dir / "shop.sqlite3",
            "TEST": {"NAME": str(_dir / "test_shop.sqlite3")},
        },
        "other": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _dir / "other.sqlite3",
            "TEST": {"NAME": str(_dir / "test_other.sqlite3")},
        },
    }
elif _backend == "misconfigured":  # TEST NAME == NAME: runfireserver must refuse
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(_dir / "shop.sqlite3"),
            "TEST": {"NAME": str(_dir / "shop.sqlite3")},
        }
    }
elif _backend == "crossed":  # default's TEST NAME is other's NAME: runfireserver must refuse
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(_dir / "shop.sqlite3"),
            "TEST": {"NAME": str(_dir / "other.sqlite3")},
        },
        "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_dir / "other.sqlite3")},
    }
elif _backend == "postgres-spellings":  # one server spelled twice: runfireserver must refuse
    _pg = {"ENGINE": "django.db.backends.postgresql", "USER": "postgres"}
    _real = os.environ["DJFIRE_PG_REAL"]
    DATABASES = {
        "default": {**_pg, "HOST": "127.0.0.1", "PORT": "5432", "NAME": _real},
        "other": {
            **_pg,
            "HOST": os.environ.get("DJFIRE_PG_OTHER_HOST", "localhost"),
            "PORT": os.environ.get("DJFIRE_PG_OTHER_PORT", ""),
            "NAME": os.environ.get("DJFIRE_PG_OTHER_NAME", f"{_real}_other"),
            "TEST": {"NAME": os.environ.get("DJFIRE_PG_OTHER_TEST_NAME", _real)},
        },
    }
elif _backend in ("postgres-mirror", "sqlite-mirror"):  # a read replica, as Django documents

    class _ReadsFromTheReplica:
        def db_for_read(self, model, **hints):
            return "replica"

        def db_for_write(self, model, **hints):
            return "default"

        def allow_relation(self, obj1, obj2, **hints):
            return True

    DATABASE_ROUTERS = [_ReadsFromTheReplica()]
    if _backend == "postgres-mirror":
        _pg = {"ENGINE": "django.db.backends.postgresql", "USER": "postgres", "NAME": "djfire_shop"}
        DATABASES = {
            "default": {**_pg, "HOST": "127.0.0.1", "PORT": "5432"},
            "replica": {**_pg, "HOST": "localhost", "TEST": {"MIRROR": "default"}},
        }
    else:
        _sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": _dir / "shop.sqlite3"}
        DATABASES = {"default": _sqlite, "replica": {**_sqlite, "TEST": {"MIRROR": "default"}}}
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _dir / "shop.sqlite3"},
        "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": _dir / "other.sqlite3"},
    }
