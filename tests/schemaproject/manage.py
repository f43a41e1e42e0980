#!/usr/bin/env python
"""The schema test project's manage.py: a schema beyond plain models' tables."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "schemaproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
