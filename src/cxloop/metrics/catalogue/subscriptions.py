"""Subscription KPIs: MRR, net and gross revenue retention, logo churn.

A subscription runs from ``started_at`` (inclusive) to ``ended_at`` (exclusive; open while NULL or
later than as_of). For each period [s, e): MRR_s and MRR_e are a customer's summed MRR of the
subscriptions running at s and at e. NRR = Σ MRR_e / Σ MRR_s and GRR = Σ min(MRR_e, MRR_s) /
Σ MRR_s over the customers with MRR_s > 0; logo churn = share of those with MRR_e = 0.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxloop.metrics.catalogue.common import aggregate, count_if
from cxloop.metrics.grains import periods
from cxloop.metrics.kpi import Direction, family
from cxloop.metrics.query import FACTS, Context
from cxloop.metrics.stats import Kind

TABLES = ("subscriptions",)


def subscription_states(ctx: Context) -> ir.Table:
    """One row per customer (and requested dimensions) and period: mrr_start, mrr_end."""
    bounds = periods(ctx.range_start, ctx.query.until, ctx.query.grain)
    spans = ibis.memtable(pd.DataFrame(bounds, columns=["period", "lo", "hi"]).astype("datetime64[us]"))
    subs = ctx.raw("subscriptions")
    subs = ctx.with_dimensions(subs, FACTS["subscriptions"])
    ends = subs.ended_at
    subs = subs.mutate(
        mrr=subs.mrr.cast("float64"), ended=(ends <= ctx.query.as_of).ifelse(ends, ibis.null())
    )
    dims = list(ctx.query.by)

    def running_at(moment: str, start: bool) -> ir.Table:
        joined = subs.join(
            spans, (subs.started_at <= spans[moment]) & (subs.ended.isnull() | (subs.ended > spans[moment]))
        )
        zero = ibis.literal(0.0, type="float64")
        return joined.select(
            "customer_id",
            "period",
            *dims,
            mrr_start=joined.mrr if start else zero,
            mrr_end=zero if start else joined.mrr,
        )

    both = ibis.union(running_at("lo", True), running_at("hi", False))
    return both.group_by(["customer_id", "period", *dims]).aggregate(
        mrr_start=both.mrr_start.sum(), mrr_end=both.mrr_end.sum()
    )


def mrr(ctx: Context) -> ir.Table:
    s = subscription_states(ctx)
    return aggregate(ctx, s, value=s.mrr_end.sum(), n=count_if(s.mrr_end > 0))


def _kept(ctx: Context) -> ir.Table:
    s = subscription_states(ctx)
    return s.filter(s.mrr_start > 0)


def net_revenue_retention(ctx: Context) -> ir.Table:
    s = _kept(ctx)
    return aggregate(ctx, s, num=s.mrr_end.sum(), den=s.mrr_start.sum(), n=s.count())


def gross_revenue_retention(ctx: Context) -> ir.Table:
    s = _kept(ctx)
    kept = ibis.least(s.mrr_end, s.mrr_start)
    return aggregate(ctx, s, num=kept.sum(), den=s.mrr_start.sum(), n=s.count())


def logo_churn(ctx: Context) -> ir.Table:
    s = _kept(ctx)
    return aggregate(ctx, s, k=count_if(s.mrr_end <= 0), n=s.count())


_kpi = family(TABLES, "subscriptions", "subscriptions")


KPIS = [
    _kpi(
        "mrr",
        "MRR",
        "monthly recurring revenue of the subscriptions running at the period's end",
        "currency",
        Direction.UP,
        Kind.SUM,
        mrr,
    ),
    _kpi(
        "net_revenue_retention",
        "Net revenue retention",
        "MRR at the period's end / MRR at its start, over the customers subscribed at its start "
        "(expansion counts, new customers do not)",
        "%",
        Direction.UP,
        Kind.SHARE,
        net_revenue_retention,
    ),
    _kpi(
        "gross_revenue_retention",
        "Gross revenue retention",
        "like NRR but each customer's end MRR capped at their start MRR (no expansion)",
        "%",
        Direction.UP,
        Kind.SHARE,
        gross_revenue_retention,
    ),
    _kpi(
        "logo_churn",
        "Logo churn",
        "% of customers subscribed at the period's start with no subscription running at its end",
        "%",
        Direction.DOWN,
        Kind.PROPORTION,
        logo_churn,
    ),
]
