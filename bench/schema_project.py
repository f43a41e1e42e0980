"""A generated Django project with a large schema: the start-up bench's subject.

One app, ``big``, of `MODELS` models, each with a name and a foreign key to the one
before, and one initial migration (written out, as ``makemigrations`` would): the
project of issue 26, where migrating the test database took 14 s. ``BENCH_DB`` picks
SQLite (in-memory test database) or PostgreSQL at 127.0.0.1:5432; ``BENCH_TEMPLATES=0``
turns djfire's templates off (``DJFIRE_TEMPLATES = False``): today's fresh start.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODELS", "write_project"]

MODELS = 300

_MANAGE = """import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

_SETTINGS = """import os
SECRET_KEY = "bench"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "djfire", "big"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DJFIRE_TEMPLATES = os.environ.get("BENCH_TEMPLATES", "1") == "1"
if os.environ.get("BENCH_DB") == "postgres":
    DATABASES = {{"default": {{
        "ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1", "PORT": "5432",
        "USER": "postgres", "NAME": "{pg_name}",
    }}}}
else:
    DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "big.sqlite3"}}}}
"""


def _models(count: int) -> str:
    lines = ["from django.db import models", ""]
    for i in range(count):
        lines += [f"class M{i}(models.Model):", "    name = models.CharField(max_length=50)"]
        if i:
            lines.append(f"    prev = models.ForeignKey(M{i - 1}, on_delete=models.CASCADE)")
        lines.append("")
    return "\n".join(lines)


def _migration(count: int) -> str:
    lines = [
        "from django.db import migrations, models",
        "import django.db.models.deletion",
        "",
        "class Migration(migrations.Migration):",
        "    initial = True",
        "    dependencies = []",
        "    operations = [",
    ]
    for i in range(count):
        fields = [
            '("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, '
            'verbose_name="ID"))',
            '("name", models.CharField(max_length=50))',
        ]
        if i:
            fields.append(
                f'("prev", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, '
                f'to="big.m{i - 1}"))'
            )
        lines.append(f'        migrations.CreateModel(name="M{i}", fields=[{", ".join(fields)}]),')
    lines.append("    ]")
    return "\n".join(lines) + "\n"


def write_project(root: Path, pg_name: str, count: int = MODELS) -> Path:
    """Write the project under `root` (its PostgreSQL database NAME `pg_name`); returns
    its manage.py."""
    app = root / "big"
    (app / "migrations").mkdir(parents=True, exist_ok=True)
    (root / "manage.py").write_text(_MANAGE)
    (root / "settings.py").write_text(_SETTINGS.format(pg_name=pg_name))
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(_models(count))
    (app / "migrations" / "__init__.py").write_text("")
    (app / "migrations" / "0001_initial.py").write_text(_migration(count))
    return root / "manage.py"
