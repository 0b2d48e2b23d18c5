"""Logging in: password, throttling (django-axes), TOTP two-factor (django-otp) required for site admins."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.web.clients import verified_device

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-password-1"


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # django-otp makes each wrong code delay the next attempt (1 s, 2 s, …); these tests try a wrong code
    # first.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def code_for(device: TOTPDevice, offset: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset):06d}"


def log_in(client: Client, username: str, password: str = PASSWORD, next_url: str = "/projects/") -> object:
    return client.post("/login/", {"username": username, "password": password, "next": next_url})


def test_a_person_logs_in_with_a_password() -> None:
    User.objects.create_user("ann", "ann@example.org", PASSWORD)
    client = Client()
    response = log_in(client, "ann")
    assert response.status_code == 302 and response["Location"] == "/projects/"
    assert client.get("/projects/").status_code == 200
    assert log_in(Client(), "ann", "wrong-password-0").status_code == 200  # the form again, with an error


def test_repeated_failures_lock_the_account_even_for_the_right_password(settings) -> None:
    User.objects.create_user("bob", "", PASSWORD)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "bob", "wrong-password-0")
    locked = log_in(client, "bob")
    assert locked.status_code == 429 or locked.status_code == 403
    assert "Too many failed log-ins" in locked.content.decode()
    assert client.get("/projects/").status_code == 302  # not logged in


def test_a_site_admin_must_set_up_two_factor_before_anything_else() -> None:
    User.objects.create_superuser("root", "", PASSWORD)
    client = Client()
    assert log_in(client, "root").status_code == 302
    for url in ("/projects/", "/inbox/", "/access-log/", "/admin/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/account/two-factor/"), url
    page = client.get("/account/two-factor/")
    html = page.content.decode()
    assert (
        page.status_code == 200
        and "data:image/svg+xml;base64," in html
        and "required for site admins" in html.replace("Site admins must use", "required for site admins")
    )
    device = TOTPDevice.objects.get(user__username="root", confirmed=False)
    assert client.post("/account/two-factor/", {"token": "000000"}).status_code == 400
    assert (
        client.post("/account/two-factor/", {"token": code_for(device), "next": "/inbox/"})["Location"]
        == "/inbox/"
    )
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.get("/inbox/").status_code == 200 and client.get("/access-log/").status_code == 200


def test_with_a_device_the_code_is_asked_at_every_log_in() -> None:
    ann = User.objects.create_user("ann", "", PASSWORD)
    device = verified_device(ann)
    client = Client()
    log_in(client, "ann", next_url="/exports/")
    response = client.get("/exports/")
    assert response.status_code == 302 and response["Location"].startswith("/login/verify/?next=")
    assert client.post("/login/verify/", {"token": "123456", "next": "/exports/"}).status_code == 400
    ok = client.post("/login/verify/", {"token": code_for(device), "next": "/exports/"})
    assert ok.status_code == 302 and ok["Location"] == "/exports/"
    assert client.get("/exports/").status_code == 200


def test_the_next_parameter_never_leaves_the_site() -> None:
    ann = User.objects.create_user("ann", "", PASSWORD)
    device = verified_device(ann)
    client = Client()
    log_in(client, "ann")
    response = client.post("/login/verify/", {"token": code_for(device), "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_two_factor_is_optional_for_other_people() -> None:
    User.objects.create_user("ann", "", PASSWORD)
    client = Client()
    log_in(client, "ann")
    assert client.get("/account/").status_code == 200
    assert "Set up" in client.get("/account/").content.decode()


def test_sessions_expire() -> None:
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert settings.SESSION_COOKIE_HTTPONLY is True


def test_notification_preferences_are_saved() -> None:
    ann = User.objects.create_user("ann", "", PASSWORD)
    client = Client()
    client.force_login(ann)
    response = client.post("/account/", {"email": "ann@example.org", "notify_mode": "digest", "phone": ""})
    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.email == "ann@example.org" and ann.profile.notify_mode == "digest"
    bad = client.post("/account/", {"email": "ann@example.org", "notify_mode": "digest", "phone": "12345"})
    assert bad.status_code == 400
