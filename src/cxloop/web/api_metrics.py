"""The metrics API (``/api/v1``): KPIs, their values, the summary, cohorts and RFM.

Every route is a thin shell over :mod:`cxloop.metrics`: it parses the query parameters the CLI
takes, computes on the store's own connection (``store_source`` per request, in the worker thread
FastAPI runs sync routes in) and returns :func:`cxloop.metrics.frames.records` — the same rows as
the CLI's ``--json``. Results come from the app's :class:`~cxloop.metrics.cache.MetricsCache`
(kept until an import changes the data; computed once for concurrent identical requests).
Aggregates need ``dashboards.read``; customer-level rows need ``data.read``.

Parameters the metrics layer refuses (an unknown grain or dimension, a malformed ``where``) are
422 problems naming the parameter, shaped like FastAPI's own validation errors.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from starlette.responses import Response

from cxloop.errors import ConfigError
from cxloop.metrics.cache import MetricsCache
from cxloop.metrics.cohorts import average_curve
from cxloop.metrics.frames import records
from cxloop.metrics.grains import Grain
from cxloop.metrics.kpi import Kpi
from cxloop.metrics.query import FACTS, Options
from cxloop.metrics.registry import Registry
from cxloop.metrics.rfm import SEGMENTS
from cxloop.metrics.source import Source, store_source
from cxloop.store.store import Store
from cxloop.web.auth import require
from cxloop.web.deps import ClockDep, SettingsDep, StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.roles import Capability

router = APIRouter(prefix="/api/v1", tags=["metrics"])

AGGREGATES = [Depends(require(Capability.DASHBOARDS_READ))]
ROWS = [Depends(require(Capability.DATA_READ))]

# -- parameters --------------------------------------------------------------------------------

GrainQuery = Annotated[Grain, Query(description="day, week, month, quarter, year or all")]
AsOf = Annotated[
    dt.datetime | None,
    Query(
        description="Compute as of this moment, UTC (ISO 8601; default: now)",
        examples=["2026-01-01"],
    ),
]
Start = Annotated[dt.datetime | None, Query(description="First day, inclusive (ISO 8601)")]
End = Annotated[dt.datetime | None, Query(description="End, exclusive (default: as_of)")]
By = Annotated[
    list[str],
    Query(description="Break down by a dimension (repeat, or comma-separate)", examples=[["segment"]]),
]
Where = Annotated[
    list[str],
    Query(
        description="Keep rows whose DIMENSION is one of the values: `dim:value[,value]` (repeatable)",
        examples=[["segment:smb"]],
    ),
]
ActiveDays = Annotated[int, Query(ge=1, description="A customer is active with a purchase in this many days")]
LookbackDays = Annotated[int | None, Query(ge=1, description="Only purchases in this many days before as_of")]


def invalid(param: str, message: str) -> Problem:
    """A 422 problem naming one query parameter, shaped like FastAPI's validation errors."""
    return Problem(
        422,
        detail=f"query.{param}: {message}",
        errors=[{"loc": ["query", param], "msg": message, "type": "value_error"}],
    )


