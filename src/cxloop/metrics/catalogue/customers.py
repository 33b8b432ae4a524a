"""Customer-state KPIs: active, new and lost customers, retention and churn.

A customer is *active at a moment t* with a purchase in [t - window, t) (window: 90 days unless
set). For each period [s, e): S = customers active at s, E = active at e, N = customers whose first
purchase ever falls in [s, e), lost = active at s but not at e. Retention rate = (E - N) / S;
churn rate = lost / S.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxloop.metrics.catalogue.common import aggregate, literal_ts
from cxloop.metrics.grains import periods
from cxloop.metrics.kpi import Direction, family
from cxloop.metrics.query import FACTS, Context
from cxloop.metrics.stats import Kind

TABLES = ("orders", "order_lines", "customers")


#: Up to this many periods the counts come from one pass over the purchases grouped by customer
#: (a flag per period boundary, as one would write it by hand); beyond, from a join of the
#: purchases with the periods, whose size does not grow with their number.
PIVOT_MAX_PERIODS = 24


def _spans(ctx: Context) -> pd.DataFrame:
    """period, lo, hi (the period clipped to the range), start_from and end_from (lo and hi less
    the active window), one row per period of the range."""
    window = timedelta(days=ctx.options.active_days)
    bounds = periods(ctx.range_start, ctx.query.until, ctx.query.grain)
    frame = pd.DataFrame(bounds, columns=["period", "lo", "hi"])
    frame["start_from"] = frame["lo"] - window
    frame["end_from"] = frame["hi"] - window
    return frame.astype("datetime64[us]")


def _bought(ctx: Context) -> ir.Table:
    """customer_id, ordered_at of every purchase line with a customer before as_of."""
    lines = ctx.purchase_lines(("customer_id", "ordered_at", "quantity"))
    bought = lines.filter((lines.quantity > 0) & lines.customer_id.notnull())
    return bought.select("customer_id", "ordered_at")


def customer_states(ctx: Context) -> ir.Table:
    """One row per customer and period they touch: at_start, at_end, is_new (0/1), with the
    requested dimensions."""
    frame = _spans(ctx)
    spans = ibis.memtable(frame)

    bought = _bought(ctx)
    if len(frame):
        # Only purchases from the earliest window on can make anyone active at a boundary; without
        # this bound the engine de-duplicates the whole purchase history (twice) for each query.
        earliest = frame["start_from"].min().to_pydatetime()
        bought = bought.filter(bought.ordered_at >= literal_ts(earliest))
    bought = bought.select("customer_id", ts=bought.ordered_at).distinct()

    def active(lower: str, upper: str, flags: tuple[int, int, int]) -> ir.Table:
        joined = bought.join(spans, (bought.ts >= spans[lower]) & (bought.ts < spans[upper]))
        return joined.select("customer_id", "period").distinct().mutate(
            at_start=flags[0], at_end=flags[1], is_new=flags[2]
        )

    firsts = ctx.first_purchases
    new = firsts.join(
        spans, (firsts.first_purchase_at >= spans.lo) & (firsts.first_purchase_at < spans.hi)
    ).select("customer_id", "period").mutate(at_start=0, at_end=0, is_new=1)
    flags = ibis.union(active("start_from", "lo", (1, 0, 0)), active("end_from", "hi", (0, 1, 0)), new)
    states = flags.group_by(["customer_id", "period"]).aggregate(
        at_start=flags.at_start.max(), at_end=flags.at_end.max(), is_new=flags.is_new.max()
    )
    return ctx.with_dimensions(states, FACTS["customers"])


def _counts_by_join(ctx: Context) -> ir.Table:
    s = customer_states(ctx)
    lost = ((s.at_start == 1) & (s.at_end == 0)).ifelse(1, 0)
    return aggregate(ctx, s, S=s.at_start.sum(), E=s.at_end.sum(), N=s.is_new.sum(), lost=lost.sum())


def _counts_by_pivot(ctx: Context) -> ir.Table:
    """The same counts from one row per customer: the first purchase and, for each period
    boundary b, whether they were active at b (a purchase in [b - window, b)). A period's group
    exists when someone in it was active at its start or end or new in it, as with the join."""
    frame = _spans(ctx)
    bought = _bought(ctx)
    boundaries = sorted({t.to_pydatetime() for t in (*frame["lo"], *frame["hi"])})
    window = timedelta(days=ctx.options.active_days)

    def within(lo: datetime, hi: datetime) -> ir.BooleanValue:
        return (bought.ordered_at >= literal_ts(lo)) & (bought.ordered_at < literal_ts(hi))

    per_customer = bought.group_by("customer_id").aggregate(
        first_at=bought.ordered_at.min(),
        **{f"_a{i}": within(b - window, b).ifelse(1, 0).max() for i, b in enumerate(boundaries)},
    )
    per_customer = ctx.with_dimensions(per_customer, FACTS["customers"])
    flag = {b: per_customer[f"_a{i}"] for i, b in enumerate(boundaries)}
    dims = list(ctx.query.by)
    parts = []
    for period, lo, hi in frame[["period", "lo", "hi"]].itertuples(index=False):
        at_start, at_end = flag[lo.to_pydatetime()], flag[hi.to_pydatetime()]
        new = (per_customer.first_at >= literal_ts(lo)) & (per_customer.first_at < literal_ts(hi))
        agg = per_customer.aggregate(
            by=dims,
            S=at_start.sum(),
            E=at_end.sum(),
            N=new.ifelse(1, 0).sum(),
            lost=((at_start == 1) & (at_end == 0)).ifelse(1, 0).sum(),
        )
        agg = agg.filter(agg.S + agg.E + agg.N > 0).mutate(period=literal_ts(period.to_pydatetime()))
        parts.append(agg.select("period", *dims, "S", "E", "N", "lost"))
    if not parts:  # no period in the range: no rows, with the columns of a result
        return _counts_by_join(ctx)
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def counts(ctx: Context, *, method: str | None = None) -> ir.Table:
    """S, E, N and lost per period (and breakdown), built once per context so that the KPIs below
    computed together share one query. ``method`` ("pivot" or "join") overrides the choice by the
    number of periods (tests compare the two)."""
    chosen = method or ("pivot" if len(_spans(ctx)) <= PIVOT_MAX_PERIODS else "join")
    if chosen not in ("pivot", "join"):
        raise ValueError(f"unknown method {method!r}")
    build = _counts_by_pivot if chosen == "pivot" else _counts_by_join
    return ctx.shared(f"customer_counts:{chosen}", build)


def _counts(ctx: Context) -> ir.Table:
    return counts(ctx)


def active_customers(ctx: Context) -> ir.Table:
    c = _counts(ctx)
    return c.select(*ctx.keys, value=c.E)


def new_customers(ctx: Context) -> ir.Table:
    c = _counts(ctx)
    return c.select(*ctx.keys, value=c.N)


def lost_customers(ctx: Context) -> ir.Table:
    c = _counts(ctx)
    return c.select(*ctx.keys, value=c.lost)


def retention_rate(ctx: Context) -> ir.Table:
    c = _counts(ctx)
    return c.select(*ctx.keys, k=c.E - c.N, n=c.S)


def churn_rate(ctx: Context) -> ir.Table:
    c = _counts(ctx)
    return c.select(*ctx.keys, k=c.lost, n=c.S)


_kpi = family(TABLES, "customers", "customers")


KPIS = [
    _kpi("active_customers", "Active customers",
         "customers with a purchase in the window (default 90 days) before the period's end", "customers",
         Direction.UP, Kind.COUNT, active_customers),
    _kpi("new_customers", "New customers", "customers whose first purchase ever falls in the period",
         "customers", Direction.UP, Kind.COUNT, new_customers),
    _kpi("lost_customers", "Lost customers",
         "customers active at the period's start and no longer active at its end", "customers",
         Direction.DOWN, Kind.COUNT, lost_customers),
    _kpi("retention_rate", "Customer retention rate",
         "(E - N) / S: E active at the end, N new in the period, S active at the start", "%",
         Direction.UP, Kind.PROPORTION, retention_rate),
    _kpi("churn_rate", "Churn rate", "lost customers / customers active at the period's start (S)", "%",
         Direction.DOWN, Kind.PROPORTION, churn_rate),
]
