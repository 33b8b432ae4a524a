"""The customer value API (``/api/v1/value``): model fits, CLV per segment and per customer, and
the customers at risk — the rows of ``cxloop value fit|clv|at-risk --json``.

A thin shell over :mod:`cxloop.value.report`. Fitting a million customers takes seconds, so the
fits and customer values live in the app's metrics cache (:mod:`cxloop.metrics.cache`), keyed by
the parameters and the store's data fingerprint: the store is summarised and fitted once per
import and parameter set, not once per request. Fits and segment totals need
``dashboards.read``; customer-level rows need ``data.read``. A model that cannot be fitted is a
422 problem with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cxloop.errors import ConfigError
from cxloop.metrics.cache import MetricsCache
from cxloop.metrics.frames import records
from cxloop.metrics.source import store_source
from cxloop.store.store import Store
from cxloop.value.at_risk import AtRiskOptions, at_risk
from cxloop.value.clv import ClvOptions, clv_by_segment
from cxloop.value.fitting import FitError
from cxloop.value.report import (
    Fitted,
    ValueQuery,
    fitted,
    last_complete_day,
    value_frame,
)
from cxloop.web.api_metrics import as_of_or_now
from cxloop.web.auth import require
from cxloop.web.deps import ClockDep, StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.roles import Capability

router = APIRouter(prefix="/api/v1/value", tags=["value"])

AGGREGATES = [Depends(require(Capability.DASHBOARDS_READ))]
ROWS = [Depends(require(Capability.DATA_READ))]


def value_cache(request: Request) -> MetricsCache:
    """The app's metrics cache, which also keeps value fits (bounded by their customers)."""
    cache: MetricsCache = request.app.state.metrics_cache
    return cache


CacheDep = Annotated[MetricsCache, Depends(value_cache)]

# -- parameters --------------------------------------------------------------------------------

