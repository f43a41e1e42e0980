import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
django_application = get_wsgi_application()

from shop.gateway import AccountsGateway  # noqa: E402 (needs the settings configured)

application = AccountsGateway(django_application)
