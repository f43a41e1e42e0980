"""A model tracked by django-pghistory: its triggers write an event row per change."""

import pghistory
from django.db import models


@pghistory.track()
class Account(models.Model):
    owner = models.CharField(max_length=100)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=0)
