from django.conf import settings
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver


class Category(models.Model):
    name = models.CharField(max_length=50, unique=True)


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def label(self) -> str:
        return f"{self.name} ({self.price})"


class AuditEntry(models.Model):
    """Lives in the 'other' database: proves every alias is rolled back."""

    message = models.CharField(max_length=200)


@receiver(setting_changed)
def fail_when_restored(setting: str, enter: bool, **kwargs: object) -> None:
    """Service code that fails when FAIL_ON_RESTORE is restored: a scope must still close."""
    if setting == "FAIL_ON_RESTORE" and not enter:
        raise RuntimeError("a setting_changed receiver failed")
