#!/usr/bin/env python
"""The real-projects service's manage.py (runfireserver is what the tests use)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realprojects.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
