"""What the shop tells its customers: here, the order confirmation by e-mail.

One function the views call, so that a test can replace the sending and check what
would have been sent: the full-system tests patch it in the running shop
(`DjangoRemote(shop).patch("shop.notifications.send_order_confirmation")`).
"""

from django.core.mail import send_mail


def send_order_confirmation(order, user):
    """Mail `user` (accounts' ``{"name", "email"}``) that `order` was received."""
    send_mail(
        f"Order #{order.id} confirmed",
        f"Hello {user['name']},\n\nwe received your order: {order.quantity} x {order.item}.\n"
        f"You can cancel it within {order.CANCELLABLE_FOR_MINUTES} minutes.\n",
        None,  # DEFAULT_FROM_EMAIL
        [user["email"]],
    )
