"""The dashboard and KPI pages: headline tiles, trends, cohorts, RFM, one KPI, the rows behind it.

Routes parse the query, call :mod:`cxloop.web.dashboard` (or the metrics layer) and render. A
chart's ``download`` parameter returns that chart's table as CSV instead of the page. Aggregates
need ``dashboards.read``; the rows behind a number are customer-level and need ``data.read``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from markupsafe import Markup
from starlette.responses import Response

from cxloop.errors import ConfigError
from cxloop.metrics.cache import MetricsCache
from cxloop.metrics.drill import drill, row_classes
from cxloop.metrics.grains import Grain
from cxloop.metrics.kpi import Kpi
from cxloop.metrics.query import Options
from cxloop.metrics.registry import Registry
from cxloop.metrics.source import Source
from cxloop.store.store import Store
from cxloop.web import dashboard
from cxloop.web.api_metrics import file_stamp, kpi_or_404, parse_where, registry, source_of
from cxloop.web.auth import require
from cxloop.web.charts import Chart, Table
from cxloop.web.deps import Clock, ClockDep, SettingsDep, StoreDep, business
from cxloop.web.errors import Problem
from cxloop.web.formatting import Formatter
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)

READ = require(Capability.DASHBOARDS_READ)
ROWS = require(Capability.DATA_READ)
RegistryDep = Annotated[Registry, Depends(registry)]
PageGrain = Annotated[Grain, Query(description="day, week, month, quarter or year")]
GRAINS = [g for g in Grain if g is not Grain.ALL]
DEFAULT_TREND = "nps"
T = TypeVar("T")


def csv_download(table: Table, filename: str) -> Response:
    return Response(
        table.csv(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}.csv"'},
    )


def formatter(request: Request) -> Formatter:
    """Numbers in the business's currency (the settings page)."""
    return Formatter(business(request).currency)


def periodic(grain: Grain) -> Grain:
    if grain is Grain.ALL:
        raise Problem(422, detail="query.grain: pages show periods: day, week, month, quarter or year")
    return grain


def remembered(
    request: Request,
    store: Store,
    clock: Clock,
    key: Hashable,
    build: Callable[[Source, dt.datetime], T],
) -> T:
    """``build(source, now)``, kept in the app's metrics cache until the next import (and for at most
    the cache's "now" window, since it is computed as of now) — so 20 people opening the dashboard
    cost one computation, not 20."""
    cache: MetricsCache = request.app.state.metrics_cache

    def compute() -> T:
        with source_of(store) as source:
            return build(source, clock())

    return cache.get(("page", key), compute, max_age=cache.now_seconds)


def fragment_html(request: Request, key: Hashable, template: str, make: Callable[[], Markup]) -> Markup:
    """A part of a page rendered from a template's macro (``make`` calls it), kept in the metrics
    cache like the numbers it shows: a dashboard served from the cache renders none of its parts."""
    cache: MetricsCache = request.app.state.metrics_cache
    return cache.get(("page.html", template, key), make, max_age=cache.now_seconds)


def macro(request: Request, template: str, name: str) -> Callable[..., str]:
    found: Callable[..., str] = getattr(request.app.state.templates.env.get_template(template).module, name)
    return found


def chart_html(request: Request, key: Hashable, make: Callable[[], Chart]) -> Markup:
    """A chart rendered (its figure, table and CSV link), kept like :func:`fragment_html`."""
    return fragment_html(
        request, key, "_chart.html", lambda: Markup(macro(request, "_chart.html", "chart")(make()))
    )


def dimension_choices(kpi: Kpi) -> list[str]:
    return [d for d in kpi.dimensions if d != "cohort"]


