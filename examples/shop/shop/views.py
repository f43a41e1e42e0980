import json

from django.core.mail import send_mail
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.http import require_http_methods

from shop import accounts_client
from shop.models import Order


@require_http_methods(["GET", "POST"])
def orders(request):
    """GET /orders/: my orders. POST /orders/ {"item", "quantity"}: order, as myself.

    "Me" is the user logged in at accounts (see gateway.py); its id is the username of
    the shop's own shadow of that user.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in at accounts first"}, status=401)
    user_id = int(request.user.username)
    if request.method == "GET":
        found = Order.objects.filter(user_id=user_id).order_by("id")
        return JsonResponse({"orders": [_as_data(order) for order in found]})

    data = json.loads(request.body)
    user = accounts_client.get_user(user_id)  # name and e-mail: an HTTP call to accounts
    if user is None:
        return JsonResponse({"error": f"accounts has no user {user_id}"}, status=403)
    with transaction.atomic():
        order = Order.objects.create(
            user_id=user_id, item=data["item"], quantity=data.get("quantity", 1)
        )
        # Mail only once the order is really saved. Under the fire server the callback
        # runs when this request ends, as if it had committed.
        transaction.on_commit(lambda: _send_confirmation(order, user))
    return JsonResponse(_as_data(order), status=201)


def _as_data(order):
    return {"id": order.id, "user": order.user_id, "item": order.item, "quantity": order.quantity}


def _send_confirmation(order, user):
    send_mail(
        f"Order #{order.id} confirmed",
        f"Hello {user['name']},\n\nwe received your order: {order.quantity} x {order.item}.\n",
        None,  # DEFAULT_FROM_EMAIL
        [user["email"]],
    )
