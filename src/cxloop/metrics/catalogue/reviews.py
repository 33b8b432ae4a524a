"""Reviews and social KPIs: rating, volume and share of voice.

Rating and volume are about our own brand unless the query breaks down or filters by brand, in
which case each brand gets its own figure. Share of voice = our mentions / all mentions.
"""

from __future__ import annotations

import ibis.expr.types as ir

from cxloop.metrics.catalogue.common import aggregate, count_if, join_on_keys, mean_stats
from cxloop.metrics.kpi import Direction, family
from cxloop.metrics.query import Context
from cxloop.metrics.stats import Kind

TABLES = ("reviews",)


def _mentions(ctx: Context) -> ir.Table:
    t = ctx.events("reviews")
    if "brand" in ctx.query.by or "brand" in ctx.query.where:
        return t
    return t.filter(~t.is_competitor)


def average_rating(ctx: Context) -> ir.Table:
    t = _mentions(ctx)
    t = t.filter(t.rating.notnull())
    return aggregate(ctx, t, **mean_stats(t.rating))


def review_volume(ctx: Context) -> ir.Table:
    t = _mentions(ctx)
    return aggregate(ctx, t, value=t.count())


def share_of_voice(ctx: Context) -> ir.Table:
    t = ctx.events("reviews")
    by_brand = "brand" in ctx.query.by
    # Each brand's share of all mentions when broken down by brand; else our own share.
    num = t.count() if by_brand else count_if(~t.is_competitor)
    mentions = aggregate(ctx, t, num=num)
    total_keys = [k for k in ctx.keys if k != "brand"]
    totals = t.group_by(total_keys).aggregate(den=t.count())
    return join_on_keys(mentions, totals, total_keys)


_kpi = family(TABLES, "reviews", "reviews")


KPIS = [
    _kpi("average_rating", "Average rating", "mean star rating (1-5) of reviews of our brand", "stars",
         Direction.UP, Kind.MEAN, average_rating),
    _kpi("review_volume", "Review and mention volume", "reviews and social posts about our brand",
         "mentions", Direction.NEUTRAL, Kind.COUNT, review_volume),
    _kpi("share_of_voice", "Share of voice",
         "mentions of our brand / mentions of our brand and its competitors", "%", Direction.UP,
         Kind.SHARE, share_of_voice),
]
