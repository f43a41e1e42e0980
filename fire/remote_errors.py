"""Renamed `fire.exception_data` (issue 22): only fire/server.py still imports this name.

Remove this module once fire/server.py imports `fire.exception_data`.
"""

from .exception_data import describe_exception

__all__ = ["describe_exception"]