@router.get("/")
def dashboard_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    kpis: RegistryDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(READ)],
    grain: PageGrain = Grain.MONTH,
    kpi: Annotated[str, Query(description="The KPI of the trend chart")] = DEFAULT_TREND,
    by: Annotated[str, Query(description="Break the trend down by this dimension")] = "",
    download: Literal["trend", "cohorts", "rfm"] | None = None,
) -> Response:
    grain = periodic(grain)
    trend_kpi = kpi_or_404(kpis, kpi)
    dims = [by] if by else []
    if by and by not in dimension_choices(trend_kpi):
        raise Problem(422, detail=f"query.by: {trend_kpi.id} cannot be broken down by {by!r}")
    params = {"grain": grain.value, "kpi": trend_kpi.id, "by": by}
    fmt = formatter(request)
    cache: MetricsCache = request.app.state.metrics_cache

    def href(chart: str) -> str:
        return "/" + dashboard.query_string({**params, "download": chart})

    def trend() -> Chart:
        return remembered(
            request,
            store,
            clock,
            ("trend", trend_kpi, grain, by, href("trend")),
            lambda source, now: dashboard.trend(
                source, trend_kpi, as_of=now, grain=grain, by=dims, csv_href=href("trend")
            ),
        )

    def cohorts() -> Chart:
        # The API's cohort matrix (same question, same cache entry), cut to the last periods here.
        matrix = cache.cohorts(store, grain=Grain.MONTH, clock=clock)
        return dashboard.cohort_heatmap(matrix, as_of=clock(), csv_href=href("cohorts"))

    def rfm() -> Chart:
        segments = cache.rfm_segments(store, clock=clock)
        return dashboard.rfm_chart(segments, csv_href=href("rfm"))

    if download is not None:
        chart = {"trend": trend, "cohorts": cohorts, "rfm": rfm}[download]()
        name = {"trend": f"{trend_kpi.id}-by-{grain.value}", "cohorts": "cohorts", "rfm": "rfm-segments"}
        return csv_download(chart.table, name[download])

    def tiles() -> Markup:
        headline = cache.summary(
            store, grain=grain, options=Options(), custom_file=settings.kpis_file, clock=clock
        )
        spark = remembered(
            request,
            store,
            clock,
            ("sparklines", grain, tuple(headline["kpi"]), file_stamp(settings.kpis_file)),
            lambda source, now: dashboard.sparklines(
                source, kpis, list(headline["kpi"]), as_of=now, grain=grain
            ),
        )
        made = dashboard.tiles(headline, spark, grain=grain, fmt=fmt)
        return Markup(macro(request, "_tiles.html", "tiles")(made, grain))

    with cache.pinned():  # one fingerprint read for the whole page
        try:
            tiles_html = fragment_html(
                request, ("tiles", grain, fmt, file_stamp(settings.kpis_file)), "_tiles.html", tiles
            )
        except ConfigError as exc:
            raise Problem(422, detail=str(exc)) from None
        charts = [
            chart_html(request, ("trend", trend_kpi, grain, by), trend),
            chart_html(request, ("cohorts",), cohorts),
            chart_html(request, ("rfm",), rfm),
        ]
    return render(
        request,
        "dashboard.html",
        {
            "title": "Dashboard",
            "tiles": tiles_html,
            "charts": charts,
            "grain": grain,
            "grains": GRAINS,
            "kpis": list(kpis),
            "trend_kpi": trend_kpi,
            "by": by,
            "dimensions": dimension_choices(trend_kpi),
        },
    )


@router.get("/kpis")
def kpi_list_page(request: Request, kpis: RegistryDep, who: Annotated[Principal, Depends(READ)]) -> Response:
    groups: dict[str, list[Kpi]] = {}
    for k in kpis:
        groups.setdefault(k.group, []).append(k)
    return render(request, "kpis.html", {"title": "KPIs", "groups": groups})


