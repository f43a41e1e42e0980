"""The application's execute wrappers beside fire's own, across fire calls.

``with connection.execute_wrapper(w):`` around fire calls enters in one call and exits in
another; Django's exit removes the *last* wrapper, which used to be the per-call
savepoint's (the block then failed with "list.remove(x): x not in list" and the
application's wrapper stayed on the shared connection into later tests). pghistory's
``context()`` is such a block.
"""

from __future__ import annotations

import fire


def _wrappers(shop: fire.Remote) -> int:
    return len(shop.module("django.db").connection.execute_wrappers)


def test_a_with_around_calls_wraps_the_calls_inside_and_exits_cleanly(shop: fire.Remote):
    db = shop.module("django.db")
    models = shop.module("shop.models")
    with shop.scope():
        before = _wrappers(shop)
        counter = shop.module("shop.tasks").StatementCounter()
        with db.connection.execute_wrapper(counter):
            models.Category.objects.create(name="wrapped")
            assert models.Category.objects.filter(name="wrapped").count() == 1
        assert counter.count == 2  # the two calls' statements, fire's savepoints not among them
        models.Category.objects.count()
        assert counter.count == 2  # removed at the block's exit
        assert _wrappers(shop) == before


def test_a_wrapper_left_installed_by_a_test_is_gone_in_the_next(shop: fire.Remote):
    db = shop.module("django.db")
    with shop.scope():
        before = _wrappers(shop)
        counter = shop.module("shop.tasks").StatementCounter()
        block = db.connection.execute_wrapper(counter)  # kept: its finalizer would exit it
        block.__enter__()  # never exited
        assert _wrappers(shop) == before + 1
    with shop.scope():
        assert _wrappers(shop) == before
        shop.module("shop.models").Category.objects.count()
    assert counter.count == 0
    del block
