#!/usr/bin/env python
"""The accounts service's manage.py (`runfireserver` comes from the djfire app)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "accounts.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
