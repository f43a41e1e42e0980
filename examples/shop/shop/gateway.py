"""Single sign-on: who is this browser? accounts knows, the shop never sees a password.

`AccountsGateway` stands in front of the shop (in shop/wsgi.py; in production it could
be a proxy of its own). It asks accounts whose session the browser's accounts cookie is
and passes the answer on in the X-Remote-User header. `GatewayUserMiddleware` is
Django's RemoteUserMiddleware reading that header. The header is only trustworthy
because the gateway first removes whatever the browser sent under that name.
"""

from http.cookies import SimpleCookie

from django.conf import settings
from django.contrib.auth.middleware import RemoteUserMiddleware

from shop import accounts_client

HEADER = "HTTP_X_REMOTE_USER"  # the WSGI name of X-Remote-User


class AccountsGateway:
    """WSGI middleware: sets X-Remote-User to the accounts user id of the session."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ.pop(HEADER, None)  # what the browser claims counts for nothing
        user_id = accounts_client.session_user_id(_accounts_session(environ))
        if user_id is not None:
            environ[HEADER] = str(user_id)
        return self.app(environ, start_response)


def _accounts_session(environ):
    cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    morsel = cookies.get(settings.ACCOUNTS_SESSION_COOKIE)
    return morsel.value if morsel else None


class GatewayUserMiddleware(RemoteUserMiddleware):
    """request.user from the gateway's header (logged out when it is missing)."""

    header = HEADER
