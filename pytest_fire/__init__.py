"""pytest plugin for fire: connect to (or spawn) fire servers, run each test in a scope.

Registered through the ``pytest11`` entry point as ``fire``; see docs/reference/runners.md.
"""
