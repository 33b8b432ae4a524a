"""RFM: recency, frequency and monetary value per customer, quintile scores and named segments.

For each customer with at least one purchase (an order line with quantity > 0) before ``as_of`` —
within the last ``lookback_days`` when given:

* ``recency_days``: whole days from the last purchase to ``as_of``, floor((as_of − last) / 24 h);
* ``frequency``: distinct orders with a purchase line;
* ``monetary``: net revenue, purchases minus returns (rounded to the store's 4 decimals).

Scores 1-5 (5 best: recent, frequent, high spend) are percentile ranks with ties kept together:
``score = 1 + floor(5 · w / n)``, where n is the number of scored customers and w the number of
them with a strictly worse value. Equal values always get equal scores. The segment is read off a
5 × 5 grid of the R score against the FM score, ceil((F + M) / 2). See docs/metrics.md, "RFM".

The database runs one Ibis expression returning one row per customer (last purchase time,
frequency, net revenue); the scores are computed here in NumPy, so every engine gives the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.metrics.query import FACTS, Context, Options, Query
from cxloop.metrics.source import Source, to_pandas

if TYPE_CHECKING:
    from cxloop.store.store import Store

#: The segments, in the order rfm_segments lists them.
SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential loyalists",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Cannot lose them",
    "Hibernating",
    "Lost",
)

_C, _L, _P, _N, _PR, _NA, _AS, _AR, _CL, _H, _LO = SEGMENTS
#: GRID[r - 1][fm - 1]: the segment of a customer with R score r and FM score fm.
GRID: tuple[tuple[str, ...], ...] = (
    # FM:  1    2    3    4    5
    (_LO, _LO, _AR, _AR, _CL),  # R 1
    (_LO, _H, _AR, _AR, _AR),  # R 2
    (_AS, _AS, _NA, _L, _L),  # R 3
    (_PR, _P, _P, _L, _L),  # R 4
    (_N, _P, _P, _L, _C),  # R 5
)

TABLE_COLUMNS = [
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "fm_score",
    "segment",
]
SEGMENT_COLUMNS = [
    "segment",
    "customers",
    "share",
    "revenue",
    "revenue_share",
    "avg_recency_days",
    "avg_frequency",
    "avg_monetary",
]


def rfm_query(
    source: Source,
    *,
    as_of: datetime,
    options: Options | None = None,
    lookback_days: int | None = None,
) -> ir.Table:
    """The one Ibis expression behind :func:`rfm_table`: customer_id, last_purchase_at,
    frequency and monetary, one row per customer with a purchase in the window."""
    if lookback_days is not None and lookback_days <= 0:
        raise ConfigError(f"lookback_days must be a positive number of days, not {lookback_days}")
    query = Query(as_of=as_of, options=options or Options())
    ctx = Context(source, query, FACTS["purchases"])
    lines = ctx.purchase_lines(("order_id", "customer_id", "ordered_at", "quantity", "amount"))
    lines = lines.filter(lines.customer_id.notnull())
    if lookback_days is not None:
        lines = lines.filter(lines.ordered_at >= as_of - timedelta(days=lookback_days))
    bought = lines.quantity > 0
    per_customer = lines.group_by("customer_id").aggregate(
        last_purchase_at=lines.ordered_at.max(where=bought),
        frequency=lines.order_id.nunique(where=bought),
        monetary=lines.amount.sum(),
    )
    # Sorted here, where it is cheap; score_table sorts again only if the engine's collation
    # orders the ids otherwise than Python does (PostgreSQL's may).
    return per_customer.filter(per_customer.frequency > 0).order_by("customer_id")


def rfm_table(
    source: Source,
    *,
    as_of: datetime,
    options: Options | None = None,
    lookback_days: int | None = None,
) -> pd.DataFrame:
    """One row per customer with a purchase before ``as_of`` (in the last ``lookback_days`` days
    when given; then returns and orders before the window are left out too): customer_id,
    recency_days, frequency, monetary, r_score, f_score, m_score, fm_score, segment; sorted by
    customer_id."""
    frame = to_pandas(rfm_query(source, as_of=as_of, options=options, lookback_days=lookback_days))
    return score_table(frame, as_of)


def score_table(frame: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Scores and segments from the per-customer figures (customer_id, last_purchase_at,
    frequency, monetary), as :func:`rfm_table` returns them."""
    if frame.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    out = pd.DataFrame({"customer_id": frame["customer_id"].astype(str)})
    last = pd.to_datetime(frame["last_purchase_at"]).astype("datetime64[us]")
    out["recency_days"] = ((pd.Timestamp(as_of) - last) // pd.Timedelta(days=1)).astype("int64")
    out["frequency"] = pd.to_numeric(frame["frequency"]).astype("int64")
    # Sums of 4-decimal amounts in float64 differ per engine in the last bits; rounding to the
    # store's precision gives every engine the same value, hence the same ranks.
    out["monetary"] = pd.to_numeric(frame["monetary"]).astype(float).round(4)
    out["r_score"] = quintile_scores(-out["recency_days"].to_numpy(float))
    out["f_score"] = quintile_scores(out["frequency"].to_numpy(float))
    out["m_score"] = quintile_scores(out["monetary"].to_numpy(float))
    out["fm_score"] = (out["f_score"] + out["m_score"] + 1) // 2
    out["segment"] = segments(out["r_score"].to_numpy(), out["fm_score"].to_numpy())
    if not out["customer_id"].is_monotonic_increasing:
        out = out.sort_values("customer_id", kind="stable")
    return out.reset_index(drop=True)[TABLE_COLUMNS]


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """1-5 for each value, higher values scoring higher: ``1 + floor(5 · w / n)`` with w the
    number of values strictly below it. Ties share a score; the result does not depend on order."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype="int64")
    worse = np.searchsorted(np.sort(values), values, side="left")
    return (1 + (5 * worse) // n).astype("int64")


def segments(r_scores: np.ndarray, fm_scores: np.ndarray) -> np.ndarray:
    """The segment of each (R score, FM score) pair, from :data:`GRID`."""
    grid = np.array(GRID, dtype=object)
    return np.asarray(grid[np.asarray(r_scores, int) - 1, np.asarray(fm_scores, int) - 1], dtype=object)


def rfm_segments(table: pd.DataFrame) -> pd.DataFrame:
    """Per segment, in the order of :data:`SEGMENTS` (all eleven, empty ones with 0 customers):
    customers, share (% of scored customers), revenue (their net revenue), revenue_share (% of the
    scored customers' net revenue; empty when that is not positive), and mean recency_days,
    frequency and monetary."""
    grouped = table.groupby("segment", sort=False)
    per = pd.DataFrame(
        {
            "customers": grouped.size(),
            "revenue": grouped["monetary"].sum(),
            "avg_recency_days": grouped["recency_days"].mean(),
            "avg_frequency": grouped["frequency"].mean(),
            "avg_monetary": grouped["monetary"].mean(),
        }
    ).reindex(list(SEGMENTS))
    per.index.name = "segment"
    per = per.reset_index()
    per["customers"] = per["customers"].fillna(0).astype("int64")
    per["revenue"] = per["revenue"].fillna(0.0).astype(float)
    total = int(per["customers"].sum())
    revenue = float(per["revenue"].sum())
    per["share"] = 100.0 * per["customers"] / total if total else np.nan
    per["revenue_share"] = 100.0 * per["revenue"] / revenue if revenue > 0 else np.nan
    for column in ("avg_recency_days", "avg_frequency", "avg_monetary"):
        per[column] = per[column].astype(float)
    return per[SEGMENT_COLUMNS]


def rfm(
    data: Store | Source,
    *,
    as_of: datetime | None = None,
    options: Options | None = None,
    lookback_days: int | None = None,
) -> pd.DataFrame:
    """:func:`rfm_table` on a store or a source; ``as_of`` defaults to now (UTC)."""
    from cxloop.metrics.api import as_source
    from cxloop.metrics.compute import now_utc

    with as_source(data) as source:
        return rfm_table(source, as_of=as_of or now_utc(), options=options, lookback_days=lookback_days)
