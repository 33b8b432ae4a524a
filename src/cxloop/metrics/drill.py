"""The rows behind a number: the answers, orders, tickets or reviews a KPI value was computed from.

A KPI value is one period (and, with a breakdown, one value of each dimension); drilling down
lists that period's rows of the KPI's fact, filtered the way the KPI filters them (the NPS
answers on a 0-10 scale, say), with a ``class`` column where the KPI sorts rows into classes —
so "the detractors behind an NPS" is ``drill(..., row_class="detractor")``.

Customer-state KPIs (active, new, lost customers, retention) are states, not events: their
drill-down lists the period's purchases, the events the states are made of.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.metrics.grains import Grain, period_start, shift
from cxloop.metrics.kpi import Kpi
from cxloop.metrics.query import FACTS, Context, Query
from cxloop.metrics.source import Source, to_pandas

#: The columns shown for each fact, in order (the first is the time).
COLUMNS: dict[str, tuple[str, ...]] = {
    "purchases": (
        "ordered_at",
        "order_id",
        "customer_id",
        "channel",
        "product_id",
        "category",
        "quantity",
        "amount",
    ),
    "orders": ("ordered_at", "order_id", "customer_id", "channel", "status", "currency", "total_amount"),
    "responses": (
        "responded_at",
        "response_id",
        "customer_id",
        "survey_id",
        "kind",
        "score",
        "scale_max",
        "comment",
        "channel",
        "touchpoint",
    ),
    "invitations": ("sent_at", "invitation_id", "customer_id", "survey_id", "channel"),
    "tickets": (
        "opened_at",
        "ticket_id",
        "customer_id",
        "category",
        "priority",
        "status",
        "agent_id",
        "channel",
        "subject",
    ),
    "reviews": ("posted_at", "review_id", "source", "brand", "rating", "title", "text", "author", "url"),
    "subscriptions": ("started_at", "subscription_id", "customer_id", "plan", "mrr", "ended_at"),
}

#: Which fact's rows stand behind a KPI of each fact (states are drilled to their events).
ROWS_OF_FACT = {"customers": "purchases"}

#: Answer kinds of the survey KPIs (the rest of the responses fact has no kind filter).
SURVEY_KIND = {"nps": "nps", "csat": "csat", "csat_mean": "csat", "ces": "ces", "ces_agree": "ces"}

#: The classes a drill-down can be cut by, per KPI.
ROW_CLASSES: dict[str, tuple[str, ...]] = {"nps": ("promoter", "passive", "detractor")}


@dataclass(frozen=True)
class Drill:
    """A page of rows behind one KPI value, and how many there are in all."""

    kpi: str
    fact: str
    period: datetime
    end: datetime
    rows: pd.DataFrame
    total: int
    limit: int
    offset: int

    @property
    def columns(self) -> list[str]:
        return list(self.rows.columns)


def row_classes(kpi: Kpi) -> tuple[str, ...]:
    """The classes (``promoter``, ``detractor``, …) a drill-down of ``kpi`` can be cut by."""
    return ROW_CLASSES.get(kpi.id, ())


def _classify(kpi: Kpi, t: ir.Table) -> ir.Table:
    if kpi.id == "nps":
        t = t.filter((t.scale_min == 0) & (t.scale_max == 10))
        label = ibis.cases((t.score >= 9, "promoter"), (t.score >= 7, "passive"), else_="detractor")
        return t.mutate(**{"class": label})
    return t


def drill(
    source: Source,
    kpi: Kpi,
    *,
    period: datetime,
    grain: Grain,
    as_of: datetime,
    where: Mapping[str, tuple[str, ...]] | None = None,
    row_class: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Drill:
    """The rows of ``kpi``'s fact in the period starting at (or containing) ``period``, newest first.

    ``where`` narrows to dimension values, as for the KPI itself; ``row_class`` keeps one class
    (see :func:`row_classes`).
    """
    if grain is Grain.ALL:
        raise ConfigError("a drill-down needs a period: choose a grain other than 'all'")
    fact_name = ROWS_OF_FACT.get(kpi.fact, kpi.fact)
    if fact_name not in COLUMNS:
        raise ConfigError(f"KPI {kpi.id!r} has no rows to drill down to")
    classes = row_classes(kpi)
    if row_class is not None and row_class not in classes:
        allowed = ", ".join(classes) or "none for this KPI"
        raise ConfigError(f"unknown class {row_class!r} for KPI {kpi.id!r}: {allowed}")
    start = period_start(period, grain)
    end = shift(start, grain, 1)
    query = Query(
        grain=grain,
        where={name: tuple(values) for name, values in (where or {}).items()},
        start=start,
        end=end,
        as_of=as_of,
    )
    spec = FACTS[fact_name]
    events = Context(source, query, FACTS.get(kpi.fact, spec)).events(fact_name)
    if kpi.id in SURVEY_KIND:
        events = events.filter(events.kind == SURVEY_KIND[kpi.id])
    events = _classify(kpi, events)
    if row_class is not None:
        events = events.filter(events["class"] == row_class)
    # Money and scores are decimals in the store; people read them as plain numbers.
    events = events.mutate(
        **{c: events[c].cast("float64") for c in events.columns if events[c].type().is_decimal()}
    )
    wanted = [c for c in COLUMNS[fact_name] if c in events.columns]
    if "class" in events.columns:
        wanted.insert(1, "class")
    total = int(to_pandas(events.aggregate(n=events.count()))["n"].iloc[0])
    ordered = events.select(*wanted).order_by([ibis.desc(wanted[0]), *wanted[1:3]])
    rows = to_pandas(ordered.limit(limit, offset=offset))
    return Drill(kpi.id, fact_name, start, end, rows, total, limit, offset)
