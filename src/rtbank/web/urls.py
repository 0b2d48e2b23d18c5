from django.contrib.auth import views as auth_views
from django.urls import path

from rtbank.web import accesslog, account, auth, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("login/verify/", auth.login_verify, name="login_verify"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", account.account, name="account"),
    path("account/two-factor/", auth.two_factor_setup, name="two_factor_setup"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(
            template_name="rtbank/password_change.html", success_url="/account/"
        ),
        name="password_change",
    ),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/assign/", views.inbox_assign, name="inbox_assign"),
    path("inbox/patients/<int:pk>/", views.inbox_patient, name="inbox_patient"),
    path("upload/", views.upload, name="upload"),
    path("upload/<int:pk>/", views.upload_detail, name="upload_detail"),
    path("access-log/", accesslog.access_log, name="access_log"),
]
