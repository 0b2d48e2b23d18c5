"""Plan classification and delivery from the treatment records (pure functions, no database).

* **Intent**: the plan's RT Plan Intent (curative, palliative, prophylactic, verification, machine QA,
  research, service); anything else or nothing is ``unknown``.
* **Treated**: at least one treatment record references the plan.
* **Fractions delivered**: distinct Current Fraction Numbers of the records; records without one count
  by distinct treatment date (a record per beam and session does not count twice).
* **Planned MU**: the plan's meterset per fraction (summed over the beams) × fractions planned;
  **delivered MU**: the sum over the records.
* **Interruptions**: breaks between two consecutive treatment days that skip at least one weekday
  (Monday–Friday) without treatment; ``missed_weekdays`` is their total. Weekends are not breaks; public
  holidays are not known and do count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

INTENTS = frozenset(
    {"curative", "palliative", "prophylactic", "verification", "machine_qa", "research", "service"}
)


def intent_class(raw_intent: str) -> str:
    """The intent category of a plan (``unknown`` when the plan states none we know)."""
    value = (raw_intent or "").strip().lower().replace(" ", "_")
    return value if value in INTENTS else "unknown"


@dataclass(frozen=True)
class RecordFacts:
    """What the summary needs of one treatment record."""

    treatment_date: dt.date | None
    fraction_number: int | None
    delivered_mu: float | None
    termination_status: str = ""


@dataclass(frozen=True)
class Delivery:
    records: int
    fractions_delivered: int
    first_treatment: dt.date | None
    last_treatment: dt.date | None
    planned_mu: float | None
    delivered_mu: float | None
    interruptions: int
    missed_weekdays: int
    abnormal_terminations: int

    @property
    def treated(self) -> bool:
        return self.records > 0


def delivery_summary(
    records: Sequence[RecordFacts], fractions_planned: int | None, mu_per_fraction: float | None
) -> Delivery:
    """Summarise the records of one plan against its plan."""
    dates = sorted({r.treatment_date for r in records if r.treatment_date is not None})
    numbered = {r.fraction_number for r in records if r.fraction_number is not None}
    unnumbered_dates = {r.treatment_date for r in records if r.fraction_number is None and r.treatment_date}
    fractions = len(numbered) + len(unnumbered_dates - _dates_of_numbered(records))
    if not numbered and not unnumbered_dates:
        fractions = len(records)  # neither numbers nor dates: one fraction per record is all we can say
    delivered = [r.delivered_mu for r in records if r.delivered_mu is not None]
    planned = mu_per_fraction * fractions_planned if mu_per_fraction and fractions_planned else None
    breaks = [n for n in (_weekdays_between(a, b) for a, b in zip(dates, dates[1:], strict=False)) if n > 0]
    abnormal = sum(1 for r in records if r.termination_status.strip().upper() not in {"", "NORMAL"})
    return Delivery(
        records=len(records),
        fractions_delivered=fractions,
        first_treatment=dates[0] if dates else None,
        last_treatment=dates[-1] if dates else None,
        planned_mu=round(planned, 3) if planned is not None else None,
        delivered_mu=round(sum(delivered), 3) if delivered else None,
        interruptions=len(breaks),
        missed_weekdays=sum(breaks),
        abnormal_terminations=abnormal,
    )


def _dates_of_numbered(records: Iterable[RecordFacts]) -> set[dt.date]:
    return {r.treatment_date for r in records if r.fraction_number is not None and r.treatment_date}


def _weekdays_between(a: dt.date, b: dt.date) -> int:
    """Weekdays strictly between ``a`` and ``b``."""
    days = (b - a).days - 1
    if days <= 0:
        return 0
    return sum(1 for k in range(1, days + 1) if (a + dt.timedelta(days=k)).weekday() < 5)
