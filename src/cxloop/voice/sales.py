"""Sales preferences and trends: what sells, to whom, and what is rising or falling.

Everything is computed in the database by one Ibis expression over order lines (with their
order's time and customer, and the customer's segment or region when asked for), built on the
metrics layer's :class:`~cxloop.metrics.query.Context`: the same periods (:mod:`cxloop.metrics.grains`),
the same breakdowns and filters, and so the same engines (DuckDB, PostgreSQL, Spark).

The figures per item (a category or a product) and period follow the revenue KPIs
(docs/metrics.md), so they add up to them:

* ``revenue``: sum of line amounts with quantity > 0 (gross sales, as the ``revenue`` KPI);
* ``net_revenue``: sum of all line amounts, returns (negative lines) subtracted;
* ``units``: sum of quantities of lines with quantity > 0;
* ``orders``: distinct orders with a line of the item with quantity > 0;
* ``customers``: distinct customers with such a line (guest orders count in orders, not here).

Rising and falling (:func:`item_trends`) compares a complete period with the one before it. The
test is on ``orders`` (a count): by default on the item's share of all orders of its slice (the
conditional binomial test of two Poisson rates, ``Kind.RATE`` in :mod:`cxloop.metrics.change`),
so that a season that lifts every item does not make every item "rising"; with
``relative=False`` on the count itself (equal exposure, ``Kind.COUNT``). Items with fewer than
``min_orders`` orders in the two periods together are left out, and the p-values are adjusted
for the many items tested at once (Benjamini-Hochberg false discovery rate): an item is rising
or falling when its q-value is below ``alpha``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Final

import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats as st

from cxloop.errors import ConfigError
from cxloop.metrics.catalogue.common import join_on_keys
from cxloop.metrics.change import p_values
from cxloop.metrics.compute import now_utc
from cxloop.metrics.grains import Grain, parse_grain, period_start, shift
from cxloop.metrics.query import CUSTOMER_DIMENSIONS, FACTS, Context, Query
from cxloop.metrics.source import Source, to_pandas
from cxloop.metrics.stats import Kind

__all__ = [
    "GRAINS",
    "GROUPINGS",
    "LEVELS",
    "MEASURES",
    "benjamini_hochberg",
    "item_trends",
    "top_items",
]

#: What an item is: a category, or a product (its ``product_id``, with its name beside it).
LEVELS: Final = ("category", "product")
#: What the top items are ranked by.
MEASURES: Final = ("revenue", "net_revenue", "units", "orders", "customers")
#: Dimensions sales break down and filter by: the customer's fields, and the order's channel.
GROUPINGS: Final = (*CUSTOMER_DIMENSIONS, "channel")
#: Periods sales compare.
GRAINS: Final = (Grain.WEEK, Grain.MONTH, Grain.QUARTER, Grain.YEAR)
TRENDS: Final = ("rising", "falling", "steady")

Where = Mapping[str, str | Iterable[str]]


# -- options, checked at the boundary ----------------------------------------------------------


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    return level


def check_grain(grain: str | Grain) -> Grain:
    parsed = parse_grain(grain)
    if parsed not in GRAINS:
        choices = ", ".join(g.value for g in GRAINS)
        raise ConfigError(f"grain {parsed.value!r} does not apply to sales periods; choose {choices}")
    return parsed


def check_per(per: str | Sequence[str] | None) -> tuple[str, ...]:
    wanted = (per,) if isinstance(per, str) else tuple(per or ())
    for name in wanted:
        if name not in GROUPINGS:
            raise ConfigError(f"cannot break sales down by {name!r}; choose from {', '.join(GROUPINGS)}")
    return tuple(dict.fromkeys(wanted))


def check_where(source: Source, where: Where | None) -> dict[str, tuple[str, ...]]:
    """``where`` as sets of values, each value checked against the data: a segment or region
    that is not in the store is an error that lists the ones that are, not an empty answer."""
    sets = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in (where or {}).items()}
    for name, values in sets.items():
        if name not in GROUPINGS:
            raise ConfigError(f"cannot filter sales by {name!r}; choose from {', '.join(GROUPINGS)}")
        if not values:
            raise ConfigError(f"no {name} given to keep")
        table = source.table("orders" if name == "channel" else "customers")
        column = table[name if name == "channel" else CUSTOMER_DIMENSIONS[name]]
        known = set(to_pandas(table.select(value=column).filter(column.notnull()).distinct())["value"])
        unknown = [v for v in values if v not in known]
        if unknown:
            listed = sorted(map(str, known))
            shown = ", ".join(listed[:30]) + (", ..." if len(listed) > 30 else "")
            raise ConfigError(
                f"unknown {name} {unknown[0]!r}; the {name} values in the data are: {shown or 'none'}"
            )
    return sets


def complete_period(
    grain: Grain, as_of: datetime, period: datetime | date | None
) -> tuple[datetime, datetime]:
    """[start, end) of the period holding ``period`` (default: the last one complete at ``as_of``),
    which must be over by ``as_of``: half a month against a whole one would mislead."""
    if period is None:
        end = period_start(as_of, grain)
        return shift(end, grain, -1), end
    moment = period if isinstance(period, datetime) else datetime(period.year, period.month, period.day)
    start = period_start(moment, grain)
    end = shift(start, grain, 1)
    if end > as_of:
        raise ConfigError(
            f"the {grain.value} starting {start.date()} is not over at as of {as_of:%Y-%m-%d %H:%M}; "
            "choose a complete period"
        )
    return start, end


# -- the one query ----------------------------------------------------------------------------


def _figures(t: ir.Table, prefix: str = "") -> dict[str, ir.Scalar]:
    sale = t.quantity > 0
    return {
        f"{prefix}revenue": t.amount.sum(where=sale),
        f"{prefix}net_revenue": t.amount.sum(),
        f"{prefix}units": t.quantity.sum(where=sale),
        f"{prefix}orders": t.order_id.nunique(where=sale),
        f"{prefix}customers": t.customer_id.nunique(where=sale),
    }


def item_figures(
    source: Source,
    *,
    level: str,
    per: tuple[str, ...],
    where: Mapping[str, tuple[str, ...]],
    grain: Grain,
    start: datetime,
    end: datetime,
    as_of: datetime,
) -> ir.Table:
    """One row per period, ``per`` slice and item in [start, end): the item's figures, and the
    slice's (``all_revenue``, ``all_orders``, ...: distinct orders and customers of the whole
    slice, which the items' cannot be summed into)."""
    query = Query(grain=grain, by=(level, *per), where=where, start=start, end=end, as_of=as_of)
    ctx = Context(source, query, FACTS["purchases"])
    t = ctx.events("purchases")
    keys = ["period", *per]
    items = t.group_by([*keys, level]).aggregate(**_figures(t))
    totals = t.group_by(keys).aggregate(**_figures(t, "all_"))
    return join_on_keys(items, totals, keys)


