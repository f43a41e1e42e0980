"""Django's test utilities for a server, imported without the Jinja2 they load for nothing.

``django.test.utils`` imports jinja2 whenever it is installed, for one thing only: its
``require_jinja2`` decorator, which skips Django's own tests when jinja2 is missing. A
fire server needs the module's set-up functions, never that decorator, and the import
of jinja2 was 25-40 ms of CPU of a server's start (median of 5, the 300-model project of
``python -m bench -k schema``), the largest import fire added to Django's own.

So ``runfireserver`` imports the module with jinja2 hidden: ``django.test.utils.jinja2``
is None in a server (``require_jinja2`` would skip), and jinja2 is imported as ever by
whatever else asks for it: a project's Jinja2 template backend, a view, a remote test.
Where either module is already imported, nothing changes.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = ["django_test_utils"]


def django_test_utils() -> ModuleType:
    """``django.test.utils``, imported without jinja2 if it is not imported yet."""
    if "django.test.utils" not in sys.modules and "jinja2" not in sys.modules:
        sys.modules["jinja2"] = None  # type: ignore[assignment]  # its import raises ImportError
        try:
            import django.test.utils  # noqa: F401
        finally:
            del sys.modules["jinja2"]
    return sys.modules["django.test.utils"]
