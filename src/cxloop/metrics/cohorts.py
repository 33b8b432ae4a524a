"""Acquisition cohorts: retention and revenue retention by the period of a customer's first purchase.

A customer's *cohort* is the period (month by default) of their first purchase ever before
``as_of`` (a purchase is an order line with quantity > 0 and a customer). For a cohort c and an age
k = 0, 1, 2, … the cell (c, k) is the calendar period c + k:

* ``customers``: cohort members with a purchase in period c + k; ``retention`` = 100 · customers
  / cohort_size (so age 0 is always 100%);
* ``revenue``: the cohort's net revenue in period c + k (purchases minus returns, by the time of
  the order holding the line); ``revenue_retention`` = 100 · revenue[k] / revenue[0], empty when
  the cohort's period-0 net revenue is not positive.

The database runs one Ibis expression that returns only the non-empty cells (cohort, period,
customers, revenue); the grid of ages, the zero cells and the percentages are made here in pandas.
See docs/metrics.md, "Cohorts".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.metrics.grains import Grain, parse_grain, period_start, shift, truncate
from cxloop.metrics.query import COHORT, FACTS, Context, Options, Query
from cxloop.metrics.source import Source, to_pandas

if TYPE_CHECKING:
    from cxloop.store.store import Store

#: The columns of a cohort matrix, after ``cohort`` and the ``by`` dimensions.
MATRIX_COLUMNS = [
    "age",
    "period",
    "cohort_size",
    "customers",
    "retention",
    "revenue",
    "revenue_retention",
    "complete",
]
CURVE_COLUMNS = ["age", "cohorts", "cohort_size", "retention", "revenue_retention"]


def cohort_query(
    source: Source,
    *,
    grain: str | Grain = Grain.MONTH,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime,
    options: Options | None = None,
    by: Iterable[str] = (),
    where: Mapping[str, str | Iterable[str]] | None = None,
) -> tuple[ir.Table, Query]:
    """The one Ibis expression behind :func:`cohort_matrix`: cohort, the ``by`` dimensions,
    period, customers (distinct purchasing members) and revenue (net), for non-empty cells only."""
    chosen = parse_grain(grain)
    if chosen is Grain.ALL:
        raise ConfigError("cohorts need a grain with periods: day, week, month, quarter or year")
    keys = tuple(dict.fromkeys(by))
    if COHORT in keys or (where and COHORT in where):
        raise ConfigError("'cohort' is the row of the cohort matrix; it cannot be a breakdown")
    wheres = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in (where or {}).items()}
    query = Query(grain=chosen, by=keys, where=wheres, as_of=as_of, options=options or Options())
    ctx = Context(source, query, FACTS["customers"])

    # One narrow join of lines and orders for the first purchases and the cells alike: the engine
    # computes it once (a CTE), with only the four columns read.
    purchases = ctx.purchase_lines(("customer_id", "ordered_at", "quantity", "amount"))
    bought = purchases.filter((purchases.quantity > 0) & purchases.customer_id.notnull())
    firsts = bought.group_by("customer_id").aggregate(first_purchase_at=bought.ordered_at.min())
    members = firsts.select("customer_id", cohort=truncate(firsts.first_purchase_at, chosen))
    if start is not None:
        members = members.filter(members.cohort >= period_start(start, chosen))
    if end is not None:
        members = members.filter(members.cohort < end)
    members = ctx.with_dimensions(members, FACTS["customers"])
    members = members.rename(_m_customer_id="customer_id")

    lines = purchases.filter(purchases.customer_id.notnull())
    lines = lines.mutate(period=truncate(lines.ordered_at, chosen))
    cells = lines.join(members, lines.customer_id == members._m_customer_id)
    # A return dated before its customer's first purchase has no age: it is left out.
    cells = cells.filter(cells.period >= cells.cohort)
    expr = cells.group_by(["cohort", *keys, "period"]).aggregate(
        customers=cells.customer_id.nunique(where=cells.quantity > 0),
        revenue=cells.amount.sum(),
    )
    return expr, query


def cohort_matrix(
    source: Source,
    *,
    grain: str | Grain = Grain.MONTH,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime,
    options: Options | None = None,
    by: Iterable[str] = (),
    where: Mapping[str, str | Iterable[str]] | None = None,
) -> pd.DataFrame:
    """The cohort matrix as a tidy table, one row per cohort (and ``by`` value) and age.

    Columns: ``cohort`` (the first day of the cohort's period), the ``by`` dimensions, ``age`` (k),
    ``period`` (the first day of period cohort + k), ``cohort_size``, ``customers``, ``retention``
    (%), ``revenue`` (net), ``revenue_retention`` (% of period 0), ``complete`` (False for the
    period holding ``as_of``, which is counted only up to ``as_of``).

    ``start`` and ``end`` choose the cohorts: those whose period starts in [the period holding
    ``start``, ``end``). Activity is followed up to ``as_of`` (exclusive); every age up to the
    period holding ``as_of`` has a row, zero when nobody bought.
    """
    expr, query = cohort_query(
        source, grain=grain, start=start, end=end, as_of=as_of, options=options, by=by, where=where
    )
    return _shape(to_pandas(expr), query)


def average_curve(matrix: pd.DataFrame) -> pd.DataFrame:
    """The average retention curve of a cohort matrix: one row per age (and ``by`` value).

    At age k only the cohorts that have reached age k (period cohort + k has begun by ``as_of``,
    i.e. it has a row in the matrix) count. ``retention`` = 100 · Σ customers / Σ cohort_size (the
    mean of the cohorts' retention weighted by cohort size); ``revenue_retention`` = 100 · Σ
    revenue[k] / Σ revenue[0] over those cohorts (weighted by their period-0 revenue), empty when
    that sum is not positive. ``cohorts`` counts them and ``cohort_size`` sums their sizes.
    """
    dims = [c for c in matrix.columns if c not in ("cohort", *MATRIX_COLUMNS)]
    if matrix.empty:
        return pd.DataFrame(columns=[*dims, *CURVE_COLUMNS])
    base = matrix[matrix["age"] == 0][["cohort", *dims, "revenue"]].rename(columns={"revenue": "_revenue_0"})
    cells = matrix.merge(base, on=["cohort", *dims], how="left")
    grouped = cells.groupby([*dims, "age"], dropna=False, sort=True)
    curve = grouped.agg(
        cohorts=("cohort", "size"),
        cohort_size=("cohort_size", "sum"),
        _customers=("customers", "sum"),
        _revenue=("revenue", "sum"),
        _revenue_0=("_revenue_0", "sum"),
    ).reset_index()
    curve["retention"] = 100.0 * curve["_customers"] / curve["cohort_size"]
    curve["revenue_retention"] = _percent(curve["_revenue"], curve["_revenue_0"])
    curve["cohorts"] = curve["cohorts"].astype("int64")
    curve["cohort_size"] = curve["cohort_size"].astype("int64")
    for dim in dims:
        curve[dim] = curve[dim].astype(object).where(curve[dim].notna(), None)
    return curve[[*dims, *CURVE_COLUMNS]].reset_index(drop=True)


def cohorts(
    data: Store | Source,
    *,
    grain: str | Grain = Grain.MONTH,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    options: Options | None = None,
    by: Iterable[str] = (),
    where: Mapping[str, str | Iterable[str]] | None = None,
) -> pd.DataFrame:
    """:func:`cohort_matrix` on a store or a source; ``as_of`` defaults to now (UTC)."""
    from cxloop.metrics.api import as_source
    from cxloop.metrics.compute import now_utc

    with as_source(data) as source:
        return cohort_matrix(
            source,
            grain=grain,
            start=start,
            end=end,
            as_of=as_of or now_utc(),
            options=options,
            by=by,
            where=where,
        )


# -- shaping in pandas ----------------------------------------------------------------------


def _shape(frame: pd.DataFrame, query: Query) -> pd.DataFrame:
    dims = list(query.by)
    grain = query.grain
    columns = ["cohort", *dims, *MATRIX_COLUMNS]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.copy()
    frame["cohort"] = pd.to_datetime(frame["cohort"]).astype("datetime64[us]")
    frame["period"] = pd.to_datetime(frame["period"]).astype("datetime64[us]")
    frame["customers"] = pd.to_numeric(frame["customers"]).fillna(0).astype("int64")
    frame["revenue"] = pd.to_numeric(frame["revenue"]).fillna(0).astype(float)
    frame["age"] = _ages(frame["cohort"], frame["period"], grain)

    # Every member bought in the cohort's own period, so age 0 counts the whole cohort.
    sizes = frame[frame["age"] == 0][["cohort", *dims, "customers"]]
    sizes = sizes.rename(columns={"customers": "cohort_size"}).reset_index(drop=True)
    last = _last_period(query.as_of, grain)
    reached = _ages(sizes["cohort"], pd.Series(last, index=sizes.index), grain) + 1
    grid = sizes.loc[sizes.index.repeat(reached)].reset_index(drop=True)
    grid["age"] = np.concatenate([np.arange(n) for n in reached]) if len(reached) else []
    grid["age"] = grid["age"].astype("int64")

    cells = grid.merge(
        frame[["cohort", *dims, "age", "customers", "revenue"]], on=["cohort", *dims, "age"], how="left"
    )
    cells["customers"] = cells["customers"].fillna(0).astype("int64")
    cells["revenue"] = cells["revenue"].fillna(0.0).astype(float)
    starts = [
        shift(c, grain, int(k)) for c, k in zip(cells["cohort"].dt.to_pydatetime(), cells["age"], strict=True)
    ]
    cells["period"] = starts
    cells["complete"] = [shift(p, grain, 1) <= query.as_of for p in starts]
    cells["retention"] = 100.0 * cells["customers"] / cells["cohort_size"]
    revenue_0 = cells.groupby(["cohort", *dims], dropna=False, sort=False)["revenue"].transform("first")
    cells["revenue_retention"] = _percent(cells["revenue"], revenue_0)
    cells = cells.sort_values(["cohort", *dims, "age"], na_position="last", kind="stable")
    cells["cohort"] = cells["cohort"].dt.date
    cells["period"] = [p.date() for p in cells["period"]]
    cells["cohort_size"] = cells["cohort_size"].astype("int64")
    for dim in dims:  # a member without the dimension's value: None, as in compute's results
        cells[dim] = cells[dim].astype(object).where(cells[dim].notna(), None)
    return cells[columns].reset_index(drop=True)


def _ages(cohort: pd.Series, period: pd.Series, grain: Grain) -> pd.Series:
    """Whole periods from each cohort's period to each period (both period starts)."""
    if grain in (Grain.DAY, Grain.WEEK):
        days = (period - cohort).dt.days
        return (days // (7 if grain is Grain.WEEK else 1)).astype("int64")
    months = (period.dt.year - cohort.dt.year) * 12 + (period.dt.month - cohort.dt.month)
    return (months // {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[grain]).astype("int64")


def _last_period(as_of: datetime, grain: Grain) -> datetime:
    """The start of the last period that has begun before ``as_of`` (rows are < as_of)."""
    return period_start(as_of - timedelta(microseconds=1), grain)


def _percent(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    num = numerator.to_numpy(float)
    den = denominator.to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, 100.0 * num / np.where(den > 0, den, 1.0), np.nan)
    return pd.Series(out, index=numerator.index)
