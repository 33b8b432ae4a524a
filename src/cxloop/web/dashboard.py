"""What the dashboard and KPI pages show, built from the metrics layer as plain data.

The pages' routes only parse parameters and render; everything they display is assembled here
from :mod:`cxloop.metrics` — the same functions (and so the same numbers) as the CLI and the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from cxloop.metrics.compute import compute_queries, compute_query, make_query
from cxloop.metrics.grains import Grain, period_start, shift
from cxloop.metrics.kpi import Kpi
from cxloop.metrics.query import Options
from cxloop.metrics.registry import Registry
from cxloop.metrics.rfm import SEGMENT_COLUMNS
from cxloop.metrics.source import Source
from cxloop.web.charts import Chart, Table, bar_chart, heatmap, line_chart, sparkline_points
from cxloop.web.formatting import Formatter, missing

#: Periods a trend and a sparkline cover.
TREND_PERIODS = 12
#: Lines drawn in a broken-down trend (the table lists every value).
MAX_LINES = 6


@dataclass(frozen=True)
class Tile:
    """A headline KPI: its value in the last complete period and how it moved."""

    kpi: str
    name: str
    unit: str
    direction: str
    period: str
    value: str
    raw_value: float | None
    change: str
    verdict: str
    significant: bool
    interval: str
    n: int | None
    warning: str | None
    spark: str
    spark_label: str


def trend_start(as_of: dt.datetime, grain: Grain, periods: int = TREND_PERIODS) -> dt.datetime:
    """The first day of the ``periods`` complete periods before ``as_of``."""
    return shift(period_start(as_of, grain), grain, -periods)


def _series(
    source: Source, kpi: Kpi, grain: Grain, as_of: dt.datetime, options: Options, by: Sequence[str] = ()
) -> pd.DataFrame:
    query = make_query(
        grain=grain,
        by=by,
        start=trend_start(as_of, grain),
        end=period_start(as_of, grain),
        as_of=as_of,
        options=options,
    )
    return compute_query(source, kpi, query)


def sparklines(
    source: Source,
    registry: Registry,
    kpi_ids: Sequence[str],
    *,
    as_of: dt.datetime,
    grain: Grain,
    options: Options | None = None,
) -> dict[str, list[float | None]]:
    """Each KPI's values over the last :data:`TREND_PERIODS` complete periods, by id."""
    options = options or Options()
    shown = [registry.get(kpi_id) for kpi_id in kpi_ids]
    # Every sparkline from one query: the KPIs' statistics are stacked and split again.
    query = make_query(
        grain=grain,
        start=trend_start(as_of, grain),
        end=period_start(as_of, grain),
        as_of=as_of,
        options=options,
    )
    series_of = compute_queries(source, shown, query)
    return {
        kpi_id: [None if missing(v) else float(v) for v in frame["value"]]
        for kpi_id, frame in series_of.items()
    }


def tiles(
    frame: pd.DataFrame, spark: Mapping[str, list[float | None]], *, grain: Grain, fmt: Formatter
) -> list[Tile]:
    """The headline KPIs (``cxloop summary``'s frame) with their sparklines."""
    out = []
    for row in frame.to_dict("records"):
        values = list(spark.get(row["kpi"], []))
        unit = row["unit"]
        spark_label = (
            f"{len(values)} {grain.value}s: "
            f"from {fmt.value(values[0], unit)} to {fmt.value(values[-1], unit)}"
            if len(values) >= 2
            else "not enough periods for a trend"
        )
        out.append(
            Tile(
                kpi=row["kpi"],
                name=row["name"],
                unit=unit,
                direction=row["direction"],
                period=_period_label(row["period"], grain),
                value=fmt.value(row["value"], unit),
                raw_value=None if missing(row["value"]) else float(row["value"]),
                change=fmt.change(row["change"], unit),
                verdict=str(row["verdict"]),
                significant=bool(row["significant"]) if not missing(row["significant"]) else False,
                interval=fmt.interval(row["ci_low"], row["ci_high"], unit),
                n=None if missing(row["n"]) else int(row["n"]),
                warning=None if missing(row["warning"]) else str(row["warning"]),
                spark=sparkline_points(values),
                spark_label=spark_label,
            )
        )
    return out


