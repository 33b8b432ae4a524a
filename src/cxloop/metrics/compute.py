"""Compute a KPI: run its Ibis expression on a source, then attach value, interval and warning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from cxloop.metrics.change import ALPHA, p_values
from cxloop.metrics.grains import Grain, parse_grain, period_start, shift
from cxloop.metrics.kpi import Kpi
from cxloop.metrics.query import COHORT, FACTS, Context, Options, Query
from cxloop.metrics.source import Source, to_pandas
from cxloop.metrics.stats import Estimate, Kind, finish

#: The columns of every result, after period and the breakdown.
RESULT_COLUMNS = ["value", "n", "ci_low", "ci_high", "warning"]
CHANGE_COLUMNS = ["previous", "change", "p_value", "significant"]


def now_utc() -> datetime:
    """The default ``as_of``: now, as the naive UTC timestamp the store keeps."""
    return datetime.now(UTC).replace(tzinfo=None)


def make_query(
    *,
    grain: str | Grain = Grain.MONTH,
    by: Iterable[str] = (),
    where: Mapping[str, str | Iterable[str]] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    options: Options | None = None,
) -> Query:
    where_sets = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in (where or {}).items()}
    return Query(
        grain=parse_grain(grain),
        by=tuple(dict.fromkeys(by)),
        where=where_sets,
        start=start,
        end=end,
        as_of=as_of or now_utc(),
        options=options or Options(),
    )


def compute_query(source: Source, kpi: Kpi, query: Query, *, change: bool = False) -> pd.DataFrame:
    """The tidy result of ``kpi`` for ``query``: period, the breakdown, value, n, ci_low, ci_high,
    warning — and with ``change`` also previous, change, p_value and significant."""
    if change and query.grain is not Grain.ALL:
        return _with_change(source, kpi, query)
    result = _statistics(source, kpi, query)
    if change:  # Grain.ALL: the previous period is the range of the same length before it
        before = _previous_range(source, kpi, query, result)
        result = _attach_change(kpi, result, before)
    return _public(result, query, change)


def _statistics(source: Source, kpi: Kpi, query: Query) -> pd.DataFrame:
    ctx = Context(source, query, FACTS[kpi.fact])
    expr = kpi.build(ctx)
    frame = to_pandas(expr)
    estimate = Estimate(kpi.kind, query.options.confidence, kpi.per, kpi.q, query.options.min_n)
    for column in frame.columns:
        if column not in ctx.keys and kpi.kind is not Kind.QUANTILE:
            frame[column] = pd.to_numeric(frame[column]).fillna(0).astype(float)
    frame["period"] = pd.to_datetime(frame["period"])
    result = finish(frame, estimate, ctx.keys)
    return result.sort_values(ctx.keys, na_position="last", kind="stable").reset_index(drop=True)


def _with_change(source: Source, kpi: Kpi, query: Query) -> pd.DataFrame:
    """Pair each period with the one before it. The period before the first is computed on its
    own, so the range's periods keep their values (a first period cut by ``start`` stays cut)."""
    result = _statistics(source, kpi, query)
    if result.empty:  # nothing to pair: the empty table, with the change columns
        empty = result.assign(**{c: pd.Series(dtype=float) for c in ("previous", "change", "p_value")})
        return _public(empty.assign(significant=pd.Series(dtype=object)), query, True)
    pool = result
    if query.start is not None:
        first = period_start(query.start, query.grain)
        prior = _statistics(source, kpi, _replace(query, start=shift(first, query.grain, -1), end=first))
        if len(prior):
            pool = pd.concat([prior, result], ignore_index=True) if len(result) else prior
    keys = list(query.by)
    before = pool.rename(columns={"period": "_prev_period"})
    previous = [shift(p, query.grain, -1) for p in result["period"].dt.to_pydatetime()]
    result = result.assign(_prev_period=previous)
    paired = result.merge(before, on=["_prev_period", *keys], how="left", suffixes=("", "_before"))
    now = paired[[c for c in result.columns if c != "_prev_period"]]
    then = paired[[f"{c}_before" for c in ("value", "_a", "_b", "_c")]]
    then.columns = ["value", "_a", "_b", "_c"]
    out = _attach_change(kpi, now.copy(), then)
    return _public(out.reset_index(drop=True), query, True)


def _previous_range(source: Source, kpi: Kpi, query: Query, result: pd.DataFrame) -> pd.DataFrame:
    ctx = Context(source, query, FACTS[kpi.fact])
    start, end = ctx.range_start, query.until
    earlier = _replace(query, start=start - (end - start), end=start)
    before = _statistics(source, kpi, earlier)
    keys = list(query.by)
    if not keys:
        before = before.reindex(range(len(result)))
        return before
    return result[keys].merge(before, on=keys, how="left")


def _attach_change(kpi: Kpi, now: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    now = now.reset_index(drop=True)
    before = before.reset_index(drop=True)
    now["previous"] = before["value"].to_numpy(float)
    now["change"] = now["value"].to_numpy(float) - now["previous"].to_numpy(float)
    p = p_values(kpi.kind, now, before) if len(now) else np.array([])
    now["significant"] = [None if np.isnan(v) else bool(v < ALPHA) for v in p]
    # Quantiles are judged by disjoint intervals: there is no p-value to show.
    now["p_value"] = np.full(len(now), np.nan) if kpi.kind is Kind.QUANTILE else p
    return now


def _public(result: pd.DataFrame, query: Query, change: bool) -> pd.DataFrame:
    columns = ["period", *query.by, *RESULT_COLUMNS, *(CHANGE_COLUMNS if change else [])]
    out = result[columns].copy()
    out["period"] = pd.to_datetime(out["period"]).dt.date
    if COHORT in query.by:
        out[COHORT] = pd.to_datetime(out[COHORT]).dt.strftime("%Y-%m")
    out["warning"] = out["warning"].astype(object).where(out["warning"].notna(), None)
    return out.reset_index(drop=True)


def _replace(query: Query, **changes: object) -> Query:
    from dataclasses import replace

    return replace(query, **changes)  # type: ignore[arg-type]
