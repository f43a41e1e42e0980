"""The shop's client of the accounts service's HTTP API: the only code that calls it."""

import requests
from django.conf import settings


class AccountsError(Exception):
    """accounts answered something this client does not expect."""


def _get(path, cookies=None):
    """GET an accounts API path: (status code, decoded JSON). The isolated tests fake this."""
    response = requests.get(settings.ACCOUNTS_URL + path, cookies=cookies, timeout=5)
    return response.status_code, response.json()


def _from_v1(data):
    return {"id": data["id"], "name": data["name"], "email": data["email"]}


def _from_v2(data):
    return {"id": data["id"], "name": data["display_name"], "email": data["emails"][0]}


# The versions of accounts' user API this client speaks; settings.ACCOUNTS_API_VERSION
# picks one. Once every test runs with v2, v1 goes (here and at accounts).
READERS = {"v1": _from_v1, "v2": _from_v2}


def get_user(user_id):
    """The account `user_id` as {"id", "name", "email"}, or None if accounts has none."""
    version = settings.ACCOUNTS_API_VERSION
    status, data = _get(f"/api/{version}/users/{user_id}/")
    if status == 404:
        return None
    if status != 200:
        raise AccountsError(f"GET user {user_id} ({version}): {status} {data}")
    return READERS[version](data)


def session_user_id(session):
    """The id of the user whose accounts session this is, or None if it is no session."""
    if not session:
        return None
    status, data = _get("/api/session/", cookies={settings.ACCOUNTS_SESSION_COOKIE: session})
    if status == 401:
        return None
    if status != 200:
        raise AccountsError(f"GET session: {status} {data}")
    return data["id"]
