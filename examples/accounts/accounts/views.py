from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from accounts.models import User


def user_detail(request, user_id):
    """GET /api/users/<id>/: the account other services may see, or 404."""
    user = get_object_or_404(User, pk=user_id)
    return JsonResponse({"id": user.id, "name": user.name, "email": user.email})