def split_by(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_where(values: list[str]) -> dict[str, list[str]]:
    """``segment:smb,mid`` (or the CLI's ``segment=smb,mid``) into ``{"segment": ["smb", "mid"]}``."""
    where: dict[str, list[str]] = {}
    for item in values:
        colon, equals = item.find(":"), item.find("=")
        cut = min(i for i in (colon, equals, len(item)) if i >= 0)
        name, value = item[:cut].strip(), item[cut + 1 :]
        if cut == len(item) or not name:
            raise invalid("where", f"{item!r} is not DIMENSION:VALUE")
        where.setdefault(name, []).extend(v.strip() for v in value.split(","))
    return where


def check_dimensions(allowed: list[str], by: list[str], where: dict[str, list[str]]) -> None:
    for param, names in (("by", by), ("where", list(where))):
        for name in names:
            if name not in allowed:
                raise invalid(
                    param, f"dimension {name!r} does not apply here; choose from {', '.join(allowed)}"
                )


def naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """The store keeps naive UTC: an aware moment is converted, a naive one taken as UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def as_of_or_now(as_of: dt.datetime | None, clock: Callable[[], dt.datetime]) -> dt.datetime:
    return naive_utc(as_of) or clock()


@contextmanager
def refusals() -> Iterator[None]:
    """A refusal of the metrics layer (an unknown dimension, a bad option) as a 422 problem."""
    try:
        yield
    except ConfigError as exc:
        raise Problem(422, detail=str(exc)) from None


@contextmanager
def source_of(store: Store) -> Iterator[Source]:
    """The store as a metrics source; a refusal of the metrics layer becomes a 422 problem."""
    try:
        with store_source(store) as source:
            yield source
    except ConfigError as exc:
        raise Problem(422, detail=str(exc)) from None


def registry(settings: SettingsDep) -> Registry:
    try:
        return Registry.load(settings.kpis_file)
    except ConfigError as exc:  # the business's own KPIs file is broken: the server's fault
        raise Problem(500, detail=f"the KPIs file cannot be read: {exc}") from None


RegistryDep = Annotated[Registry, Depends(registry)]


def metrics_cache(request: Request) -> MetricsCache:
    """The app's cache of metric results (``app.state``, made by ``create_app``): every route
    below answers from it until an import changes the store's data fingerprint."""
    cache: MetricsCache = request.app.state.metrics_cache
    return cache


CacheDep = Annotated[MetricsCache, Depends(metrics_cache)]


def kpi_or_404(kpis: Registry, kpi_id: str) -> Kpi:
    try:
        return kpis.get(kpi_id)
    except ConfigError as exc:
        ids = [k.id for k in kpis]
        close = difflib.get_close_matches(kpi_id.lower(), ids, n=3, cutoff=0.6)
        close += [k for k in ids if kpi_id.lower() in k and k not in close]
        raise Problem(404, detail=str(exc), kpi=kpi_id, did_you_mean=close) from None


def answer(
    cache: MetricsCache, key: Hashable, as_of: dt.datetime | None, build: Callable[[], Any]
) -> Response:
    """The JSON of ``build()``, kept in the metrics cache as bytes: a cached answer costs no
    conversion from frames and no validation, only the bytes (a question as of now is kept for the
    cache's "now" window, like the frames it is made of)."""

    def encode() -> bytes:
        data = build()
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        return json.dumps(jsonable_encoder(data), separators=(",", ":"), allow_nan=False).encode()

    max_age = None if as_of is not None else cache.now_seconds
    with refusals(), cache.pinned():
        body: bytes = cache.get(("api", key), encode, max_age=max_age)
    return Response(body, media_type="application/json")


def where_key(filters: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((name, tuple(values)) for name, values in filters.items()))


def file_stamp(path: str | Path | None) -> tuple[str, float] | None:
    """A file as part of a cache key: its name and when it last changed."""
    if path is None:
        return None
    try:
        return str(path), os.stat(path).st_mtime
    except OSError:
        return str(path), 0.0


# -- models (for the schema and its examples) ----------------------------------------------------


class KpiDefinition(BaseModel):
    """A KPI as data: what it means, in which unit, which way is good (``cxloop kpi list --json``)."""

    id: str = Field(examples=["nps"])
    name: str = Field(examples=["Net Promoter Score"])
    group: str = Field(examples=["surveys"])
    formula: str = Field(
        examples=["% promoters (9-10) minus % detractors (0-6), over answers to 0-10 NPS questions"]
    )
    unit: str = Field(examples=["points"])
    direction: str = Field(description="up, down or neutral: which way is better", examples=["up"])
    tables: list[str] = Field(examples=[["survey_responses"]])
    default_grain: str = Field(examples=["month"])
    kind: str = Field(examples=["nps"])
    ci_method: str = Field(examples=["adjusted Wald for NPS (add 3 answers: 3/4 promoter, 3/4 detractor)"])
    dimensions: list[str] = Field(examples=[["segment", "region", "touchpoint"]])
    custom: bool = Field(description="defined in the business's own KPIs file", examples=[False])


VALUES_EXAMPLE = [
    {
        "period": "2025-12-01",
        "segment": "smb",
        "value": 31.4,
        "n": 172,
        "ci_low": 19.2,
        "ci_high": 43.1,
        "warning": None,
        "previous": 27.0,
        "change": 4.4,
        "p_value": 0.61,
        "significant": False,
    }
]
SUMMARY_EXAMPLE = [
    {
        "kpi": "nps",
        "name": "Net Promoter Score",
        "unit": "points",
        "direction": "up",
        "period": "2025-12-01",
        "value": 29.8,
        "n": 540,
        "ci_low": 23.1,
        "ci_high": 36.2,
        "warning": None,
        "previous": 24.5,
        "change": 5.3,
        "p_value": 0.27,
        "significant": False,
        "verdict": "steady",
    }
]


def example(value: Any, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {"example": value}}}}


class Cohorts(BaseModel):
    """The cohort matrix, tidy (one cell per cohort, breakdown value and age), and its average curve."""

    cells: list[dict[str, Any]] = Field(
        examples=[
            [
                {
                    "cohort": "2025-06-01T00:00:00",
                    "age": 1,
                    "period": "2025-07-01T00:00:00",
                    "cohort_size": 41,
                    "customers": 9,
                    "retention": 21.95,
                    "revenue": 1834.5,
                    "revenue_retention": 38.2,
                    "complete": True,
                }
            ]
        ]
    )
    average: list[dict[str, Any]] = Field(
        examples=[
            [
                {
                    "age": 1,
                    "cohorts": 6,
                    "cohort_size": 240,
                    "retention": 20.4,
                    "revenue_retention": 35.9,
                }
            ]
        ]
    )


