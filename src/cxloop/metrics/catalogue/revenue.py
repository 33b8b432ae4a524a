"""Revenue and purchase KPIs over order lines.

A purchase is an order line with quantity > 0; a return (quantity < 0) counts in net revenue but
not as activity; lines without a customer count in revenue but not in customer KPIs.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from cxloop.metrics.catalogue.common import aggregate, mean_stats
from cxloop.metrics.kpi import Direction, family
from cxloop.metrics.query import Context
from cxloop.metrics.stats import Kind

TABLES = ("orders", "order_lines")


def revenue(ctx: Context) -> ir.Table:
    t = ctx.events("purchases")
    t = t.filter(t.quantity > 0)
    return aggregate(ctx, t, value=t.amount.sum(), n=t.count())


def net_revenue(ctx: Context) -> ir.Table:
    t = ctx.events("purchases")
    return aggregate(ctx, t, value=t.amount.sum(), n=t.count())


def orders(ctx: Context) -> ir.Table:
    t = ctx.events("purchases")
    t = t.filter(t.quantity > 0)
    return aggregate(ctx, t, value=t.order_id.nunique())


def average_order_value(ctx: Context) -> ir.Table:
    t = ctx.events("purchases")
    t = t.filter(t.quantity > 0)
    per_order = t.group_by([*ctx.keys, "order_id"]).aggregate(order_value=t.amount.sum())
    return aggregate(ctx, per_order, **mean_stats(per_order.order_value))


def _per_customer(ctx: Context) -> ir.Table:
    """One row per customer and key: purchase orders and net revenue in the period."""
    t = ctx.events("purchases")
    t = t.filter(t.customer_id.notnull())
    return t.group_by([*ctx.keys, "customer_id"]).aggregate(
        purchase_orders=t.order_id.nunique(where=t.quantity > 0),
        net=t.amount.sum(),
    )


def revenue_per_customer(ctx: Context) -> ir.Table:
    c = _per_customer(ctx)
    return aggregate(
        ctx, c, num=c.net.sum(), den=(c.purchase_orders > 0).ifelse(1, 0).sum()
    )


def purchase_frequency(ctx: Context) -> ir.Table:
    c = _per_customer(ctx)
    c = c.filter(c.purchase_orders > 0)
    return aggregate(ctx, c, **mean_stats(c.purchase_orders))


def repeat_purchase_rate(ctx: Context) -> ir.Table:
    c = _per_customer(ctx)
    c = c.filter(c.purchase_orders > 0)
    return aggregate(ctx, c, k=(c.purchase_orders >= 2).ifelse(1, 0).sum(), n=c.count())


def top_customer_share(ctx: Context) -> ir.Table:
    c = _per_customer(ctx)
    c = c.filter(c.purchase_orders > 0)
    # A total order (revenue, then id) so that every engine picks the same top customers.
    rank = ibis.row_number().over(group_by=ctx.keys, order_by=[ibis.desc(c.net), c.customer_id])
    size = c.count().over(group_by=ctx.keys)
    ranked = c.mutate(rank=rank, size=size)
    top = (ranked["rank"] < (ranked["size"] * ctx.options.top_share).ceil()).ifelse(ranked.net, 0.0)
    return aggregate(ctx, ranked, num=top.sum(), den=ranked.net.sum(), n=ranked.count())


_kpi = family(TABLES, "purchases", "revenue")


KPIS = [
    _kpi("revenue", "Revenue", "sum of line amounts with quantity > 0 (gross sales)", "currency",
         Direction.UP, Kind.SUM, revenue),
    _kpi("net_revenue", "Net revenue", "sum of all line amounts: sales minus returns", "currency",
         Direction.UP, Kind.SUM, net_revenue),
    _kpi("orders", "Purchase orders", "distinct orders with at least one line with quantity > 0", "orders",
         Direction.UP, Kind.COUNT, orders),
    _kpi("aov", "Average order value",
         "mean over purchase orders of the order's sales (lines with quantity > 0)", "currency",
         Direction.UP, Kind.MEAN, average_order_value),
    _kpi("revenue_per_customer", "Revenue per customer",
         "net revenue of lines with a customer / customers with a purchase in the period", "currency",
         Direction.UP, Kind.RATIO, revenue_per_customer),
    _kpi("purchase_frequency", "Purchase frequency",
         "mean number of distinct purchase orders per customer with a purchase in the period", "orders",
         Direction.UP, Kind.MEAN, purchase_frequency),
    _kpi("repeat_purchase_rate", "Repeat purchase rate",
         "customers with two or more distinct purchase orders in the period / customers with one or more",
         "%", Direction.UP, Kind.PROPORTION, repeat_purchase_rate),
    _kpi("top_customer_share", "Revenue share of the top 20% of customers",
         "net revenue of the top 20% of purchasing customers (by net revenue; ceil(20% of them)) "
         "/ net revenue of all purchasing customers", "%", Direction.NEUTRAL, Kind.SHARE, top_customer_share),
]
