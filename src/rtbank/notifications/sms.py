"""Text messages behind a small gateway interface; the shipped implementation posts to an HTTP webhook.

Most SMS providers (and self-hosted modems behind a small web service) accept an authenticated HTTP POST.
rtbank sends ``{"to": "+4512345678", "text": "…", "sender": "rtbank"}`` as JSON with
``Authorization: Bearer <token>``; any 2xx answer means accepted. A provider with another API gets its own
class with the same ``send`` method.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Protocol

from django.conf import settings

MAX_SMS_CHARS = 306  # two concatenated GSM-7 segments


class SmsError(Exception):
    """The gateway did not accept the message; retrying later may help."""


class SmsGateway(Protocol):
    def send(self, to: str, text: str) -> None:
        """Hand one message to the provider, or raise :class:`SmsError`."""
        ...


class WebhookSmsGateway:
    def __init__(self, url: str, token: str = "", sender: str = "rtbank", timeout_s: float = 10) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"SMS webhook URL must be http(s), got {url!r}")
        self.url, self.token, self.sender, self.timeout_s = url, token, sender, timeout_s

    def send(self, to: str, text: str) -> None:
        body = json.dumps({"to": to, "text": text[:MAX_SMS_CHARS], "sender": self.sender}).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) checked in __init__
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - http(s) checked
                status = response.status
        except urllib.error.HTTPError as exc:
            raise SmsError(f"SMS gateway answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SmsError(f"SMS gateway unreachable: {exc}") from None
        if not 200 <= status < 300:
            raise SmsError(f"SMS gateway answered HTTP {status}")


def sms_gateway() -> SmsGateway | None:
    """The configured gateway (``RTBANK_SMS_WEBHOOK_URL``), or ``None`` when SMS is not set up."""
    if not settings.SMS_WEBHOOK_URL:
        return None
    return WebhookSmsGateway(
        settings.SMS_WEBHOOK_URL, settings.SMS_WEBHOOK_TOKEN, settings.SMS_SENDER, settings.SMS_TIMEOUT_S
    )