class RfmSegment(BaseModel):
    """One RFM segment: its customers and their revenue (``cxloop rfm --json``)."""

    segment: str = Field(examples=["Champions"])
    customers: int = Field(examples=[38])
    share: float | None = Field(description="% of scored customers", examples=[14.2])
    revenue: float = Field(examples=[48210.5])
    revenue_share: float | None = Field(description="% of their net revenue", examples=[41.7])
    avg_recency_days: float | None = Field(examples=[12.4])
    avg_frequency: float | None = Field(examples=[7.1])
    avg_monetary: float | None = Field(examples=[1268.7])


class RfmCustomer(BaseModel):
    """One customer's RFM values, scores (1-5, 5 best) and segment."""

    customer_id: str = Field(examples=["C00042"])
    recency_days: int = Field(examples=[9])
    frequency: int = Field(examples=[6])
    monetary: float = Field(examples=[912.4])
    r_score: int = Field(examples=[5])
    f_score: int = Field(examples=[4])
    m_score: int = Field(examples=[4])
    fm_score: int = Field(examples=[4])
    segment: str = Field(examples=["Champions"])


class RfmCustomers(BaseModel):
    """One page of customers, by customer id."""

    items: list[RfmCustomer]
    total: int = Field(description="customers matching, on every page", examples=[268])
    limit: int = Field(examples=[100])
    offset: int = Field(examples=[0])


# -- routes ------------------------------------------------------------------------------------


@router.get("/kpis", dependencies=AGGREGATES, responses=problem_responses(401, 403))
def list_kpis(kpis: RegistryDep) -> list[KpiDefinition]:
    """Every KPI as data, in catalogue order (what `cxloop kpi list --json` prints)."""
    return [KpiDefinition(**k.describe()) for k in kpis]


@router.get("/kpis/{kpi_id}", dependencies=AGGREGATES, responses=problem_responses(401, 403, 404))
def kpi_definition(kpi_id: str, kpis: RegistryDep) -> KpiDefinition:
    """One KPI's definition; an unknown id is a 404 naming the close matches."""
    return KpiDefinition(**kpi_or_404(kpis, kpi_id).describe())


@router.get(
    "/kpis/{kpi_id}/values",
    dependencies=AGGREGATES,
    response_model=list[dict[str, Any]],
    responses={
        **example(VALUES_EXAMPLE, "One row per period and breakdown value"),
        **problem_responses(401, 403, 404, 422),
    },
)
def kpi_values(
    kpi_id: str,
    store: StoreDep,
    kpis: RegistryDep,
    clock: ClockDep,
    cache: CacheDep,
    settings: SettingsDep,
    grain: GrainQuery = Grain.MONTH,
    by: By = [],  # noqa: B006 - FastAPI copies defaults
    where: Where = [],  # noqa: B006
    start: Start = None,
    end: End = None,
    as_of: AsOf = None,
    change: Annotated[
        bool, Query(description="Add the previous period, the change and its significance")
    ] = False,
    active_days: ActiveDays = 90,
    min_n: Annotated[int, Query(ge=1, description="Warn when a rate rests on fewer observations")] = 30,
) -> Response:
    """One KPI per period (and breakdown): value, n, 95% interval and warning — the rows of
    `cxloop kpi show ID --json` with the same parameters. Not paginated: the rows are bounded by
    periods × breakdown values."""
    definition = kpi_or_404(kpis, kpi_id)
    dims, filters = split_by(by), parse_where(where)
    check_dimensions(definition.dimensions, dims, filters)
    key = (
        "values", definition.id, grain, tuple(dims), where_key(filters), naive_utc(start), naive_utc(end),
        naive_utc(as_of), change, active_days, min_n, file_stamp(settings.kpis_file),
    )  # fmt: skip
    return answer(
        cache,
        key,
        as_of,
        lambda: records(
            cache.compute(
                store,
                definition,
                grain=grain,
                by=dims,
                where=filters,
                start=naive_utc(start),
                end=naive_utc(end),
                as_of=naive_utc(as_of),
                change=change,
                options=Options(active_days=active_days, min_n=min_n),
                custom_file=settings.kpis_file,
                clock=clock,
            )
        ),
    )


