from django.urls import path
from shop import debugging, views

urlpatterns = [
    path("products/", views.product_list),
    path("products/create/", views.create_product),
    path("products/create-atomic/", views.create_product_atomic),
    path("products/fail/", views.create_then_fail),
    path("products/db-error/", views.database_error),
    path("products/notify/", views.create_and_notify),
    path("products/notify-then-fail/", views.notify_then_fail),
    path("products/create-slowly/", views.create_slowly),
    path("products/create-durably/", views.create_durably),
    path("mail-slowly/", views.mail_slowly),
    path("products/stream/", views.stream_products),
    path("download/", views.download),
    path("settings/greeting/", views.greeting),
    path("thread/", views.thread),
    path("probe-then-create/", views.probe_then_create),
    path("count-in-asyncio-run/", views.count_in_asyncio_run),
    path("visits/", views.count_visits),
    path("pay/", views.pay),
    path("clock/", views.clock),
    path("breakpoint/", debugging.stop_at_breakpoint),
]
