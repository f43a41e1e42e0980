"""The shop's client of the accounts service's HTTP API."""

import requests
from django.conf import settings


def get_user(user_id):
    """The account `user_id` as a dict (id, name, email), or None if accounts has none."""
    response = requests.get(f"{settings.ACCOUNTS_URL}/api/users/{user_id}/", timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()
