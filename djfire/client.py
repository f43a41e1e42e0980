"""Merged into `djfire.helpers` (issue 22): only tests being edited still import this name.

Remove this module once tests/djfire/test_schemas.py, test_scope_turns.py and
test_errors_and_threads.py import ``from djfire import DjangoRemote``.
"""

from .helpers import DjangoRemote

__all__ = ["DjangoRemote"]
