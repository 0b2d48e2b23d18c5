"""The account page: notification preferences, two-factor status, password."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from rtbank.institutions.models import NotifyMode, UserProfile
from rtbank.projects.access import Access
from rtbank.web.auth import has_device


class PreferencesForm(forms.Form):
    email = forms.EmailField(required=False, help_text="where notifications are sent")
    notify_mode = forms.ChoiceField(choices=NotifyMode.choices, label="E-mail notifications")
    notify_sms = forms.BooleanField(required=False, label="Also by text message (where offered)")
    phone = forms.RegexField(
        regex=r"^\+[1-9][0-9]{6,14}$",
        required=False,
        max_length=16,
        help_text="international format, e.g. +4512345678",
        error_messages={"invalid": "use the international format, e.g. +4512345678"},
    )


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    user = request.user
    profile, _ = UserProfile.objects.get_or_create(user=user)
    initial = {
        "email": user.email,
        "notify_mode": profile.notify_mode,
        "notify_sms": profile.notify_sms,
        "phone": profile.phone,
    }
    form = PreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        user.email = form.cleaned_data["email"]
        user.save(update_fields=["email"])
        profile.notify_mode = form.cleaned_data["notify_mode"]
        profile.notify_sms = form.cleaned_data["notify_sms"]
        profile.phone = form.cleaned_data["phone"]
        profile.save(update_fields=["notify_mode", "notify_sms", "phone"])
        messages.success(request, "Preferences saved.")
        return redirect("account")
    acc = Access.of(request)
    grants = sorted(
        ((p.code, sorted(acc.permissions.get(p.pk, ()))) for p in acc.projects()), key=lambda g: g[0]
    )
    return render(
        request,
        "rtbank/account.html",
        {
            "form": form,
            "profile": profile,
            "two_factor": has_device(user),
            "grants": grants,
            "site_admin": acc.site_admin,
        },
        status=400 if request.method == "POST" else 200,
    )
