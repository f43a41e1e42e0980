"""Settings of the schema test project. DJFIRE_TEST_DB picks the database:

- ``sqlite`` (default): SQLite, an in-memory test database;
- ``sqlite-file``: an SQLite file under DJFIRE_TEST_DIR (or the project directory);
- ``postgres``: PostgreSQL at 127.0.0.1:5432 (user from DJFIRE_PG_USER, default postgres).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "djfire-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["djfire", "odd"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "schemaproject.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_backend = os.environ.get("DJFIRE_TEST_DB", "sqlite")
_dir = Path(os.environ.get("DJFIRE_TEST_DIR", BASE_DIR))
if _backend == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "USER": os.environ.get("DJFIRE_PG_USER", "postgres"),
            "NAME": "djfire_odd",
        }
    }
elif _backend == "sqlite-file":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _dir / "odd.sqlite3",
            "TEST": {"NAME": str(_dir / "test_odd.sqlite3")},
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _dir / "odd.sqlite3"}}
