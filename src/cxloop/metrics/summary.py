"""The headline: a few KPIs for the last complete period, each against the period before.

"Last complete period" is the latest period that ended at or before ``as_of``; comparing a
month-to-date against a whole month would flatter or punish every count.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from cxloop.metrics.compute import compute_queries, make_query
from cxloop.metrics.grains import Grain, parse_grain, period_start, shift
from cxloop.metrics.kpi import Direction
from cxloop.metrics.query import Options
from cxloop.metrics.registry import Registry
from cxloop.metrics.source import Source

HEADLINE = (
    "nps",
    "csat",
    "ces",
    "revenue",
    "net_revenue",
    "aov",
    "active_customers",
    "new_customers",
    "retention_rate",
    "churn_rate",
    "repeat_purchase_rate",
    "revenue_per_customer",
    "complaints_per_1000_orders",
    "resolution_median",
    "average_rating",
)

COLUMNS = [
    "kpi",
    "name",
    "unit",
    "direction",
    "period",
    "value",
    "n",
    "ci_low",
    "ci_high",
    "warning",
    "previous",
    "change",
    "p_value",
    "significant",
    "verdict",
]


def last_complete_period(as_of: datetime, grain: Grain) -> tuple[datetime, datetime]:
    end = period_start(as_of, grain)
    return shift(end, grain, -1), end


def headline(
    source: Source,
    registry: Registry,
    *,
    as_of: datetime,
    grain: str | Grain = Grain.MONTH,
    kpi_ids: Sequence[str] = HEADLINE,
    options: Options | None = None,
) -> pd.DataFrame:
    """One row per KPI: its value in the last complete period, the previous value, the change,
    whether the change is significant, and a verdict: better, worse or steady."""
    grain = parse_grain(grain)
    start, end = last_complete_period(as_of, grain)
    query = make_query(grain=grain, start=start, end=end, as_of=as_of, options=options)
    kpis = [registry.get(kpi_id) for kpi_id in dict.fromkeys(kpi_ids)]
    # All of them together: one query for both periods of every KPI but the quantiles.
    results = compute_queries(source, kpis, query, change=True)
    records = []
    for kpi in kpis:
        result = results[kpi.id]
        row = result.iloc[-1].to_dict() if len(result) else {"period": start.date()}
        records.append(
            {
                "kpi": kpi.id,
                "name": kpi.name,
                "unit": kpi.unit,
                "direction": kpi.direction.value,
                **row,
            }
        )
    frame = pd.DataFrame.from_records(records).reindex(columns=COLUMNS)
    frame["verdict"] = [_verdict(r) for r in frame.itertuples()]
    return frame


def _verdict(row: object) -> str:
    """better / worse / steady for a tested change; higher / lower / same for exact figures
    (totals and ratios have no sampling error to test against)."""
    change, significant, direction = (getattr(row, c) for c in ("change", "significant", "direction"))
    if change is None or (isinstance(change, float) and np.isnan(change)):
        return "no comparison"
    if significant is None or (isinstance(significant, float) and np.isnan(significant)):
        return "higher" if change > 0 else "lower" if change < 0 else "same"
    if not significant or direction == Direction.NEUTRAL.value or change == 0:
        return "steady" if not significant else ("higher" if change > 0 else "lower")
    better = (change > 0) == (direction == Direction.UP.value)
    return "better" if better else "worse"
