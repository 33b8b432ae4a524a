"""The customer value pages: the fitted models, CLV by segment and its distribution, the holdout
check (``dashboards.read``), and the customers at risk (``data.read``).

Thin shells over :mod:`cxloop.value` through the value API's cache (a fit is computed once per
import and parameter set, :mod:`cxloop.web.api_value`). A model that cannot be fitted — too few
repeat customers, say — is explained on the page instead of a chart.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cxloop.errors import ConfigError
from cxloop.metrics.frames import plain
from cxloop.metrics.source import store_source
from cxloop.value.at_risk import AtRiskOptions, at_risk
from cxloop.value.clv import ClvOptions
from cxloop.value.fitting import FitError
from cxloop.value.report import ValueQuery, last_complete_day
from cxloop.value.validation import validate
from cxloop.web import value_view
from cxloop.web.api_value import CacheDep, cached_fit, cached_values
from cxloop.web.auth import require
from cxloop.web.charts import Table
from cxloop.web.dashboard import query_string
from cxloop.web.deps import ClockDep, StoreDep, business
from cxloop.web.formatting import SYMBOLS
from cxloop.web.pages_dashboard import csv_download, formatter
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)
READ = require(Capability.DASHBOARDS_READ)
ROWS = require(Capability.DATA_READ)
AT_RISK_COLUMNS = ["customer_id", "segment", "total_spend", "purchases", "last_purchase", "days_since_last",
                   "usual_gap_days", "p_alive", "clv", "reason"]  # fmt: skip


@router.get("/value")
def value_page(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    who: Annotated[Principal, Depends(READ)],
    download: Literal["clv", "segments", "holdout", "fit"] | None = None,
) -> Response:
    query = ValueQuery(calibration_end=last_complete_day(clock()))
    currency = business(request).currency
    context: dict[str, Any] = {"title": "Customer value", "query": query, "error": None}
    try:
        result = cached_fit(store, cache, query)
        values = cached_values(store, cache, query, ClvOptions())
        calibration_end, holdout_end = value_view.holdout_dates(query.calibration_end)

        def check() -> Any:
            with store_source(store) as source:
                return validate(source, calibration_end=calibration_end, holdout_end=holdout_end).table

        holdout = cache.get(("value.holdout", calibration_end, holdout_end), check)
    except (FitError, ConfigError) as exc:
        context["error"] = str(exc)
        return render(request, "value.html", context)
    href = {
        name: "/value" + query_string({"download": name}) for name in ("clv", "segments", "holdout", "fit")
    }
    charts = [
        value_view.clv_histogram(values, currency=currency, csv_href=href["clv"]),
        value_view.holdout_chart(holdout, csv_href=href["holdout"]),
    ]
    segments = value_view.segment_table(values)
    fits = value_view.fit_table(result.models.rows())
    if download:
        tables: dict[str, Table] = {"clv": charts[0].table, "holdout": charts[1].table, "segments": segments,
                                    "fit": fits}  # fmt: skip
        return csv_download(tables[download], f"value-{download}")
    context.update(
        charts=charts,
        segments=[dict(zip(segments.columns, row, strict=True)) for row in segments.rows],
        fits=fits,
        customers=len(values),
        holdout=(calibration_end, holdout_end),
        fmt=formatter(request),
        segments_csv=href["segments"],
        fit_csv=href["fit"],
    )
    return render(request, "value.html", context)


def symbol(currency: str) -> str:
    """What the at-risk reasons write before amounts: $, € … or the code."""
    return SYMBOLS.get(currency.upper(), f"{currency.upper()} ")


@router.get("/value/at-risk")
def at_risk_page(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    who: Annotated[Principal, Depends(ROWS)],
    download: Literal["csv"] | None = None,
) -> Response:
    """Valuable customers probably slipping away ("cannot lose them"), with the reason."""
    query = ValueQuery(calibration_end=last_complete_day(clock()))
    fmt = formatter(request)
    try:
        result = cached_fit(store, cache, query)
        values = cached_values(store, cache, query, ClvOptions())
        rows = at_risk(
            values,
            days_per_unit=result.summary.days_per_unit,
            options=AtRiskOptions(currency=symbol(fmt.currency)),
        )
    except (FitError, ConfigError) as exc:
        return render(request, "at_risk.html", {"title": "Customers at risk", "error": str(exc)})
    table = Table.from_frame(rows, [c for c in AT_RISK_COLUMNS if c in rows.columns])
    if download:
        return csv_download(table, "customers-at-risk")
    return render(
        request,
        "at_risk.html",
        {
            "title": "Customers at risk",
            "error": None,
            "rows": [dict(zip(table.columns, r, strict=True)) for r in table.rows[:500]],
            "total": len(table.rows),
            "csv": "/value/at-risk" + query_string({"download": "csv"}),
            "fmt": fmt,
            "as_of": query.calibration_end,
        },
    )


def customer_value(store: Any, cache: Any, customer_id: str, now: dt.datetime) -> dict[str, Any] | None:
    """One customer's P(alive), CLV and at-risk reason for the customer page (None when no model
    can be fitted, or the customer has no purchase before the calibration end)."""
    query = ValueQuery(calibration_end=last_complete_day(now))
    try:
        result = cached_fit(store, cache, query)
        values = cached_values(store, cache, query, ClvOptions())
        risky = at_risk(values, days_per_unit=result.summary.days_per_unit)
    except (FitError, ConfigError):
        return None
    mine = values[values["customer_id"] == customer_id]
    if mine.empty:
        return None
    row = {k: plain(v) for k, v in mine.iloc[0].items()}
    flagged = risky[risky["customer_id"] == customer_id]
    row["at_risk_reason"] = None if flagged.empty else str(flagged.iloc[0]["reason"])
    return row
