from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from gunicorn.app.base import BaseApplication

from rtbank.commands import RtbankCommand


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from rtbank.wsgi import application

        return application


class Command(RtbankCommand):
    help = "Run the web interface with a production server (gunicorn) on RTBANK_BIND:RTBANK_HTTP_PORT."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=None)
        parser.add_argument("--bind", default=None, help="address (default RTBANK_BIND, 127.0.0.1)")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=4)

    def handle(
        self, *args: Any, port: int | None, bind: str | None, workers: int, threads: int, **options: Any
    ) -> None:
        call_command("check", fail_level="ERROR")
        address = f"{bind or settings.BIND_ADDRESS}:{port or settings.HTTP_PORT}"
        _Gunicorn(
            {
                "bind": address,
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "timeout": 120,
                "graceful_timeout": 20,
                "accesslog": "-",
                "errorlog": "-",
                "loglevel": "warning",
                "limit_request_line": 8190,
            }
        ).run()
