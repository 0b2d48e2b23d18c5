from django.urls import include, path

urlpatterns = [
    path("", include("rtbank.web.urls")),
]