@router.get(
    "/summary",
    dependencies=AGGREGATES,
    response_model=list[dict[str, Any]],
    responses={
        **example(SUMMARY_EXAMPLE, "One row per headline KPI"),
        **problem_responses(401, 403, 404, 422),
    },
)
def summary(
    store: StoreDep,
    settings: SettingsDep,
    kpis: RegistryDep,
    clock: ClockDep,
    cache: CacheDep,
    grain: GrainQuery = Grain.MONTH,
    as_of: AsOf = None,
    kpi: Annotated[
        list[str], Query(description="Only these KPIs (repeat, or comma-separate; default: the headline)")
    ] = [],  # noqa: B006
    active_days: ActiveDays = 90,
) -> Response:
    """Headline KPIs for the last complete period against the one before (`cxloop summary --json`)."""
    if grain is Grain.ALL:
        raise invalid("grain", "the summary compares periods: day, week, month, quarter or year")
    ids = split_by(kpi)
    for kpi_id in ids:
        kpi_or_404(kpis, kpi_id)
    key = ("summary", grain, naive_utc(as_of), tuple(ids), active_days, file_stamp(settings.kpis_file))
    return answer(
        cache,
        key,
        as_of,
        lambda: records(
            cache.summary(
                store,
                as_of=naive_utc(as_of),
                grain=grain,
                kpi_ids=ids or None,
                options=Options(active_days=active_days),
                custom_file=settings.kpis_file,
                clock=clock,
            )
        ),
    )


@router.get(
    "/cohorts", dependencies=AGGREGATES, response_model=Cohorts, responses=problem_responses(401, 403, 422)
)
def cohort_matrix(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    grain: GrainQuery = Grain.MONTH,
    start: Annotated[
        dt.datetime | None, Query(description="First cohort to show (its period's first day)")
    ] = None,
    end: Annotated[dt.datetime | None, Query(description="Cohorts before this")] = None,
    as_of: AsOf = None,
    by: Annotated[
        list[str], Query(description="One matrix per customer dimension (segment, region, ...)")
    ] = [],  # noqa: B006
    where: Where = [],  # noqa: B006
) -> Response:
    """The cohort retention matrix (`cxloop cohorts --json`) and its average curve."""
    if grain is Grain.ALL:
        raise invalid("grain", "cohorts need a grain with periods: day, week, month, quarter or year")
    dims, filters = split_by(by), parse_where(where)
    allowed = [d for d in FACTS["customers"].all_dimensions() if d != "cohort"]
    check_dimensions(allowed, dims, filters)

    def build() -> Cohorts:
        matrix = cache.cohorts(
            store,
            grain=grain,
            start=naive_utc(start),
            end=naive_utc(end),
            as_of=naive_utc(as_of),
            by=dims,
            where=filters,
            clock=clock,
        )
        return Cohorts(cells=records(matrix), average=records(average_curve(matrix)))

    key = (
        "cohorts",
        grain,
        naive_utc(start),
        naive_utc(end),
        naive_utc(as_of),
        tuple(dims),
        where_key(filters),
    )
    return answer(cache, key, as_of, build)


@router.get(
    "/rfm/segments",
    dependencies=AGGREGATES,
    response_model=list[RfmSegment],
    responses=problem_responses(401, 403, 422),
)
def rfm_segments(
    store: StoreDep, clock: ClockDep, cache: CacheDep, as_of: AsOf = None, lookback_days: LookbackDays = None
) -> Response:
    """The eleven RFM segments, in order, with their customers and revenue (`cxloop rfm --json`)."""

    def build() -> list[dict[str, Any]]:
        frame = cache.rfm_segments(store, as_of=naive_utc(as_of), lookback_days=lookback_days, clock=clock)
        return [RfmSegment(**row).model_dump(mode="json") for row in records(frame)]

    return answer(cache, ("rfm_segments", naive_utc(as_of), lookback_days), as_of, build)


@router.get("/rfm/customers", dependencies=ROWS, responses=problem_responses(401, 403, 422))
def rfm_customers(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    as_of: AsOf = None,
    lookback_days: LookbackDays = None,
    segment: Annotated[str | None, Query(description="Only this segment", examples=["At risk"])] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Customers per page")] = 100,
    offset: Annotated[int, Query(ge=0, description="Customers to skip")] = 0,
) -> RfmCustomers:
    """Each customer's RFM scores and segment, by customer id, a page at a time
    (`cxloop rfm --customers --json`)."""
    if segment is not None and segment not in SEGMENTS:
        raise invalid("segment", f"unknown segment {segment!r}; choose from {', '.join(SEGMENTS)}")
    with refusals():
        table = cache.rfm(store, as_of=naive_utc(as_of), lookback_days=lookback_days, clock=clock)
    if segment is not None:
        table = table[table["segment"] == segment]
    page = table.iloc[offset : offset + limit]
    return RfmCustomers(
        items=[RfmCustomer(**row) for row in records(page)], total=len(table), limit=limit, offset=offset
    )
