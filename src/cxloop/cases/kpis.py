"""Case KPIs: how fast unhappy customers hear back, how often within the SLA, how many come back.

Over the cases *opened* in [start, end), as known at ``now``:

* **time to first follow-up** (hours): first contact (or the closing, when no contact was
  recorded) minus opening, over cases followed up; median and mean.
* **within SLA** (%): followed up by ``due_at`` / cases whose outcome is known — followed up, or
  past due without a follow-up (a breach). Cases still inside their SLA are not counted yet.
* **detractors recovered** (%): detractor cases whose customer later gave an NPS answer of 9 or
  10 (the re-survey sent on closing, or any later NPS survey) / detractor cases.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

import sqlalchemy as sa

from cxloop.store import schema
from cxloop.store.schema import cases
from cxloop.store.store import Store


@dataclass(frozen=True)
class CaseKpis:
    opened: int
    closed: int
    open_now: int
    overdue_now: int
    followed_up: int
    median_hours_to_follow_up: float | None
    mean_hours_to_follow_up: float | None
    sla_known: int
    within_sla: int
    detractors: int
    detractors_recovered: int

    @property
    def within_sla_rate(self) -> float | None:
        return self.within_sla / self.sla_known if self.sla_known else None

    @property
    def recovered_rate(self) -> float | None:
        return self.detractors_recovered / self.detractors if self.detractors else None

    def as_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = dict(self.__dict__)
        out["within_sla_rate"] = self.within_sla_rate
        out["recovered_rate"] = self.recovered_rate
        return out


def case_kpis(store: Store, *, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> CaseKpis:
    """The case KPIs of the cases opened in [``start``, ``end``), as of ``now``."""
    R = schema.survey_responses
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(cases).where(
                cases.c.opened_at >= start, cases.c.opened_at < end, cases.c.opened_at <= now
            )
        ).all()
        detractors = [r for r in rows if "detractor" in r.reasons.split(",") and r.customer_id]
        recovered = 0
        for r in detractors:
            later = conn.execute(
                sa.select(sa.func.count()).where(
                    R.c.customer_id == r.customer_id,
                    R.c.kind == "nps",
                    R.c.scale_min == 0,
                    R.c.scale_max == 10,
                    R.c.score >= 9,
                    R.c.responded_at > r.responded_at,
                    R.c.responded_at <= now,
                )
            ).scalar_one()
            recovered += int(later > 0)
    # As known at now: a contact recorded later has not happened yet.
    contacts = [
        r.first_contact_at if r.first_contact_at and r.first_contact_at <= now else None for r in rows
    ]
    hours = [(c - r.opened_at).total_seconds() / 3600 for r, c in zip(rows, contacts, strict=True) if c]
    within = sum(1 for r, c in zip(rows, contacts, strict=True) if c is not None and c <= r.due_at)
    late = sum(
        1
        for r, c in zip(rows, contacts, strict=True)
        if (c is not None and c > r.due_at) or (c is None and now > r.due_at)
    )
    return CaseKpis(
        opened=len(rows),
        closed=sum(1 for r in rows if r.status == "closed"),
        open_now=sum(1 for r in rows if r.status == "open"),
        overdue_now=sum(
            1
            for r, c in zip(rows, contacts, strict=True)
            if r.status == "open" and c is None and now > r.due_at
        ),
        followed_up=len(hours),
        median_hours_to_follow_up=statistics.median(hours) if hours else None,
        mean_hours_to_follow_up=statistics.fmean(hours) if hours else None,
        sla_known=within + late,
        within_sla=within,
        detractors=len(detractors),
        detractors_recovered=recovered,
    )
