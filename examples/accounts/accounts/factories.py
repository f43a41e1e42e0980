"""Test data for this service; the system tests call these remotely, through fire."""

import factory
from django.contrib.auth.models import User


class UserFactory(factory.django.DjangoModelFactory):
    """A user who can log in: `UserFactory(password="...")` sets a known password."""

    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("not-a-secret")  # hashed, as at sign-up
