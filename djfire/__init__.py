"""djfire: run a Django service as a fire server for full-system tests.

Add ``"djfire"`` to ``INSTALLED_APPS`` and run ``python manage.py runfireserver``. The
server creates the test databases, wraps every test scope in a transaction on every
alias (rolled back at its end), and serves the project over HTTP with the same database
connections, so a live request sees the test's uncommitted data.

Importing this package does not import Django (the pytest plugin works without it).
"""

__all__ = ["DjangoRemote"]


def __getattr__(name: str) -> object:
    if name == "DjangoRemote":
        from .helpers import DjangoRemote

        return DjangoRemote
    raise AttributeError(name)
