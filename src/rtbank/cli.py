"""The ``rtbank`` console script.

Two kinds of verbs:

* **file verbs** (``synth``, ``dvh``, ``anonymize``) work on files with the Django-free core and need no
  server, settings or database — a physicist can run them on a laptop;
* **service verbs** (everything else) are Django management commands of the rtbank apps, so the same
  code runs from the CLI, from tests (``call_command``) and from the worker.

On embedded SQLite the service verbs apply pending migrations themselves; on PostgreSQL the long-running
services refuse to start while migrations are pending (no N-worker migration race), see
:mod:`rtbank.dbstate`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

# verb -> module with `add_arguments(parser)` and `run(args) -> int`; no Django involved.
FILE_VERBS: dict[str, str] = {
    "synth": "rtbank.dicom.synth.command",
    "dvh": "rtbank.dicom.dvh.command",
    "anonymize": "rtbank.dicom.anonymize.command",
}

LONG_RUNNING_VERBS = {"up", "demo", "receive", "worker", "web"}
# Verbs that never need a migrated database.
_NO_DB_VERBS = {"help", "--help", "-h", "check", "version", "--version", "makemigrations", "migrate"}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"} and len(args) == 1:
        print(_usage())
        return 0
    verb = args[0]
    if verb in {"--version", "version"}:
        from rtbank import __version__

        print(f"rtbank {__version__}")
        return 0
    if verb in FILE_VERBS:
        return _run_file_verb(verb, args[1:])
    return _run_service_verb(args)


def _run_file_verb(verb: str, rest: list[str]) -> int:
    import argparse

    module = importlib.import_module(FILE_VERBS[verb])
    parser = argparse.ArgumentParser(prog=f"rtbank {verb}", description=module.__doc__)
    module.add_arguments(parser)
    ns = parser.parse_args(rest)
    try:
        return int(module.run(ns) or 0)
    except KeyboardInterrupt:
        return 130


def _run_service_verb(args: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rtbank.settings")
    from rtbank import config

    home = os.path.abspath(os.environ.get("RTBANK_HOME", "var"))
    if args[0] in {"up", "demo"}:
        # A fresh install gets its own secret key, so it can run with DEBUG off from the first start.
        config.ensure_secret_key(__import__("pathlib").Path(home))
    import django

    django.setup()
    if args[0] not in LONG_RUNNING_VERBS:
        # One-shot verbs print their own summary and one line per error; the event log still gets its rows.
        import logging

        logging.getLogger("rtbank.events").setLevel(logging.ERROR)
    from django.core.management import execute_from_command_line

    from rtbank import dbstate

    dbstate.ensure_home()
    asks_help = any(a in {"-h", "--help"} for a in args[1:])
    if args[0] not in _NO_DB_VERBS and not args[0].startswith("-") and not asks_help:
        problem = dbstate.prepare(args[0])
        if problem:
            print(f"rtbank: {problem}", file=sys.stderr)
            return 2
    try:
        execute_from_command_line(["rtbank", *args])
    except KeyboardInterrupt:
        return 130
    return 0


def _usage() -> str:
    lines = ["usage: rtbank VERB [options]   (rtbank VERB --help for each verb)", "", "services and data:"]
    lines += [f"  {verb:<14} {text}" for verb, text in _service_verbs().items()]
    lines += ["", "files, no server needed:"]
    for verb, module_name in FILE_VERBS.items():
        lines.append(f"  {verb:<14} {_first_doc_line(module_name)}")
    lines += ["", "Django's own management commands (check, shell, createsuperuser, …) are verbs too."]
    return "\n".join(lines)


def _service_verbs() -> dict[str, str]:
    """rtbank's own management commands with the first line of their help, found from the apps."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rtbank.settings")
    import django
    from django.core.management import get_commands, load_command_class

    django.setup()
    verbs = {}
    for name, app in sorted(get_commands().items()):
        if app.startswith("rtbank"):
            help_text = (load_command_class(app, name).help or "").strip().splitlines()
            verbs[name] = help_text[0] if help_text else ""
    return verbs


def _first_doc_line(module_name: str) -> str:
    try:
        doc = importlib.import_module(module_name).__doc__ or ""
    except ImportError:
        return "(not installed)"
    return doc.strip().splitlines()[0] if doc.strip() else ""


if __name__ == "__main__":
    raise SystemExit(main())
