"""Small pieces the KPI builders share."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from cxloop.metrics.query import Context


def count_if(condition: ir.BooleanValue) -> ir.IntegerScalar:
    """How many rows meet ``condition`` (0, not NULL, when none do)."""
    return condition.ifelse(1, 0).sum()


def aggregate(ctx: Context, table: ir.Table, **metrics: ir.Scalar) -> ir.Table:
    return table.group_by(ctx.keys).aggregate(**metrics)


def mean_stats(values: ir.NumericColumn) -> dict[str, ir.Scalar]:
    """The sufficient statistics of Kind.MEAN over ``values`` (NULLs ignored)."""
    x = values.cast("float64")
    return {"n": x.count(), "total": x.sum(), "total_sq": (x * x).sum()}


def hours_between(start: ir.TimestampValue, end: ir.TimestampValue) -> ir.FloatingValue:
    return (end.epoch_seconds() - start.epoch_seconds()).cast("float64") / 3600


def join_on_keys(left: ir.Table, right: ir.Table, keys: list[str]) -> ir.Table:
    """Left join ``right`` (aggregated by a subset of ``keys``) onto ``left`` by those keys."""
    shared = [k for k in keys if k in right.columns]
    renamed = right.rename({f"_r_{k}": k for k in shared})
    # NULL matches NULL: tickets without a customer meet the orders without one (guests).
    joined = left.left_join(renamed, [left[k].identical_to(renamed[f"_r_{k}"]) for k in shared])
    return joined.drop(*(f"_r_{k}" for k in shared))


def literal_ts(value: object) -> ir.TimestampScalar:
    return ibis.literal(value, type="timestamp")
