"""Each customer's repeat-buying history, as the value models read it: x, t_x, T and spend.

Time is counted in whole days (UTC days of the stored timestamps) and reported in ``unit``
("days" or "weeks" = days / 7). The calibration period runs up to and including the day
``calibration_end``; the holdout period, when asked for, is the days after it up to and
including ``holdout_end``. For each customer whose first purchase falls in the calibration
period (a purchase is an order line with quantity > 0):

* ``frequency`` x: repeat purchase days, the distinct days with a purchase minus one (two
  orders on one day are one purchase occasion, as in the models' literature);
* ``recency`` t_x: from the first purchase day to the last one; 0 when x = 0;
* ``T``: the customer's age, from the first purchase day to ``calibration_end``;
* ``monetary_value``: mean repeat spend, the net amount (purchase lines minus returns, which
  are lines with quantity < 0) of every line dated after the first purchase day, divided by x;
  0 when x = 0. The first purchase is left out, as the Gamma-Gamma model wants. Returns on the
  first day reduce only the first purchase. It can be 0 (free or fully returned repeat
  purchases) or below 0 (returns of earlier purchases exceeding later ones): such customers
  are left out of the spend model's fit and their expected spend counts their mean as 0;
* ``total_spend``: net amount of every line from the first purchase day on (for reports);
* ``holdout_frequency``: purchase days in the holdout period (with ``holdout_end``).

The database does the work (one Ibis expression, two grouped aggregations and a join), so a
million customers return in a second; :func:`summary_from_transactions` runs the same
expression on a pandas frame, in an in-memory DuckDB.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.metrics.query import FACTS, Context, Query
from cxloop.metrics.source import Source, to_pandas
from cxloop.value.fitting import Rows

Unit = Literal["days", "weeks"]
UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0}
EPOCH = dt.date(1970, 1, 1)
COLUMNS = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "total_spend",
    "first_purchase",
    "last_purchase",
]


@dataclass(frozen=True)
class Summary:
    """The per-customer table (see the module) and how it was cut."""

    frame: pd.DataFrame
    calibration_end: dt.date
    unit: str = "weeks"
    holdout_end: dt.date | None = None

    @property
    def days_per_unit(self) -> float:
        return UNITS[self.unit]

    @cached_property
    def rows(self) -> Rows:
        """The customers' (x, t_x, T) as unique rows, computed once for the fit and predictions."""
        return Rows.of(self.frame["frequency"], self.frame["recency"], self.frame["T"])


def _check(calibration_end: dt.date, holdout_end: dt.date | None, unit: str) -> None:
    if unit not in UNITS:
        raise ConfigError(f"unknown time unit {unit!r}: use days or weeks")
    if holdout_end is not None and holdout_end <= calibration_end:
        raise ConfigError(
            f"the holdout end ({holdout_end}) must come after the calibration end ({calibration_end})"
        )


