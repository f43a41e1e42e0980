"""Test data for this service; the system tests call these remotely, through fire."""

import factory

from shop.models import Order


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    user_id = factory.Sequence(lambda n: n + 1)
    item = factory.Faker("word")
    quantity = 1
