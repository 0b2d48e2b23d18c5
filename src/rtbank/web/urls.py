from django.contrib.auth import views as auth_views
from django.urls import path

from rtbank.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(template_name="rtbank/login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/patients/<int:pk>/", views.inbox_patient, name="inbox_patient"),
]
