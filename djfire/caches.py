"""The service's local-memory caches, put back at each scope's end as they were at its begin.

A value a test (or a view it called) caches in a ``LocMemCache`` would otherwise be
there in the next test, as rows would be without the rollback. Each scope takes a copy
of every local-memory cache's entries when it opens and puts it back when it closes, so
a class scope's cached values are there for its tests and gone after the class. The
outermost scope opens on the caches as they were when the server started: what a call
outside any test or a late request cached is not the next test's either. The copies are
cheap (a ``LocMemCache`` holds ``MAX_ENTRIES``, 300 by default, pickled values).

Other caches are left alone: ``DummyCache`` keeps nothing, ``DatabaseCache`` keeps its
entries in a table of the test database, rolled back with the test; a file-based cache,
Redis or Memcached is shared with other processes and cannot be rolled back
(docs/reference/djfire.md says what to do).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.core.cache.backends import locmem
from django.utils.module_loading import import_string

__all__ = ["LocalCaches"]

#: One cache's entries and their expiry times, as `LocalCaches.copy` took them.
_Entries = tuple["OrderedDict[str, bytes]", dict[str, Any]]


class LocalCaches:
    """Copies and puts back every ``LocMemCache`` of the settings' ``CACHES``."""

    def __init__(self) -> None:
        self.names = sorted(
            {
                str(params.get("LOCATION", ""))
                for params in settings.CACHES.values()
                if issubclass(import_string(params["BACKEND"]), locmem.LocMemCache)
            }
        )
        self.baseline = self.copy()

    def copy(self) -> list[_Entries]:
        """Each local-memory cache's entries, now."""
        copies = []
        for name in self.names:
            entries, expiry, lock = self._store(name)
            with lock:
                copies.append((entries.copy(), expiry.copy()))
        return copies

    def put_back(self, copies: list[_Entries]) -> None:
        """Make each local-memory cache hold what it held when `copies` were taken."""
        for name, (saved, saved_expiry) in zip(self.names, copies, strict=True):
            entries, expiry, lock = self._store(name)
            with lock:  # in place: every thread's LocMemCache of this name shares them
                entries.clear()
                entries.update(saved)
                expiry.clear()
                expiry.update(saved_expiry)

    @staticmethod
    def _store(name: str) -> tuple[OrderedDict[str, bytes], dict[str, Any], Any]:
        """A cache's entries, expiry times and lock, shared by its instances in every
        thread (made as ``LocMemCache.__init__`` makes them, if no instance exists yet)."""
        return (
            locmem._caches.setdefault(name, OrderedDict()),
            locmem._expire_info.setdefault(name, {}),
            locmem._locks.setdefault(name, threading.Lock()),
        )
