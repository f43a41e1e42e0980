from datetime import timedelta

from django.db import models


class Order(models.Model):
    #: How long after it is placed an order may still be cancelled.
    CANCELLABLE_FOR_MINUTES = 30

    # The user lives in the accounts service: only its id is stored here.
    user_id = models.BigIntegerField(db_index=True)
    item = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    def cancel(self, now):
        """Cancel the order if it is still `now` within its cancellation window."""
        if now - self.created_at > timedelta(minutes=self.CANCELLABLE_FOR_MINUTES):
            return False
        self.cancelled_at = now
        self.save(update_fields=["cancelled_at"])
        return True

    def __str__(self):
        return f"order #{self.pk}: {self.quantity} x {self.item} for user {self.user_id}"
