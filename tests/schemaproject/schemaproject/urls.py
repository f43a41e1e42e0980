urlpatterns: list = []  # the schema tests write through fire calls