def _fetch(expr: ir.Table, level: str) -> pd.DataFrame:
    frame = to_pandas(expr)
    numbers = [c for c in frame.columns if c.endswith(tuple(MEASURES))]
    frame[numbers] = frame[numbers].apply(pd.to_numeric).fillna(0.0).astype(float)
    frame["period"] = pd.to_datetime(frame["period"])
    frame[level] = frame[level].astype(object).where(frame[level].notna(), None)
    return frame


def product_names(source: Source, ids: Iterable[str]) -> dict[str, str | None]:
    """Each product's name (the greatest one, when lines name it differently)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    lines = source.table("order_lines")
    lines = lines.filter(lines.product_id.isin(wanted)) if len(wanted) <= 5_000 else lines
    names = to_pandas(lines.group_by("product_id").aggregate(name=lines.product_name.max()))
    return {
        str(k): (None if pd.isna(v) else str(v))
        for k, v in zip(names["product_id"], names["name"], strict=True)
    }


def _named(frame: pd.DataFrame, source: Source, level: str) -> pd.DataFrame:
    if level != "product":
        return frame
    names = product_names(source, frame["product"])
    position = frame.columns.get_loc("product") + 1
    frame.insert(
        position, "product_name", [names.get(p) if p is not None else None for p in frame["product"]]
    )
    return frame


def _prepare(
    source: Source,
    level: str,
    per: str | Sequence[str] | None,
    where: Where | None,
    grain: str | Grain,
    as_of: datetime | None,
) -> tuple[str, tuple[str, ...], dict[str, tuple[str, ...]], Grain, datetime]:
    return (
        check_level(level),
        check_per(per),
        check_where(source, where),
        check_grain(grain),
        as_of or now_utc(),
    )


# -- top items --------------------------------------------------------------------------------


def top_items(
    source: Source,
    *,
    level: str = "category",
    measure: str = "revenue",
    per: str | Sequence[str] | None = None,
    where: Where | None = None,
    grain: str | Grain = Grain.MONTH,
    period: datetime | date | None = None,
    as_of: datetime | None = None,
    limit: int | None = 10,
) -> pd.DataFrame:
    """The best-selling items of a complete period (default: the last one before ``as_of``),
    overall or per slice (``per="segment"``), ranked by ``measure``.

    Columns: period, the ``per`` slice, rank, the item (``category``, or ``product`` and
    ``product_name``), revenue, net_revenue, units, orders, customers, and ``share``: the item's
    ``measure`` as a percentage of the slice's (for orders and customers, of the slice's distinct
    orders or customers, so shares do not add up to 100: an order holds several items).
    Items with no sale in the period are left out; ties are broken by the item's name.
    """
    if measure not in MEASURES:
        raise ConfigError(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}")
    level, per_keys, where_sets, parsed, moment = _prepare(source, level, per, where, grain, as_of)
    start, end = complete_period(parsed, moment, period)
    expr = item_figures(
        source, level=level, per=per_keys, where=where_sets, grain=parsed, start=start, end=end, as_of=moment
    )
    frame = _fetch(expr, level)
    frame = frame[frame["orders"] > 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 100 * frame[measure] / frame[f"all_{measure}"]
    frame = frame.assign(share=share.where(frame[f"all_{measure}"] != 0))
    frame = frame.sort_values(
        [*per_keys, measure, level], ascending=[*([True] * len(per_keys)), False, True], na_position="last"
    )
    groups = frame.groupby(list(per_keys), dropna=False, sort=False) if per_keys else None
    frame = frame.assign(rank=groups.cumcount() + 1 if groups is not None else np.arange(1, len(frame) + 1))
    if limit is not None:
        frame = frame[frame["rank"] <= limit]
    columns = ["period", *per_keys, "rank", level, *MEASURES, "share"]
    out = frame[columns].reset_index(drop=True)
    out = out.astype({"rank": "int64", "orders": "int64", "customers": "int64"})
    out["period"] = out["period"].dt.date
    return _named(out, source, level)


# -- rising and falling -----------------------------------------------------------------------

TREND_COLUMNS: Final = (
    "orders",
    "previous_orders",
    "change",
    "relative_change",
    "share",
    "previous_share",
    "revenue",
    "previous_revenue",
    "revenue_change",
    "units",
    "previous_units",
    "customers",
    "previous_customers",
    "p_value",
    "q_value",
    "trend",
)


def item_trends(
    source: Source,
    *,
    level: str = "category",
    per: str | Sequence[str] | None = None,
    where: Where | None = None,
    grain: str | Grain = Grain.MONTH,
    period: datetime | date | None = None,
    as_of: datetime | None = None,
    min_orders: int = 20,
    relative: bool = True,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Rising and falling items: each item's orders in a complete period (default: the last one
    before ``as_of``) against the period before, overall or per slice.

    Columns: period, previous_period, the ``per`` slice, the item, orders and previous_orders,
    change (orders now minus before) and relative_change (change / previous_orders; None for an
    item new this period), share and previous_share (percent of the slice's orders that hold the
    item), revenue, units and customers now and before, p_value (two-sided; see the module),
    q_value (Benjamini-Hochberg over every row), and trend: ``rising`` or ``falling`` when
    q_value < ``alpha`` (by share with ``relative``, else by count), else ``steady``.

    Rows: items with at least ``min_orders`` orders in the two periods together, rising first
    (most orders gained first), then falling (most lost first), then steady.
    """
    if min_orders < 0:
        raise ConfigError(f"min_orders must not be negative, not {min_orders}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie between 0 and 1, not {alpha}")
    level, per_keys, where_sets, parsed, moment = _prepare(source, level, per, where, grain, as_of)
    start, end = complete_period(parsed, moment, period)
    before = shift(start, parsed, -1)
    expr = item_figures(
        source, level=level, per=per_keys, where=where_sets, grain=parsed, start=before, end=end, as_of=moment
    )
    frame = _fetch(expr, level)
    paired = _pair(frame, list(per_keys), level, pd.Timestamp(start), pd.Timestamp(before))
    paired = paired[paired["orders"] + paired["previous_orders"] >= max(min_orders, 1)].reset_index(drop=True)
    paired = _judge(paired, [*per_keys, level], relative, alpha)
    paired.insert(0, "period", start.date())
    paired.insert(1, "previous_period", before.date())
    counts = ["orders", "previous_orders", "change", "customers", "previous_customers"]
    out = paired[["period", "previous_period", *per_keys, level, *TREND_COLUMNS]].astype(
        {c: "int64" for c in counts}
    )
    return _named(out.reset_index(drop=True), source, level)