def _day(moment: ir.TimestampValue) -> ir.IntegerValue:
    """Whole days since 1970-01-01 (the stored timestamps are naive UTC)."""
    return (moment.epoch_seconds() // 86400).cast("int64")


def summary_query(
    lines: ir.Table,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date | None = None,
    segments: ir.Table | None = None,
) -> ir.Table:
    """The expression: one row per customer with first_day, last_day, purchase_days,
    total_spend, repeat_spend, holdout_days (and segment) from ``lines`` (customer_id,
    ordered_at, quantity, amount)."""
    cal_day = (calibration_end - EPOCH).days
    end_day = ((holdout_end or calibration_end) - EPOCH).days
    lines = lines.filter(lines.customer_id.notnull())
    lines = lines.mutate(day=_day(lines.ordered_at))
    lines = lines.filter(lines.day <= end_day)
    daily = lines.group_by(["customer_id", "day"]).aggregate(
        purchases=lines.quantity.count(where=lines.quantity > 0), amount=lines.amount.sum()
    )
    bought = daily.filter(daily.purchases > 0)
    firsts = bought.group_by("customer_id").aggregate(first_day=bought.day.min())
    firsts = firsts.filter(firsts.first_day <= cal_day).rename(first_customer="customer_id")
    days = daily.join(firsts, daily.customer_id == firsts.first_customer)
    in_cal = days.day <= cal_day
    is_purchase = days.purchases > 0
    out = days.group_by(["customer_id", "first_day"]).aggregate(
        last_day=days.day.max(where=in_cal & is_purchase),
        purchase_days=days.day.count(where=in_cal & is_purchase),
        total_spend=days.amount.sum(where=in_cal & (days.day >= days.first_day)),
        repeat_spend=days.amount.sum(where=in_cal & (days.day > days.first_day)),
        holdout_days=days.day.count(where=~in_cal & is_purchase),
    )
    if segments is not None:
        seg = segments.select(seg_customer=segments.customer_id, segment=segments.segment)
        out = out.left_join(seg, out.customer_id == seg.seg_customer).drop("seg_customer")
    return out


def rfm_summary(
    source: Source,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date | None = None,
    unit: Unit | str = "weeks",
    with_segment: bool = False,
) -> Summary:
    """The summary of every customer in the store (see the module for the definitions)."""
    _check(calibration_end, holdout_end, unit)
    last = holdout_end or calibration_end
    as_of = dt.datetime.combine(last + dt.timedelta(days=1), dt.time())
    ctx = Context(source, Query(as_of=as_of), FACTS["purchases"])
    expr = summary_query(
        ctx.purchase_lines(),
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        segments=source.table("customers") if with_segment else None,
    )
    return _finish(to_pandas(expr), calibration_end, holdout_end, unit, with_segment)


def summary_from_transactions(
    transactions: pd.DataFrame,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date | None = None,
    unit: Unit | str = "weeks",
    customer: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
    quantity: str | None = None,
) -> Summary:
    """The same summary from a pandas frame of transactions (one row per purchase, or per line
    with ``quantity``; a negative quantity marks a return). Dates may be dates or timestamps."""
    _check(calibration_end, holdout_end, unit)
    missing = [c for c in (customer, date, amount, quantity) if c is not None and c not in transactions]
    if missing:
        raise ConfigError(f"the transactions have no column {missing[0]!r}")
    lines = pd.DataFrame(
        {
            "customer_id": transactions[customer].astype(str),
            "ordered_at": pd.to_datetime(transactions[date]).astype("datetime64[us]"),
            "quantity": transactions[quantity].astype(float) if quantity else 1.0,
            "amount": pd.to_numeric(transactions[amount]).astype(float),
        }
    )
    con = ibis.duckdb.connect()
    try:
        expr = summary_query(ibis.memtable(lines), calibration_end=calibration_end, holdout_end=holdout_end)
        frame = con.to_pandas(expr)
    finally:
        con.disconnect()
    return _finish(frame, calibration_end, holdout_end, unit, with_segment=False)


def _finish(
    raw: pd.DataFrame, calibration_end: dt.date, holdout_end: dt.date | None, unit: str, with_segment: bool
) -> Summary:
    per = UNITS[unit]
    cal_day = (calibration_end - EPOCH).days
    raw = raw.sort_values("customer_id", kind="stable").reset_index(drop=True)
    first = raw["first_day"].to_numpy(np.int64)
    last = raw["last_day"].to_numpy(np.int64)
    x = raw["purchase_days"].to_numpy(np.int64) - 1
    # Sums of 4-decimal amounts in float64 differ per engine and run in the last bits: rounded
    # to the store's precision, every engine and every run gives the same figures.
    repeat = pd.to_numeric(raw["repeat_spend"]).fillna(0).to_numpy(float).round(4)
    out = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype(str),
            "frequency": x,
            "recency": (last - first) / per,
            "T": (cal_day - first) / per,
            "monetary_value": np.where(x > 0, repeat / np.maximum(x, 1), 0.0),
            "total_spend": pd.to_numeric(raw["total_spend"]).fillna(0).to_numpy(float).round(4),
            "first_purchase": pd.to_datetime(first, unit="D").date,
            "last_purchase": pd.to_datetime(last, unit="D").date,
        }
    )
    if holdout_end is not None:
        out["holdout_frequency"] = raw["holdout_days"].to_numpy(np.int64)
    if with_segment:
        out["segment"] = raw["segment"].astype(object).where(raw["segment"].notna(), None)
    return Summary(out, calibration_end, unit, holdout_end)
