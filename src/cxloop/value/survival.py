"""Subscription survival from the store: Kaplan-Meier curves per segment and the sBG forecast.

Durations are computed in the database (Ibis, the same expression on DuckDB and PostgreSQL) and
come back aggregated, one row per segment, duration and outcome; the estimators run in NumPy
(:mod:`cxloop.value.kaplan_meier`, :mod:`cxloop.value.sbg`).

**Durations in whole periods** (day, week, month or year), as of ``as_of``:

* a subscription that ended on or before ``as_of`` churned after the number of periods it *began*
  (cancelled during its 3rd month: 3; at least 1) — the period at whose end it was lost, as in
  the sBG model;
* one still running at ``as_of`` (no end, or an end after ``as_of``) is censored at the number of
  *whole* periods it has completed: it is known to have renewed that many times;
* subscriptions starting after ``as_of`` are left out.

A month is a calendar month: from the 5th 10:00 to the next month's 5th 10:00 (month ends clip,
31 January to 28 February is not a whole month).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np

from cxloop.errors import ConfigError
from cxloop.value.kaplan_meier import KaplanMeier, SurvivalError, kaplan_meier
from cxloop.value.sbg import SbgFit, SbgFitError, fit_sbg

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd

    from cxloop.metrics.source import Source

__all__ = [
    "DIMENSIONS",
    "UNITS",
    "Segment",
    "SurvivalReport",
    "duration_counts",
    "survival_report",
]

UNITS = ("day", "week", "month", "year")

#: Dimensions a survival curve can be split by, and the table each comes from.
DIMENSIONS: dict[str, str] = {
    "plan": "subscriptions",
    "source": "subscriptions",
    "segment": "customers",
    "region": "customers",
    "country": "customers",
    "acquisition_channel": "customers",
}

NONE_LABEL = "(none)"
ALL_LABEL = "all"
FEW = 30  # fewer subscriptions than this in a segment: a note says the curve is rough


@dataclass(frozen=True)
class Segment:
    """One segment's curve, its sBG fit (None with the reason in ``note`` when it cannot be
    fitted) and the data sizes."""

    name: str
    curve: KaplanMeier
    last_observed: int
    fit: SbgFit | None
    note: str


@dataclass(frozen=True)
class SurvivalReport:
    """Kaplan-Meier curves and sBG fits per segment, on the grid 0 … periods + forecast."""

    by: str | None
    unit: str
    as_of: dt.datetime
    periods: int
    forecast: int
    segments: tuple[Segment, ...]

    def curve_frame(self) -> pd.DataFrame:
        """One row per segment and period: the Kaplan-Meier estimate with its interval (empty
        after the longest observed duration) and the sBG survival and retention rate (``phase``
        is ``fit`` up to ``periods``, ``forecast`` after)."""
        import pandas as pd

        rows: list[dict[str, Any]] = []
        for seg in self.segments:
            c = seg.curve
            for t in range(self.periods + self.forecast + 1):
                seen = t <= seg.last_observed
                rows.append(
                    {
                        "segment": seg.name,
                        "period": t,
                        "phase": "fit" if t <= self.periods else "forecast",
                        "at_risk": int(c.at_risk[t]) if seen else None,
                        "churned": int(c.churned[t]) if seen else None,
                        "censored": int(c.censored[t]) if seen else None,
                        "survival": float(c.survival[t]) if seen else None,
                        "ci_low": float(c.ci_low[t]) if seen else None,
                        "ci_high": float(c.ci_high[t]) if seen else None,
                        "sbg_survival": float(seg.fit.survival(t)) if seg.fit else None,
                        "sbg_retention": float(seg.fit.retention(t)) if seg.fit and t >= 1 else None,
                    }
                )
        return pd.DataFrame(rows, dtype=object)

    def summary_frame(self) -> pd.DataFrame:
        """One row per segment: sizes, the Kaplan-Meier median lifetime (empty: not reached),
        the sBG parameters with standard errors, and a note."""
        import pandas as pd

        rows = []
        for seg in self.segments:
            c, fit = seg.curve, seg.fit
            low, high = c.median_ci
            rows.append(
                {
                    "segment": seg.name,
                    "subscriptions": c.subscriptions,
                    "churned": c.total_churned,
                    "running": c.subscriptions - c.total_churned,
                    "median_periods": c.median,
                    "median_ci_low": low,
                    "median_ci_high": high,
                    "sbg_alpha": fit.alpha if fit else None,
                    "sbg_alpha_se": fit.alpha_se if fit else None,
                    "sbg_beta": fit.beta if fit else None,
                    "sbg_beta_se": fit.beta_se if fit else None,
                    "sbg_churn_rate": fit.theta if fit else None,
                    "note": seg.note,
                }
            )
        return pd.DataFrame(rows, dtype=object)


def duration_counts(
    source: Source, *, as_of: dt.datetime, unit: str = "month", by: str | None = None
) -> pd.DataFrame:
    """Subscriptions per segment, duration (whole ``unit`` periods) and outcome, computed in the
    database: columns ``segment, duration, churned, subscriptions``."""
    from cxloop.metrics.source import to_pandas

    expr = _duration_expr(source, as_of=as_of, unit=unit, by=by)
    frame = to_pandas(expr)
    frame["duration"] = frame["duration"].astype("int64")
    frame["churned"] = frame["churned"].astype(bool)
    frame["subscriptions"] = frame["subscriptions"].astype("int64")
    return frame.sort_values(["segment", "duration", "churned"], ignore_index=True)


def _duration_expr(source: Source, *, as_of: dt.datetime, unit: str, by: str | None) -> ir.Table:
    if unit not in UNITS:
        raise ConfigError(f"unknown unit {unit!r}; choose one of: {', '.join(UNITS)}")
    if by is not None and by not in DIMENSIONS:
        raise ConfigError(f"unknown dimension {by!r}; choose one of: {', '.join(DIMENSIONS)}")
    subs = source.table("subscriptions")
    moment = ibis.literal(as_of.replace(tzinfo=None), type="timestamp")
    subs = subs.filter(subs.started_at <= moment)
    ended = subs.ended_at.notnull() & (subs.ended_at <= moment)
    end = ended.ifelse(subs.ended_at, moment)
    full, partial = _PERIODS[unit](subs.started_at, end)
    duration = ended.ifelse(ibis.greatest(full + partial.ifelse(1, 0), 1), full)
    if by is None:
        label: ir.StringValue = ibis.literal(ALL_LABEL)
        table = subs
    elif DIMENSIONS[by] == "subscriptions":
        label = subs[by].cast("string").fill_null(NONE_LABEL)
        table = subs
    else:
        customers = source.table("customers").select("customer_id", by)
        table = subs.left_join(customers, subs.customer_id == customers.customer_id)
        label = table[by].cast("string").fill_null(NONE_LABEL)
    out = table.mutate(segment=label, duration=duration.cast("int64"), churned=ended)
    return out.group_by(["segment", "duration", "churned"]).aggregate(subscriptions=out.count())


def _seconds_of_month(ts: ir.TimestampValue) -> ir.IntegerValue:
    return ts.day() * 86400 + ts.hour() * 3600 + ts.minute() * 60 + ts.second()


def _months(start: ir.TimestampValue, end: ir.TimestampValue) -> tuple[ir.IntegerValue, ir.BooleanValue]:
    months = (end.year() - start.year()) * 12 + (end.month() - start.month())
    short = _seconds_of_month(end) < _seconds_of_month(start)
    full = months - short.ifelse(1, 0)
    return full, _seconds_of_month(end) != _seconds_of_month(start)


def _years(start: ir.TimestampValue, end: ir.TimestampValue) -> tuple[ir.IntegerValue, ir.BooleanValue]:
    months, partial = _months(start, end)
    return (months / 12).floor().cast("int64"), partial | (months % 12 != 0)


_Periods = Callable[["ir.TimestampValue", "ir.TimestampValue"], tuple["ir.IntegerValue", "ir.BooleanValue"]]


def _fixed(seconds: int) -> _Periods:
    def periods(start: ir.TimestampValue, end: ir.TimestampValue) -> tuple[ir.IntegerValue, ir.BooleanValue]:
        elapsed = end.epoch_seconds() - start.epoch_seconds()
        return (elapsed / seconds).floor().cast("int64"), elapsed % seconds != 0

    return periods


_PERIODS: dict[str, _Periods] = {
    "day": _fixed(86400),
    "week": _fixed(7 * 86400),
    "month": _months,
    "year": _years,
}


def survival_report(
    source: Source,
    *,
    as_of: dt.datetime,
    by: str | None = None,
    unit: str = "month",
    periods: int | None = None,
    forecast: int = 0,
    confidence: float = 0.95,
) -> SurvivalReport:
    """Kaplan-Meier curves per segment (every duration) and an sBG model per segment fitted on
    the first ``periods`` periods (default: all observed; longer durations are censored there),
    projected ``forecast`` periods beyond. Raises :class:`SurvivalError` when there are no
    subscriptions as of ``as_of``."""
    if periods is not None and periods < 1:
        raise ConfigError("periods must be at least 1")
    if forecast < 0:
        raise ConfigError("forecast must not be negative")
    counts = duration_counts(source, as_of=as_of, unit=unit, by=by)
    if counts.empty:
        raise SurvivalError(f"no subscriptions started on or before {as_of:%Y-%m-%d %H:%M}")
    horizon = int(counts["duration"].max()) if periods is None else periods
    segments = []
    for name, part in counts.groupby("segment", sort=True):
        segments.append(_segment(str(name), part, horizon, forecast, confidence))
    return SurvivalReport(by, unit, as_of, horizon, forecast, tuple(segments))


def _segment(name: str, part: pd.DataFrame, horizon: int, forecast: int, confidence: float) -> Segment:
    d = part["duration"].to_numpy(dtype=np.int64)
    e = part["churned"].to_numpy(dtype=bool)
    w = part["subscriptions"].to_numpy(dtype=np.int64)
    curve = kaplan_meier(d, e, w, horizon=max(horizon + forecast, int(d.max())), confidence=confidence)
    # The sBG calibration window: what was known after `horizon` periods.
    later = d > horizon
    notes = []
    try:
        fit: SbgFit | None = fit_sbg(np.where(later, horizon, d), e & ~later, w)
    except SbgFitError as exc:
        fit = None
        notes.append(f"no sBG fit: {exc}")
    if fit is not None and fit.geometric:
        notes.append("no spread of churn rates: sBG at its geometric limit (one churn rate)")
    if int(w.sum()) < FEW:
        notes.append(f"few subscriptions ({int(w.sum())}): a rough curve")
    if curve.median is None:
        notes.append("median not reached")
    return Segment(name, curve, int(d.max()), fit, "; ".join(notes))
