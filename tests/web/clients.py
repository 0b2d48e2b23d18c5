"""Test clients logged in as a given person, with the second factor done where the policy asks for it."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def verified_device(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test", confirmed=True)


def client_for(user: User | None, *, second_factor: bool | None = None) -> Client:
    """A client logged in as ``user`` (anonymous for ``None``).

    Site admins must use two-factor authentication: by default their session is made verified with a
    confirmed TOTP device, as after a real log-in. ``second_factor=False`` leaves the session unverified.
    """
    client = Client()
    if user is None:
        return client
    client.force_login(user)
    if second_factor or (second_factor is None and user.is_superuser):
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = verified_device(user).persistent_id
        session.save()
    return client