AsOf = Annotated[
    dt.datetime | None,
    Query(
        description="The models see the days before this moment, UTC (default: now)", examples=["2026-01-01"]
    ),
]
CalibrationEnd = Annotated[
    dt.date | None, Query(description="Last day of data the models see (instead of as_of)")
]
Unit = Annotated[Literal["days", "weeks"], Query(description="Time unit of the model parameters")]
Model = Annotated[Literal["bgnbd", "paretonbd"], Query(description="Purchase model")]
Months = Annotated[int, Query(ge=1, le=120, description="CLV horizon in months")]
Discount = Annotated[float, Query(ge=0, lt=1, description="Discount rate per month")]
Margin = Annotated[float, Query(gt=0, le=1, description="Share of spend that is profit (1: revenue)")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip")]


def value_query(
    clock: Callable[[], dt.datetime],
    as_of: dt.datetime | None,
    calibration_end: dt.date | None,
    unit: str,
    model: str,
) -> ValueQuery:
    end = calibration_end or last_complete_day(as_of_or_now(as_of, clock))
    return ValueQuery(calibration_end=end, unit=unit, model=model)


@contextmanager
def refusals() -> Iterator[None]:
    """The value layer's refusals (no data, no convergence, bad options) as 422 problems."""
    try:
        yield
    except (FitError, ConfigError) as exc:
        raise Problem(422, detail=str(exc)) from None


def cached_fit(store: Store, cache: MetricsCache, query: ValueQuery) -> Fitted:
    def compute() -> Fitted:
        with store_source(store) as source:
            return fitted(source, query)

    result: Fitted = cache.get(("value.fitted", query), compute)
    return result


def cached_values(store: Store, cache: MetricsCache, query: ValueQuery, options: ClvOptions) -> pd.DataFrame:
    key = ("value.values", query, options)
    frame: pd.DataFrame = cache.get(key, lambda: value_frame(cached_fit(store, cache, query), options))
    return frame


# -- models (for the schema and its examples) ----------------------------------------------------


class FitRow(BaseModel):
    """One parameter of one fitted model (``cxloop value fit --json``)."""

    model: str = Field(examples=["bgnbd"])
    parameter: str = Field(examples=["r"])
    value: float = Field(examples=[0.2426])
    se: float | None = Field(description="standard error, from the Hessian", examples=[0.0126])
    log_likelihood: float = Field(examples=[-9582.43])
    customers: int = Field(examples=[2357])
    iterations: int = Field(examples=[21])
    converged: bool = Field(examples=[True])
    unit: str = Field(examples=["weeks"])


class SegmentValue(BaseModel):
    """CLV of one customer segment (``cxloop value clv --by segment --json``)."""

    segment: str = Field(examples=["enterprise"])
    customers: int = Field(examples=[14])
    clv_total: float = Field(examples=[27732.15])
    clv_mean: float = Field(examples=[1980.87])
    p_alive_mean: float = Field(examples=[0.65])
    expected_purchases_mean: float = Field(examples=[1.73])


class CustomerValue(BaseModel):
    """One customer's history and predictions (``cxloop value clv --json``)."""

    customer_id: str = Field(examples=["C000042"])
    segment: str | None = Field(examples=["smb"])
    frequency: int = Field(description="repeat purchase days", examples=[6])
    recency: float = Field(description="first to last purchase, in the unit", examples=[30.4])
    T: float = Field(description="age at the calibration end, in the unit", examples=[38.9])
    monetary_value: float = Field(description="mean repeat spend", examples=[41.2])
    total_spend: float = Field(examples=[288.4])
    last_purchase: dt.date = Field(examples=["2025-08-02"])
    p_alive: float = Field(examples=[0.83])
    expected_purchases: float = Field(description="over the CLV horizon", examples=[3.1])
    expected_spend: float = Field(description="per purchase, Gamma-Gamma", examples=[40.7])
    clv: float = Field(examples=[118.2])


class CustomerValues(BaseModel):
    items: list[CustomerValue]
    total: int = Field(description="customers, on every page", examples=[2357])
    limit: int = Field(examples=[100])
    offset: int = Field(examples=[0])


class AtRiskCustomer(BaseModel):
    """A valuable customer probably slipping away, and why (``cxloop value at-risk --json``)."""

    customer_id: str = Field(examples=["C000071"])
    segment: str | None = Field(examples=["enterprise"])
    total_spend: float = Field(examples=[1240.0])
    purchases: int = Field(examples=[9])
    last_purchase: dt.date = Field(examples=["2025-05-20"])
    days_since_last: int = Field(examples=[212])
    usual_gap_days: float | None = Field(examples=[30.1])
    p_alive: float = Field(examples=[0.18])
    clv: float = Field(examples=[64.3])
    reason: str = Field(
        examples=["spent $1,240.00 in 9 purchases; last bought 212 days ago, usually every 30; P(alive) 0.18"]
    )


class AtRiskCustomers(BaseModel):
    items: list[AtRiskCustomer]
    total: int = Field(examples=[32])
    limit: int = Field(examples=[100])
    offset: int = Field(examples=[0])


# -- routes ------------------------------------------------------------------------------------


@router.get("/fit", dependencies=AGGREGATES, responses=problem_responses(401, 403, 422))
def fit(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    as_of: AsOf = None,
    calibration_end: CalibrationEnd = None,
    unit: Unit = "weeks",
    model: Model = "bgnbd",
) -> list[FitRow]:
    """The purchase model and Gamma-Gamma: parameters, standard errors, log-likelihood."""
    query = value_query(clock, as_of, calibration_end, unit, model)
    with refusals():
        result = cached_fit(store, cache, query)
    return [FitRow(**row) for row in result.models.rows()]


@router.get("/segments", dependencies=AGGREGATES, responses=problem_responses(401, 403, 422))
def segments(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    as_of: AsOf = None,
    calibration_end: CalibrationEnd = None,
    unit: Unit = "weeks",
    model: Model = "bgnbd",
    months: Months = 12,
    discount_rate: Discount = 0.01,
    margin: Margin = 1.0,
) -> list[SegmentValue]:
    """CLV per customer segment, largest total first."""
    query = value_query(clock, as_of, calibration_end, unit, model)
    with refusals():
        values = cached_values(store, cache, query, ClvOptions(months, discount_rate, margin))
        return [SegmentValue(**row) for row in records(clv_by_segment(values))]


@router.get("/customers", dependencies=ROWS, responses=problem_responses(401, 403, 422))
def customers(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    as_of: AsOf = None,
    calibration_end: CalibrationEnd = None,
    unit: Unit = "weeks",
    model: Model = "bgnbd",
    months: Months = 12,
    discount_rate: Discount = 0.01,
    margin: Margin = 1.0,
    segment: Annotated[str | None, Query(description="Only this segment")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> CustomerValues:
    """Each customer's P(alive), expected purchases and spend, and CLV, most valuable first."""
    query = value_query(clock, as_of, calibration_end, unit, model)
    with refusals():
        values = cached_values(store, cache, query, ClvOptions(months, discount_rate, margin))
    if segment is not None:
        values = values[values["segment"] == segment]
    page = values.iloc[offset : offset + limit]
    return CustomerValues(
        items=[CustomerValue(**row) for row in records(page)], total=len(values), limit=limit, offset=offset
    )


@router.get("/at-risk", dependencies=ROWS, responses=problem_responses(401, 403, 422))
def customers_at_risk(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    as_of: AsOf = None,
    calibration_end: CalibrationEnd = None,
    unit: Unit = "weeks",
    model: Model = "bgnbd",
    max_p_alive: Annotated[float, Query(gt=0, le=1, description="P(alive) below this")] = 0.5,
    top_share: Annotated[float, Query(gt=0, le=1, description="Past spend in this top share")] = 0.2,
    min_spend: Annotated[float | None, Query(description="Past spend at least this (instead)")] = None,
    min_purchases: Annotated[int, Query(ge=1, description="Bought on at least this many days")] = 2,
    currency: Annotated[str, Query(max_length=8, description="Written before amounts in the reason")] = "",
    limit: Limit = 100,
    offset: Offset = 0,
) -> AtRiskCustomers:
    """Valuable customers who are probably slipping away, largest past value first, with reasons."""
    query = value_query(clock, as_of, calibration_end, unit, model)
    options = AtRiskOptions(max_p_alive, top_share, min_spend, min_purchases, currency)
    with refusals():
        result = cached_fit(store, cache, query)
        values = cached_values(store, cache, query, ClvOptions())
        rows = at_risk(values, days_per_unit=result.summary.days_per_unit, options=options)
    page = rows.iloc[offset : offset + limit]
    return AtRiskCustomers(
        items=[AtRiskCustomer(**row) for row in records(page)], total=len(rows), limit=limit, offset=offset
    )


class Survival(BaseModel):
    """Subscription survival per segment (``cxloop value survival --json``, with ``--summary``)."""

    summary: list[dict[str, Any]] = Field(
        description="Per segment: customers, churned, censored, median lifetime (Kaplan-Meier) and "
        "the sBG fit (alpha, beta, their SEs, or the single churn rate of the geometric limit)",
        examples=[[{"segment": "Month-to-month", "customers": 3875, "median": 35, "alpha": 0.423}]],
    )
    curves: list[dict[str, Any]] = Field(
        description="Per segment and period: Kaplan-Meier survival with its interval, and the sBG "
        "survival and retention rate (phase fit, then forecast)",
        examples=[[{"segment": "Month-to-month", "period": 1, "phase": "fit", "survival": 0.93}]],
    )


@router.get("/survival", dependencies=AGGREGATES, responses=problem_responses(401, 403, 422))
def survival(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    as_of: Annotated[
        dt.datetime | None, Query(description="Subscriptions as of this moment, UTC (default: today's start)")
    ] = None,
    by: Annotated[
        str | None, Query(description="A dimension of the subscriptions: plan, or a customer field")
    ] = None,
    unit: Annotated[Literal["day", "week", "month", "year"], Query(description="Period length")] = "month",
    periods: Annotated[int | None, Query(ge=1, le=1200, description="Fit on the first N periods")] = None,
    forecast: Annotated[int, Query(ge=0, le=1200, description="Project this many periods beyond")] = 0,
) -> Survival:
    """Kaplan-Meier retention curves of subscriptions by segment, and a shifted-beta-geometric
    model per segment with its forecast."""
    from cxloop.value.kaplan_meier import SurvivalError
    from cxloop.value.survival import survival_report

    # As of the start of today unless asked: one answer per day, kept until an import.
    moment = (
        as_of_or_now(as_of, clock) if as_of is not None else dt.datetime.combine(clock().date(), dt.time())
    )

    def compute() -> Survival:
        with store_source(store) as source:
            report = survival_report(
                source, as_of=moment, by=by, unit=unit, periods=periods, forecast=forecast
            )
        return Survival(summary=records(report.summary_frame()), curves=records(report.curve_frame()))

    with refusals():
        try:
            result: Survival = cache.get(("value.survival", moment, by, unit, periods, forecast), compute)
        except SurvivalError as exc:
            raise Problem(422, detail=str(exc)) from None
    return result
