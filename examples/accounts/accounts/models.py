from django.db import models


class User(models.Model):
    """A customer account, as the other services see it through the API."""

    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)

    def __str__(self):
        return self.email
