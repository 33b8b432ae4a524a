"""Time grains: how timestamps fall into periods, and the list of periods in a range.

Periods are half-open, [start, end), in UTC (the store keeps naive UTC timestamps). Weeks start on
Monday, as ISO weeks and every supported engine's ``date_trunc('week')`` do.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import ibis.expr.types as ir

from cxloop.errors import ConfigError


class Grain(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    ALL = "all"  # the whole requested range as one period


_IBIS_UNIT = {Grain.DAY: "D", Grain.WEEK: "W", Grain.MONTH: "M", Grain.QUARTER: "Q", Grain.YEAR: "Y"}
_PANDAS_FREQ = {Grain.DAY: "D", Grain.WEEK: "W-MON", Grain.MONTH: "MS", Grain.QUARTER: "QS", Grain.YEAR: "YS"}


def parse_grain(value: str | Grain) -> Grain:
    try:
        return Grain(str(value).lower())
    except ValueError:
        choices = ", ".join(g.value for g in Grain)
        raise ConfigError(f"unknown grain {value!r}; choose one of {choices}") from None


def truncate(ts: ir.TimestampValue, grain: Grain) -> ir.TimestampValue:
    """The start of the period ``ts`` falls in (not for ``Grain.ALL``, which has one period)."""
    return ts.truncate(_IBIS_UNIT[grain])


def period_start(moment: datetime, grain: Grain) -> datetime:
    """The start of the period holding ``moment``, computed in Python the same way as in SQL."""
    stamp = datetime(moment.year, moment.month, moment.day)
    if grain is Grain.DAY:
        return stamp
    if grain is Grain.WEEK:
        return stamp - timedelta(days=stamp.weekday())
    if grain is Grain.MONTH:
        return datetime(stamp.year, stamp.month, 1)
    if grain is Grain.QUARTER:
        return datetime(stamp.year, 3 * ((stamp.month - 1) // 3) + 1, 1)
    if grain is Grain.YEAR:
        return datetime(stamp.year, 1, 1)
    raise ConfigError("the 'all' grain has no period boundaries")


def shift(start: datetime, grain: Grain, periods: int) -> datetime:
    """``start`` moved by whole periods (negative: back in time)."""
    if grain is Grain.DAY:
        return start + timedelta(days=periods)
    if grain is Grain.WEEK:
        return start + timedelta(weeks=periods)
    months = start.month - 1 + {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[grain] * periods
    return start.replace(year=start.year + months // 12, month=months % 12 + 1)


def periods(start: datetime, end: datetime, grain: Grain) -> list[tuple[datetime, datetime, datetime]]:
    """(label, lo, hi) for each period of ``grain`` overlapping [start, end): the label is the
    period's start (as ``truncate`` gives it); [lo, hi) is the period clipped to the range."""
    if grain is Grain.ALL:
        return [(start, start, end)]
    bounds = []
    current = period_start(start, grain)
    while current < end:
        following = shift(current, grain, 1)
        bounds.append((current, max(current, start), min(following, end)))
        current = following
    return bounds
