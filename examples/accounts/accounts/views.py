"""The accounts API: log in, who is this session, and the user API in two versions.

Every error is JSON, `{"error": "..."}`, with a status that says whose fault it is: 400
for input the caller must fix, 401 for a login that failed, 404 for what does not exist.
"""

import json

from django.contrib.auth import authenticate, login
from django.contrib.auth.models import User
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST


def _user_v1(user):
    return {"id": user.id, "name": user.get_full_name(), "email": user.email}


def _user_v2(user):
    return {"id": user.id, "display_name": user.get_full_name(), "emails": [user.email]}


# The versions of the user API served side by side. A version is removed once no client
# uses it any more (see ServedVersionsTest in tests.py).
USER_API = {"v1": _user_v1, "v2": _user_v2}


def error(status, message):
    return JsonResponse({"error": message}, status=status)


@require_GET
def user_detail(request, version, user_id):
    """GET /api/<version>/users/<id>/: the account other services may see."""
    if version not in USER_API:
        return error(404, f"no user API {version!r}; served: {', '.join(USER_API)}")
    if not user_id.isdigit():
        return error(400, f"a user id is a positive integer, not {user_id!r}")
    user = User.objects.filter(pk=int(user_id), is_active=True).first()
    if user is None:
        return error(404, f"no user {user_id}")
    return JsonResponse(USER_API[version](user))


@require_POST
def log_in(request):
    """POST /api/login/ {"username", "password"}: starts a session (the cookie)."""
    try:
        data = json.loads(request.body)
    except ValueError:
        return error(400, "the body must be JSON")
    if not isinstance(data, dict):
        return error(400, 'the body must be a JSON object: {"username": ..., "password": ...}')
    for field in ("username", "password"):
        if field not in data:
            return error(400, f"missing field {field!r}")
        if not isinstance(data[field], str):
            return error(400, f"{field!r} must be a string, not {_json_type(data[field])}")
    user = authenticate(request, username=data["username"], password=data["password"])
    if user is None:
        return error(401, "wrong username or password")
    login(request, user)
    return JsonResponse({"id": user.id, "username": user.username})


def _json_type(value):
    """The JSON name of a decoded value's type, for error messages."""
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")


@require_GET
def session(request):
    """GET /api/session/: whose session the cookie is (the shop's gateway asks this)."""
    if not request.user.is_authenticated:
        return error(401, "not logged in")
    return JsonResponse({"id": request.user.id, "username": request.user.username})