def _period_label(period: Any, grain: Grain) -> str:
    if missing(period):
        return ""
    moment = pd.Timestamp(period).to_pydatetime()
    if grain is Grain.MONTH:
        return str(moment.strftime("%B %Y"))
    if grain is Grain.QUARTER:
        return f"Q{(moment.month - 1) // 3 + 1} {moment.year}"
    if grain is Grain.YEAR:
        return str(moment.year)
    if grain is Grain.WEEK:
        return f"week of {moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d}"


def _iso(period: Any) -> str:
    return str(pd.Timestamp(period).strftime("%Y-%m-%d"))


def trend(
    source: Source,
    kpi: Kpi,
    *,
    as_of: dt.datetime,
    grain: Grain,
    by: Sequence[str] = (),
    options: Options | None = None,
    csv_href: str | None = None,
) -> Chart:
    """A KPI over the last periods: one line with its 95% band, or one line per breakdown value."""
    frame = _series(source, kpi, grain, as_of, options or Options(), by)
    dims = list(by)
    columns = ["period", *dims, "value", "n", "ci_low", "ci_high", "warning"]
    table = Table.from_frame(frame, columns)
    for row in table.rows:
        row[0] = _iso(row[0])
    title = f"{kpi.name} by {grain.value}" + (f", by {', '.join(dims)}" if dims else "")
    if not dims:
        x = [_iso(p) for p in frame["period"]]
        return line_chart(
            "trend",
            title,
            [(kpi.name, x, list(frame["value"]))],
            table=table,
            y_title=kpi.unit,
            bands=[(x, list(frame["ci_low"]), list(frame["ci_high"]))],
            csv_href=csv_href,
        )
    label = pd.Series(
        [
            " · ".join("(none)" if missing(v) else str(v) for v in values)
            for values in frame[dims].itertuples(index=False)
        ],
        index=frame.index,
    )
    biggest = frame.assign(_label=label).groupby("_label")["n"].sum().sort_values(ascending=False)
    series = []
    for name in list(biggest.index)[:MAX_LINES]:
        part = frame[label == name]
        series.append((str(name), [_iso(p) for p in part["period"]], list(part["value"])))
    chart = line_chart("trend", title, series, table=table, y_title=kpi.unit, csv_href=csv_href)
    if len(biggest) > MAX_LINES:
        chart.title += f" (the {MAX_LINES} largest of {len(biggest)} shown; the table has all)"
    return chart


def cohort_heatmap(
    matrix: pd.DataFrame, *, as_of: dt.datetime, grain: Grain = Grain.MONTH, csv_href: str | None = None
) -> Chart:
    """Customer retention by acquisition cohort (rows) and age in periods (columns), for the
    cohorts of the last :data:`TREND_PERIODS` periods of ``matrix`` (``cxloop cohorts``)."""
    if len(matrix):
        matrix = matrix[pd.to_datetime(matrix["cohort"]) >= trend_start(as_of, grain)]
    columns = ["cohort", "age", "cohort_size", "customers", "retention", "revenue_retention", "complete"]
    cells = matrix.reindex(columns=columns)
    table = Table.from_frame(cells, columns)
    for row in table.rows:
        row[0] = _iso(row[0])
    cohorts_ = sorted({r[0] for r in table.rows})
    ages = sorted({int(r[1]) for r in table.rows})
    at = {(r[0], int(r[1])): r[4] for r in table.rows}
    z = [[at.get((c, a)) for a in ages] for c in cohorts_]
    return heatmap(
        "cohorts",
        f"Customers still buying, by first-purchase {grain.value} (%)",
        x=ages,
        y=cohorts_,
        z=z,
        table=table,
        x_title=f"{grain.value}s since first purchase",
        y_title="cohort",
        colour_title="%",
        csv_href=csv_href,
    )


def rfm_chart(segments: pd.DataFrame, *, csv_href: str | None = None) -> Chart:
    """Customers per RFM segment (``cxloop rfm``'s segments)."""
    frame = segments.reindex(columns=SEGMENT_COLUMNS)
    table = Table.from_frame(frame, SEGMENT_COLUMNS)
    return bar_chart(
        "rfm",
        "Customers by RFM segment",
        labels=list(frame["segment"]),
        values=list(frame["customers"].astype(float)),
        table=table,
        x_title="customers",
        csv_href=csv_href,
    )


def query_string(params: Mapping[str, Any]) -> str:
    """``?a=1&b=2`` without the empty parameters (for links that keep the page's choices)."""
    kept = {k: v for k, v in params.items() if v not in (None, "", [], ())}
    return "?" + urlencode(kept, doseq=True) if kept else ""
