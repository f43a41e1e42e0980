from django.urls import path

from accounts import views

urlpatterns = [
    path("api/login/", views.log_in),
    path("api/session/", views.session),
    # One route for every version of the user API; views.USER_API lists those served.
    path("api/<str:version>/users/<str:user_id>/", views.user_detail),
]
