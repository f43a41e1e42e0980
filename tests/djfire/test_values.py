"""Django-aware values: model instances, querysets, values() rows."""

from __future__ import annotations

import pytest

import fire

from .conftest import Counter


def test_model_instances_compare_like_django_models(scoped: fire.Remote):
    users = scoped.module("django.contrib.auth.models").User
    user = scoped.module("shop.factories").UserFactory()
    again = users.objects.get()
    assert user == again
    assert not (user != again)  # noqa: SIM202  (__ne__ is its own remote operation)
    assert hash(user) == hash(again)
    assert len({user, again}) == 1
    other = scoped.module("shop.factories").UserFactory()
    assert user != other


def test_plain_fields_are_local_values_and_relations_honest(scoped: fire.Remote):
    product = scoped.module("shop.factories").ProductFactory(name="lamp", owner=None)
    assert isinstance(product.name, str) and product.name == "lamp"
    assert product.owner is None
    assert product.category.name.startswith("category")
    old = product.name
    product.name = "renamed"
    product.save()
    assert old == "lamp"
    assert scoped.module("shop.models").Product.objects.get().name == "renamed"


def test_chains_wait_for_one_round_trip(scoped: fire.Remote):
    auth_models = scoped.module("django.contrib.auth.models")
    user = scoped.module("shop.factories").UserFactory()
    counter = Counter(scoped)
    assert auth_models.User.objects.get() == user  # get: 1, compare: 1
    assert counter.count == 2
    assert user.groups.count() == 0
    assert counter.count == 3


def test_queryset_iteration_takes_one_round_trip(scoped: fire.Remote):
    factories = scoped.module("shop.factories")
    factories.ProductFactory.create_batch(300)
    products = scoped.module("shop.models").Product.objects.order_by("id")
    counter = Counter(scoped)
    items = list(products)
    assert counter.count == 1
    assert len(items) == 300 and all(fire.is_proxy(p) for p in items)
    rows = list(scoped.module("shop.models").Product.objects.values("id", "name")[:3])
    assert all(type(row) is dict for row in rows)
    names = list(scoped.module("shop.models").Product.objects.values_list("name", flat=True))
    assert all(type(name) is str for name in names)


def test_remote_does_not_exist_is_catchable(scoped: fire.Remote):
    users = scoped.module("django.contrib.auth.models").User
    does_not_exist = scoped.exception("django.core.exceptions.ObjectDoesNotExist")
    try:
        users.objects.get(username="nobody")
    except does_not_exist as exc:
        assert exc.remote_type == "django.contrib.auth.models.User.DoesNotExist"
        assert "does not exist" in str(exc)
        assert "query.py" in exc.remote_traceback
    else:
        raise AssertionError("DoesNotExist was not raised")


def test_model_exception_classes_work_in_except_and_stay_distinct(scoped: fire.Remote):
    auth = scoped.module("django.contrib.auth.models")
    shop = scoped.module("shop.models")
    exceptions = scoped.module("django.core.exceptions")
    try:
        auth.User.objects.get(pk=-1)
    except auth.User.DoesNotExist as exc:
        assert type(exc) is auth.User.DoesNotExist
    with pytest.raises(auth.User.DoesNotExist):  # Product.DoesNotExist must not catch it
        try:
            auth.User.objects.get(pk=-1)
        except shop.Product.DoesNotExist:
            raise AssertionError("Product.DoesNotExist caught User.DoesNotExist") from None
    for model in (auth.User, shop.Product):
        with pytest.raises(exceptions.ObjectDoesNotExist):
            model.objects.get(pk=-1)
    user = scoped.module("shop.factories").UserFactory()
    with pytest.raises(scoped.module("django.db").IntegrityError):
        scoped.module("shop.factories").UserFactory(username=user.username)
    assert auth.User.DoesNotExist is scoped.exception(
        "django.contrib.auth.models.User.DoesNotExist"
    )