def _pair(
    frame: pd.DataFrame, per: list[str], level: str, now: pd.Timestamp, then: pd.Timestamp
) -> pd.DataFrame:
    keys = [*per, level]
    measures = ["orders", "revenue", "units", "customers"]
    current = frame[frame["period"] == now].set_index(keys)[measures]
    previous = frame[frame["period"] == then].set_index(keys)[measures].add_prefix("previous_")
    paired = current.join(previous, how="outer").fillna(0.0).reset_index()
    # The slice's orders in each period (a slice with no rows in a period had no orders).
    totals = frame.drop_duplicates(["period", *per])
    for label, when in (("all_orders", now), ("previous_all_orders", then)):
        part = totals.loc[totals["period"] == when, [*per, "all_orders"]].rename(
            columns={"all_orders": label}
        )
        if per:
            paired = paired.merge(part, on=per, how="left")
        else:
            paired[label] = float(part[label].iloc[0]) if len(part) else 0.0
        paired[label] = paired[label].fillna(0.0)
    return paired


def _judge(paired: pd.DataFrame, names: list[str], relative: bool, alpha: float) -> pd.DataFrame:
    orders, previous = paired["orders"].to_numpy(float), paired["previous_orders"].to_numpy(float)
    total, previous_total = (
        paired["all_orders"].to_numpy(float),
        paired["previous_all_orders"].to_numpy(float),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        paired["change"] = orders - previous
        paired["relative_change"] = np.where(previous > 0, (orders - previous) / previous, np.nan)
        paired["share"] = np.where(total > 0, 100 * orders / total, np.nan)
        paired["previous_share"] = np.where(previous_total > 0, 100 * previous / previous_total, np.nan)
    paired["revenue_change"] = paired["revenue"] - paired["previous_revenue"]
    now = pd.DataFrame({"_a": orders, "_b": total, "_c": np.nan})
    then = pd.DataFrame({"_a": previous, "_b": previous_total, "_c": np.nan})
    p = p_values(Kind.RATE if relative else Kind.COUNT, now, then) if len(paired) else np.array([])
    q = benjamini_hochberg(p)
    if relative:
        with np.errstate(divide="ignore", invalid="ignore"):
            up = orders * previous_total > previous * total  # share now > share before
            down = orders * previous_total < previous * total
    else:
        up, down = orders > previous, orders < previous
    significant = np.nan_to_num(q, nan=1.0) < alpha
    paired["p_value"], paired["q_value"] = p, q
    paired["trend"] = np.where(significant & up, "rising", np.where(significant & down, "falling", "steady"))
    # Rising: most orders gained first; falling: most lost first; steady: by change; then by name.
    return (
        paired.assign(
            _group=paired["trend"].map({t: i for i, t in enumerate(TRENDS)}),
            _key=np.where(paired["trend"] == "falling", paired["change"], -paired["change"]),
        )
        .sort_values(["_group", "_key", *names], na_position="last", kind="stable")
        .drop(columns=["_group", "_key"])
        .reset_index(drop=True)
    )


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of the finite ``p``; NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = st.false_discovery_control(p[finite], method="bh")
    return q
