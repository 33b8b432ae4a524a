"""Service KPIs over tickets: volume, complaints per 1,000 orders, response and resolution times,
SLA attainment and reopens. Times are in hours."""

from __future__ import annotations

from dataclasses import replace

import ibis.expr.types as ir

from cxloop.metrics.catalogue.common import aggregate, count_if, hours_between, join_on_keys, literal_ts
from cxloop.metrics.kpi import Direction, Kpi, family
from cxloop.metrics.query import COHORT, CUSTOMER_DIMENSIONS, FACTS, Context
from cxloop.metrics.stats import Kind

TABLES = ("tickets",)


def tickets_opened(ctx: Context) -> ir.Table:
    t = ctx.events("tickets")
    return aggregate(ctx, t, value=t.count())


def complaints_per_1000_orders(ctx: Context) -> ir.Table:
    t = ctx.events("tickets")
    complaints = aggregate(ctx, t, num=count_if(t.is_complaint.fill_null(False)))
    # Orders are split and filtered only by what applies to an order (the customer's fields and
    # cohort); a ticket's channel, category, agent or priority is measured against all orders.
    applies = {*CUSTOMER_DIMENSIONS, COHORT}
    order_query = replace(
        ctx.query,
        by=tuple(d for d in ctx.query.by if d in applies),
        where={d: v for d, v in ctx.query.where.items() if d in applies},
    )
    # Purchase orders, as the `orders` KPI counts them: a return-only order is not an order placed.
    lines = Context(ctx.source, order_query, ctx.fact).events("purchases")
    lines = lines.filter(lines.quantity > 0)
    order_keys = ["period", *order_query.by]
    per_key = lines.group_by(order_keys).aggregate(den=lines.order_id.nunique())
    return join_on_keys(complaints, per_key, order_keys)


def _hours(ctx: Context, until: str) -> ir.Table:
    t = ctx.events("tickets")
    # A response or resolution after as_of was not known then.
    t = t.filter(t[until].notnull() & (t[until] >= t.opened_at) & (t[until] <= ctx.query.as_of))
    return t.select(*ctx.keys, x=hours_between(t.opened_at, t[until]))


def sla_met(ctx: Context) -> ir.Table:
    t = ctx.events("tickets")
    hours = ctx.options.sla_hours
    resolved_hours = hours_between(t.opened_at, t.resolved_at)
    open_hours = hours_between(t.opened_at, literal_ts(ctx.query.as_of))
    # Decided tickets: resolved, or open for longer than the SLA already (a breach). Tickets still
    # open within their SLA are not counted either way yet.
    resolved = t.resolved_at.notnull() & (t.resolved_at <= ctx.query.as_of)
    decided = resolved | (open_hours > hours)
    t = t.filter(decided)
    met = resolved & (resolved_hours <= hours)
    return aggregate(ctx, t, k=count_if(met), n=t.count())


def reopen_rate(ctx: Context) -> ir.Table:
    t = ctx.events("tickets")
    t = t.filter(t.resolved_at.notnull() & (t.resolved_at <= ctx.query.as_of))
    return aggregate(ctx, t, k=count_if(t.reopens.fill_null(0) > 0), n=t.count())


_kpi = family(TABLES, "tickets", "service")


def _quantile(id: str, name: str, q: float, until: str, what: str) -> Kpi:
    def build(ctx: Context) -> ir.Table:
        return _hours(ctx, until)

    return _kpi(id, name, f"{int(q * 100)}th percentile of hours from opening to {what}", "hours",
                Direction.DOWN, Kind.QUANTILE, build, q=q)


KPIS = [
    _kpi("tickets_opened", "Tickets opened", "tickets opened in the period", "tickets",
         Direction.NEUTRAL, Kind.COUNT, tickets_opened),
    _kpi("complaints_per_1000_orders", "Complaints per 1,000 orders",
         "1,000 x tickets marked as complaints / purchase orders placed in the period", "per 1,000 orders",
         Direction.DOWN, Kind.RATE, complaints_per_1000_orders, per=1000.0),
    _quantile("first_response_median", "First response time (median)", 0.5, "first_response_at",
              "the first response"),
    _quantile("first_response_p90", "First response time (p90)", 0.9, "first_response_at",
              "the first response"),
    _quantile("resolution_median", "Resolution time (median)", 0.5, "resolved_at", "resolution"),
    _quantile("resolution_p90", "Resolution time (p90)", 0.9, "resolved_at", "resolution"),
    _kpi("sla_met", "Resolved within SLA",
         "% of decided tickets resolved within the SLA (default 24 hours); decided = resolved, or "
         "open for longer than the SLA", "%", Direction.UP, Kind.PROPORTION, sla_met),
    _kpi("reopen_rate", "Reopen rate", "% of resolved tickets reopened at least once", "%",
         Direction.DOWN, Kind.PROPORTION, reopen_rate),
]

assert all(k.fact in FACTS for k in KPIS)
