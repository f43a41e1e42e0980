import io
import json
import time

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse

from shop.models import Category, Product


def product_list(request):
    products = Product.objects.order_by("id")
    return JsonResponse({"products": [{"id": p.id, "name": p.name} for p in products]})


def _create(request):
    data = json.loads(request.body or b"{}")
    return Product.objects.create(name=data.get("name", "made over http"), price="9.99")


def create_product(request):
    product = _create(request)
    return JsonResponse({"id": product.id}, status=201)


def create_product_atomic(request):
    with transaction.atomic():
        product = _create(request)
    return JsonResponse({"id": product.id}, status=201)


def create_then_fail(request):
    _create(request)
    raise RuntimeError("this view fails after writing")


def database_error(request):
    Category.objects.create(name="duplicate")
    try:
        Category.objects.create(name="duplicate")
    except IntegrityError:
        return HttpResponse("integrity error", status=500)
    return HttpResponse("no error?", status=200)


def create_and_notify(request):
    product = _create(request)
    transaction.on_commit(
        lambda: send_mail(
            f"new product {product.name}", "body", "shop@example.com", ["staff@example.com"]
        )
    )
    return JsonResponse({"id": product.id}, status=201)


def notify_then_fail(request):
    create_and_notify(request)
    raise RuntimeError("this view fails after registering an on_commit callback")


def greeting(request):
    return JsonResponse({"greeting": settings.GREETING})


def create_slowly(request):
    """Writes a row, then takes ?seconds= to answer (0.05 by default)."""
    product = _create(request)
    time.sleep(float(request.GET.get("seconds", "0.05")))
    return JsonResponse({"id": product.id}, status=201)


def mail_slowly(request):
    """Takes ?seconds= (0.05 by default), then sends an e-mail; no database."""
    time.sleep(float(request.GET.get("seconds", "0.05")))
    send_mail("sent slowly", "body", "shop@example.com", ["staff@example.com"])
    return HttpResponse("sent")


def create_durably(request):
    with transaction.atomic(durable=True):
        product = _create(request)
    return JsonResponse({"id": product.id}, status=201)


def stream_products(request):
    def rows():
        yield "names:"
        for product in Product.objects.order_by("id"):
            yield f" {product.name}"

    return StreamingHttpResponse(rows(), content_type="text/plain")


def download(request):
    content = b"".join(b"line %d\n" % n for n in range(10_000))
    return FileResponse(io.BytesIO(content), as_attachment=True, filename="lines.txt")


def thread(request):
    """The operating system's id of the thread serving this request (never reused soon)."""
    import threading

    return JsonResponse({"thread": threading.get_native_id()})


def probe_then_create(request):
    """Catches a raw cursor's error, then writes (issue 21, defect 2)."""
    from shop.tasks import _probe_missing_table

    caught = _probe_missing_table()
    product = _create(request)
    return JsonResponse({"id": product.id, "caught": caught}, status=201)


def count_in_asyncio_run(request):
    """Runs coroutines itself (asyncio.run), as task code does (issue 21, defect 10)."""
    from shop.tasks import count_in_asyncio_run

    return JsonResponse({"count": count_in_asyncio_run("made in asyncio.run")}, status=201)


def count_visits(request):
    """Counts its visits in the default cache (djfire puts the cache back after each test)."""
    from django.core.cache import cache

    cache.add("visits", 0)
    return JsonResponse({"visits": cache.incr("visits")})


def pay(request):
    """Charges ?amount= through shop.payments.charge (which tests patch)."""
    from shop import payments

    try:
        receipt = payments.charge(request.GET.get("amount", "1.00"), currency="EUR")
    except payments.PaymentDeclined as exc:
        return JsonResponse({"declined": str(exc)}, status=402)
    return JsonResponse({"receipt": receipt})


def clock(request):
    """The time this request sees: Django's now(), time.time(), and a new row's auto_now_add."""
    from django.utils import timezone

    product = Product.objects.create(name="stamped", price="1.00")
    return JsonResponse(
        {
            "now": timezone.now().isoformat(),
            "time": time.time(),
            "created": product.created.isoformat(),
        }
    )
