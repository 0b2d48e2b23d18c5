from __future__ import annotations

import json
from typing import Any

from rtbank.commands import Failure, RtbankCommand
from rtbank.harvest.sources import HarvestError, SourceSettings, configure, harvest_node


class Command(RtbankCommand):
    help = (
        "Politeness settings of a harvest source: `harvest-source NAME [--parallel N] [--pause S] "
        "[--windows 'mon-fri 19:00-07:00;sat-sun 00:00-24:00'] [--retrieve move|get] "
        "[--query-levels image,series,patient]`."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument("--parallel", type=int, help="associations at once (default 1)")
        parser.add_argument("--pause", type=float, dest="pause_s", help="seconds between operations")
        parser.add_argument("--windows", help="allowed times, ';'-separated ('' = always)")
        parser.add_argument("--retrieve", choices=["move", "get"])
        parser.add_argument("--inspect-get", choices=["yes", "no"], help="read small RT objects by C-GET")
        parser.add_argument("--query-levels", help="record-finding fallback chain, e.g. image,series,patient")
        parser.add_argument("--series-lookback-days", type=int)
        parser.add_argument("--max-attempts", type=int)
        parser.add_argument("--timeout", type=int, dest="timeout_s")
        parser.add_argument("--move-destination", help="AE title the source moves to (default rtbank's)")
        parser.add_argument("--chunk-days", type=int, help="days per record query (default 1)")

    def handle(self, *args: Any, name: str, **o: Any) -> None:
        try:
            node = harvest_node(name)
            changes = {
                k: o.get(k)
                for k in (
                    "parallel",
                    "pause_s",
                    "retrieve",
                    "series_lookback_days",
                    "max_attempts",
                    "timeout_s",
                    "move_destination",
                )
            }
            if o.get("windows") is not None:
                changes["windows"] = [w.strip() for w in o["windows"].split(";") if w.strip()]
            if o.get("query_levels"):
                changes["query_levels"] = [lvl.strip() for lvl in o["query_levels"].split(",") if lvl.strip()]
            if o.get("inspect_get"):
                changes["inspect_get"] = o["inspect_get"] == "yes"
            if o.get("chunk_days"):
                changes["chunk_days"] = o["chunk_days"]
            made = configure(node, changes)
        except HarvestError as exc:
            raise Failure(str(exc), code=2) from None
        self.stdout.write(json.dumps({**made.as_options(), **made.extra}, sort_keys=True))
        SourceSettings.of(node)
