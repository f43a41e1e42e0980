"""The test service as if its Django were 4.2: ``django.VERSION`` is all runfireserver reads.

Only for the refusal's test (tests/djfire/test_start_checks.py): the Django underneath is
still a supported one, so what the command does after its check is not Django 4.2's.
"""

import django

from djproject.settings import *  # noqa: F403

django.VERSION = (4, 2, 11, "final", 0)