@router.get("/kpis/{kpi_id}")
def kpi_page(
    request: Request,
    kpi_id: str,
    store: StoreDep,
    kpis: RegistryDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(READ)],
    grain: PageGrain = Grain.MONTH,
    by: Annotated[str, Query(description="Break down by this dimension")] = "",
    download: Literal["values"] | None = None,
) -> Response:
    grain = periodic(grain)
    kpi = kpi_or_404(kpis, kpi_id)
    if by and by not in dimension_choices(kpi):
        raise Problem(422, detail=f"query.by: {kpi.id} cannot be broken down by {by!r}")
    dims = [by] if by else []
    csv_href = f"/kpis/{kpi.id}" + dashboard.query_string(
        {"grain": grain.value, "by": by, "download": "values"}
    )
    cache: MetricsCache = request.app.state.metrics_cache
    with cache.pinned():
        chart = remembered(
            request,
            store,
            clock,
            ("trend", kpi, grain, by, csv_href),
            lambda source, now: dashboard.trend(
                source, kpi, as_of=now, grain=grain, by=dims, csv_href=csv_href
            ),
        )
        trend_html = chart_html(request, ("kpi-trend", kpi, grain, by), lambda: chart)
    if download == "values":
        return csv_download(chart.table, f"{kpi.id}-by-{grain.value}")
    fmt = formatter(request)
    rows = [dict(zip(chart.table.columns, row, strict=True)) for row in reversed(chart.table.rows)]
    for row in rows:
        row["value_text"] = fmt.value(row["value"], kpi.unit)
        row["interval"] = fmt.interval(row["ci_low"], row["ci_high"], kpi.unit)
        row["drill"] = f"/kpis/{kpi.id}/rows" + dashboard.query_string(
            {"period": row["period"], "grain": grain.value, **{d: row[d] for d in dims}}
        )
    return render(
        request,
        "kpi.html",
        {
            "title": kpi.name,
            "kpi": kpi,
            "trend_chart": trend_html,
            "rows": rows,
            "dims": dims,
            "grain": grain,
            "grains": GRAINS,
            "by": by,
            "dimensions": dimension_choices(kpi),
            "classes": row_classes(kpi),
            "can_drill": who.can(Capability.DATA_READ),
        },
    )


@router.get("/kpis/{kpi_id}/rows")
def kpi_rows_page(
    request: Request,
    kpi_id: str,
    store: StoreDep,
    kpis: RegistryDep,
    clock: ClockDep,
    who: Annotated[Principal, Depends(ROWS)],
    period: Annotated[dt.date, Query(description="A day in the period (its first day, usually)")],
    grain: PageGrain = Grain.MONTH,
    row_class: Annotated[str | None, Query(alias="class", description="promoter, passive, detractor")] = None,
    where: Annotated[list[str], Query(description="dimension:value")] = [],  # noqa: B006
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    download: Literal["rows"] | None = None,
) -> Response:
    """The rows behind one value of a KPI (with a breakdown, its dimension values come as
    ``dimension=value`` parameters, as the KPI page's links make them)."""
    grain = periodic(grain)
    kpi = kpi_or_404(kpis, kpi_id)
    filters = parse_where(where)
    for name in dimension_choices(kpi):
        value = request.query_params.get(name)
        if value:
            filters.setdefault(name, []).append(value)
    moment = dt.datetime.combine(period, dt.time())
    with source_of(store) as source:
        try:
            found = drill(
                source,
                kpi,
                period=moment,
                grain=grain,
                as_of=clock(),
                where={k: tuple(v) for k, v in filters.items()},
                row_class=row_class or None,
                limit=100_000 if download else limit,
                offset=0 if download else offset,
            )
        except ConfigError as exc:
            raise Problem(422, detail=str(exc)) from None
    table = Table.from_frame(found.rows)
    if download == "rows":
        return csv_download(table, f"{kpi.id}-{period.isoformat()}-rows")
    base: dict[str, Any] = {"period": period.isoformat(), "grain": grain.value, "class": row_class}
    base.update({k: v for k, v in request.query_params.items() if k in dimension_choices(kpi)})
    link = f"/kpis/{kpi.id}/rows"
    return render(
        request,
        "kpi_rows.html",
        {
            "title": f"{kpi.name}: rows behind {period.isoformat()}",
            "kpi": kpi,
            "drill": found,
            "table": table,
            "row_class": row_class,
            "classes": row_classes(kpi),
            "filters": filters,
            "class_links": {c: link + dashboard.query_string({**base, "class": c}) for c in row_classes(kpi)},
            "all_link": link + dashboard.query_string({**base, "class": None}),
            "next_link": link + dashboard.query_string({**base, "offset": offset + limit, "limit": limit})
            if offset + limit < found.total
            else None,
            "prev_link": link
            + dashboard.query_string({**base, "offset": max(offset - limit, 0), "limit": limit})
            if offset > 0
            else None,
            "csv_link": link + dashboard.query_string({**base, "download": "rows"}),
            "customer_column": "customer_id" in found.columns,
        },
    )
