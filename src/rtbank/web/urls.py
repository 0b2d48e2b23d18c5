from django.urls import path

from rtbank.web import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
