import json

from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from shop import accounts_client, notifications
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
        transaction.on_commit(lambda: notifications.send_order_confirmation(order, user))
    return JsonResponse(_as_data(order), status=201)


@require_http_methods(["POST"])
def cancel(request, order_id):
    """POST /orders/<id>/cancel/: cancel my order, within 30 minutes of placing it."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in at accounts first"}, status=401)
    order = Order.objects.filter(id=order_id, user_id=int(request.user.username)).first()
    if order is None:
        return JsonResponse({"error": f"you have no order {order_id}"}, status=404)
    if not order.cancel(timezone.now()):
        return JsonResponse(
            {
                "error": f"too late: an order can be cancelled for {Order.CANCELLABLE_FOR_MINUTES} "
                "minutes after it is placed"
            },
            status=409,
        )
    return JsonResponse({"id": order.id, "cancelled_at": order.cancelled_at.isoformat()})


def _as_data(order):
    return {"id": order.id, "user": order.user_id, "item": order.item, "quantity": order.quantity}
