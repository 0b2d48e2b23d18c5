"""Institutions and the DICOM nodes rtbank knows."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

CODE = RegexValidator(r"^[A-Za-z0-9_-]{1,32}$", "use letters, digits, _ and - (at most 32)")
# PS3.5 AE: up to 16 characters of the default repertoire, no backslash or control characters;
# leading/trailing spaces are not significant.
AE_TITLE = RegexValidator(r"^[ -\[\]-~]{1,16}$", "an AE title is 1–16 printable characters without backslash")


def validate_host(value: str) -> None:
    """A node's host is an IP address or a CIDR network (e.g. ``10.1.2.0/24``)."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValidationError(f"{value!r} is not an IP address or CIDR network") from None


class Institution(models.Model):
    code = models.CharField(max_length=32, unique=True, validators=[CODE])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class NodeRole(models.TextChoices):
    SEND = "send", "sends to rtbank"
    DEST = "dest", "destination for forwarding"
    HARVEST = "harvest", "harvest source (query/retrieve)"


class Node(models.Model):
    """A DICOM application entity rtbank talks to.

    A node with the ``send`` role may open associations to rtbank, but only from its registered host.
    Harvest sources also send (the C-MOVE sub-operations come from them).
    """

    name = models.CharField(max_length=64, unique=True, validators=[CODE])
    ae_title = models.CharField(max_length=16, validators=[AE_TITLE])
    host = models.CharField(max_length=64, validators=[validate_host], help_text="IP address or CIDR")
    port = models.PositiveIntegerField()
    institution = models.ForeignKey(
        Institution, null=True, blank=True, on_delete=models.PROTECT, related_name="nodes"
    )
    roles = models.JSONField(default=list, help_text="subset of send, dest, harvest")
    options = models.JSONField(default=dict, blank=True, help_text="per-node settings (timeouts, politeness)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def may_send(self) -> bool:
        return NodeRole.SEND in self.roles or NodeRole.HARVEST in self.roles

    def host_matches(self, address: str) -> bool:
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(self.host, strict=False)
        except ValueError:
            return False


class InstitutionRole(models.TextChoices):
    DATA_MANAGER = "data_manager", "data manager (sees and routes the institution's inbox)"
    UPLOADER = "uploader", "uploader (web upload for the institution)"


class NotifyMode(models.TextChoices):
    IMMEDIATE = "immediate", "immediately"
    DIGEST = "digest", "daily digest"
    OFF = "off", "never"


class UserProfile(models.Model):
    """What rtbank knows of a person beyond Django's user: institution, institution roles, notifications.

    Site staff belong to no institution. Site admins are Django superusers.
    """

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="profile")
    institution = models.ForeignKey(
        Institution, null=True, blank=True, on_delete=models.PROTECT, related_name="people"
    )
    roles = models.JSONField(default=list, blank=True, help_text="subset of data_manager, uploader")
    phone = models.CharField(max_length=32, blank=True, help_text="for SMS notifications (E.164)")
    notify_mode = models.CharField(max_length=16, choices=NotifyMode.choices, default=NotifyMode.IMMEDIATE)
    notify_sms = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"profile of user #{self.user_id}"

    def has_role(self, role: str) -> bool:
        return role in self.roles
