"""Logging in: password (throttled by django-axes), then TOTP two-factor (django-otp) where required.

The design separates *who you are* from *how sure we are*: any Django authentication backend may log a
person in — the password form here, or a single-sign-on backend added later (its button is listed from
``RTBANK_SSO_LOGIN``) — and :class:`TwoFactorMiddleware` then applies one policy to every session:

* a person with a confirmed TOTP device must enter a code before anything else (``/login/verify/``);
* a site admin without one is sent to set it up first (``/account/two-factor/``): required for site admins;
* everyone else may add a device on the account page (optional).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import django_otp
import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.plugins.otp_totp.models import TOTPDevice

from rtbank.eventlog.services import log_event
from rtbank.projects.access import is_site_admin

# Reachable before the second factor: logging in and out, the second factor itself, health, static files.
EXEMPT_PREFIXES = ("/login/", "/logout/", "/account/two-factor/", "/healthz", "/static/")


def has_device(user: Any) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def needs_second_factor(request: HttpRequest) -> str | None:
    """``None`` when the session may proceed; else the URL name of the step it must take first."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if user.is_verified():
        return None
    if has_device(user):
        return "login_verify"
    if is_site_admin(user):
        return "two_factor_setup"
    return None


class TwoFactorMiddleware:
    """Applies the second-factor policy to every request after authentication (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(EXEMPT_PREFIXES):
            step = needs_second_factor(request)
            if step:
                return redirect(f"{reverse(step)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


class LoginView(auth_views.LoginView):
    template_name = "rtbank/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sso_login"] = settings.RTBANK_SSO_LOGIN
        return context


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        max_length=12,
        label="Code from your authenticator app",
        error_messages={"invalid": "enter the 6-digit code"},
    )


@login_required
def login_verify(request: HttpRequest) -> HttpResponse:
    """Second step of logging in for people with a confirmed TOTP device."""
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if request.user.is_verified() or not has_device(request.user):
        return redirect(_unquoted_next(request, target))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = django_otp.match_token(request.user, form.cleaned_data["token"].strip())
        if device is not None and device.confirmed:
            django_otp.login(request, device)
            log_event(
                "web",
                "login_second_factor",
                actor=request.user.get_username(),
                object_type="user",
                object_id=request.user.pk,
            )
            return redirect(_unquoted_next(request, target))
        form.add_error("token", "that code is not valid (or too many attempts: wait and try again)")
    return render(
        request,
        "rtbank/login_verify.html",
        {"form": form, "next": target},
        status=400 if request.method == "POST" else 200,
    )


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Add a TOTP device: show its QR code, confirm it with one code, then the session counts as verified."""
    if has_device(request.user):
        if not request.user.is_verified():
            return redirect("login_verify")
        messages.info(request, "Two-factor authentication is already on for your account.")
        return redirect("account")
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name="authenticator app", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=request.user, confirmed=False).delete()
            django_otp.login(request, device)
            log_event(
                "web",
                "two_factor_added",
                actor=request.user.get_username(),
                object_type="user",
                object_id=request.user.pk,
            )
            messages.success(request, "Two-factor authentication is on for your account.")
            return redirect(_unquoted_next(request, request.POST.get("next") or "/account/"))
        form.add_error("token", "that code is not valid; check the time on your phone and try again")
    return render(
        request,
        "rtbank/two_factor_setup.html",
        {
            "form": form,
            "qr": _qr_data_uri(device.config_url),
            "secret": base64.b32encode(device.bin_key).decode(),
            "required": is_site_admin(request.user),
            "next": request.GET.get("next") or request.POST.get("next") or "",
        },
        status=400 if request.method == "POST" else 200,
    )


def _unquoted_next(request: HttpRequest, target: str) -> str:
    """``target`` if it is a path on this site (never an open redirect), else the home page."""
    ok = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    return target if ok and target.startswith("/") and not target.startswith("//") else "/"


def _qr_data_uri(text: str) -> str:
    """The otpauth:// URL as an SVG QR code in a data: URI (the CSP allows data: images, nothing inline)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()
