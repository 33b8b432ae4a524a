"""Compute a KPI: run its Ibis expression on a source, then attach value, interval and warning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import ibis
import ibis.expr.types as ir
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
    return compute_queries(source, [kpi], query, change=change)[kpi.id]


def compute_queries(
    source: Source, kpis: Sequence[Kpi], query: Query, *, change: bool = False
) -> dict[str, pd.DataFrame]:
    """:func:`compute_query` for several KPIs at once, by id, in as few round trips as possible.

    The statistics of all the KPIs but the quantiles come from one query: their expressions,
    built on one context per fact (so what they share, such as the customer states, is one
    expression the engine computes once), are stacked with UNION ALL and split again here. With
    ``change`` the previous period comes in the same query, unless ``start`` cuts a period (then
    that period's predecessor is computed on its own). Each result is the one
    :func:`compute_query` gives for the KPI alone."""
    if change and query.grain is Grain.ALL:  # the previous period is the range of the same length
        out = {}
        for kpi in kpis:
            result = _statistics(source, [kpi], query)[kpi.id]
            before = _previous_range(source, kpi, query, result)
            out[kpi.id] = _public(_attach_change(kpi, result, before), query, True)
        return out
    if not change:
        return {k: _public(r, query, False) for k, r in _statistics(source, kpis, query).items()}
    return _with_change(source, kpis, query)


def _statistics(source: Source, kpis: Sequence[Kpi], query: Query) -> dict[str, pd.DataFrame]:
    contexts: dict[str, Context] = {}
    built: dict[str, tuple[Context, ir.Table]] = {}
    for kpi in kpis:
        if kpi.fact not in contexts:
            contexts[kpi.fact] = Context(source, query, FACTS[kpi.fact])
        ctx = contexts[kpi.fact]
        built[kpi.id] = (ctx, kpi.build(ctx))
    stacked = [k for k in kpis if k.kind is not Kind.QUANTILE]
    frames = _fetch_stacked([(k.id, *built[k.id]) for k in stacked]) if len(stacked) > 1 else {}
    out = {}
    for kpi in kpis:
        ctx, expr = built[kpi.id]
        frame = frames[kpi.id] if kpi.id in frames else to_pandas(expr)
        out[kpi.id] = _finish(kpi, ctx, query, frame)
    return out


def _fetch_stacked(exprs: list[tuple[str, Context, ir.Table]]) -> dict[str, pd.DataFrame]:
    """Run several KPI expressions (same keys, different statistic columns) as one UNION ALL and
    give each its own rows and columns back. Statistics travel as float64, as :func:`_finish`
    makes them anyway; each KPI's key columns take the first KPI's types."""
    _, ctx, first = exprs[0]
    keys = ctx.keys
    key_types = {k: first.schema()[k] for k in keys}
    stats: list[str] = []
    for _, ctx, expr in exprs:
        stats += [c for c in expr.columns if c not in ctx.keys and c not in stats]
    parts = []
    for tag, (_, _ctx, expr) in enumerate(exprs):
        columns = {k: expr[k].cast(key_types[k]) for k in keys}
        for c in stats:
            columns[c] = expr[c].cast("float64") if c in expr.columns else ibis.null("float64")
        parts.append(expr.select(_kpi=ibis.literal(tag, type="int32"), **columns))
    frame = to_pandas(ibis.union(*parts))
    out = {}
    for tag, (kpi_id, ctx, expr) in enumerate(exprs):
        own = [c for c in expr.columns if c not in ctx.keys]
        out[kpi_id] = frame.loc[frame["_kpi"] == tag, [*keys, *own]].reset_index(drop=True)
    return out


def _finish(kpi: Kpi, ctx: Context, query: Query, frame: pd.DataFrame) -> pd.DataFrame:
    estimate = Estimate(kpi.kind, query.options.confidence, kpi.per, kpi.q, query.options.min_n)
    for column in frame.columns:
        if column not in ctx.keys and kpi.kind is not Kind.QUANTILE:
            frame[column] = pd.to_numeric(frame[column]).fillna(0).astype(float)
    frame["period"] = pd.to_datetime(frame["period"])
    result = finish(frame, estimate, ctx.keys)
    return result.sort_values(ctx.keys, na_position="last", kind="stable").reset_index(drop=True)


def _with_change(source: Source, kpis: Sequence[Kpi], query: Query) -> dict[str, pd.DataFrame]:
    """Pair each period with the one before it. The period before the first is computed in the
    same query when ``start`` is a period's first moment; when ``start`` cuts a period it is
    computed on its own, so the range's periods keep their values (a first period cut by
    ``start`` stays cut)."""
    first = period_start(query.start, query.grain) if query.start is not None else None
    if first is None:
        results = pools = _statistics(source, kpis, query)
    elif first == query.start:
        pools = _statistics(source, kpis, _replace(query, start=shift(first, query.grain, -1)))
        results = {k: r[r["period"] >= first].reset_index(drop=True) for k, r in pools.items()}
    else:
        results = _statistics(source, kpis, query)
        priors = _statistics(source, kpis, _replace(query, start=shift(first, query.grain, -1), end=first))
        pools = {k: _stack(priors[k], r) for k, r in results.items()}
    return {kpi.id: _pair(kpi, query, results[kpi.id], pools[kpi.id]) for kpi in kpis}


def _stack(prior: pd.DataFrame, result: pd.DataFrame) -> pd.DataFrame:
    if len(prior) and len(result):
        return pd.concat([prior, result], ignore_index=True)
    return prior if len(prior) else result


def _pair(kpi: Kpi, query: Query, result: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame:
    if result.empty:  # nothing to pair: the empty table, with the change columns
        empty = result.assign(**{c: pd.Series(dtype=float) for c in ("previous", "change", "p_value")})
        return _public(empty.assign(significant=pd.Series(dtype=object)), query, True)
    keys = list(query.by)
    previous = [shift(p, query.grain, -1) for p in result["period"].dt.to_pydatetime()]
    stats = ["value", "_a", "_b", "_c"]
    if not keys:  # one row per period: a look-up by period (what the merge below does, faster)
        then = pool.set_index("period")[stats].reindex(pd.DatetimeIndex(previous)).reset_index(drop=True)
        return _public(_attach_change(kpi, result.copy(), then), query, True)
    before = pool.rename(columns={"period": "_prev_period"})
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
    before = _statistics(source, [kpi], earlier)[kpi.id]
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
