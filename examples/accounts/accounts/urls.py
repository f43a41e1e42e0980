from django.urls import path

from accounts import views

urlpatterns = [
    path("api/users/<int:user_id>/", views.user_detail),
]
