"""The test service with the settings of a production deployment left in."""

from djproject.settings import *  # noqa: F403

DEBUG = True
ALLOWED_HOSTS = ["shop.example.com"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", *MIDDLEWARE]  # noqa: F405
SECURE_SSL_REDIRECT = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_DOMAIN = ".example.com"
