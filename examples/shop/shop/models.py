from django.db import models


class Order(models.Model):
    # The user lives in the accounts service: only its id is stored here.
    user_id = models.BigIntegerField(db_index=True)
    item = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"order #{self.pk}: {self.quantity} x {self.item} for user {self.user_id}"
