"""``cxloop kpi``, ``cxloop summary``, ``cxloop cohorts``, ``cxloop rfm``: the metrics layer."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import csv_option, json_option, print_rows, stdout

if TYPE_CHECKING:
    import pandas as pd

    from cxloop.metrics.source import Source

app = typer.Typer(help="KPIs: list them, compute one with its confidence interval.", no_args_is_help=True)

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def kpis_file_option() -> Any:
    return typer.Option(
        None,
        "--kpis",
        help="A TOML file of your own KPIs (docs/metrics.md; default: $CXLOOP_KPIS_FILE).",
        metavar="FILE",
        exists=True,
    )


def as_of_option() -> Any:
    return typer.Option(
        None, "--as-of", formats=DATE_FORMATS, help="Compute as of this moment, UTC (default: now)."
    )


def grain_option(default: str = "month") -> Any:
    return typer.Option(default, "--grain", help="day, week, month, quarter, year or all.")


def active_days_option() -> Any:
    return typer.Option(
        90, "--active-days", min=1, help="A customer is active with a purchase in this many days."
    )


@contextmanager
def opened(ctx: typer.Context) -> Iterator[Source]:
    # Imported here: Ibis and SciPy take a second to import, which other commands need not pay.
    from cxloop.metrics.source import store_source

    with store_source(state(ctx).open_store()) as source:
        yield source


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values (:func:`cxloop.metrics.frames.records`, shared with the API)."""
    from cxloop.metrics.frames import records as plain_records

    return plain_records(frame)


def for_terminal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compact rows for a terminal: rounded numbers, one interval column, short flags. JSON and
    CSV keep every column at full precision."""
    out = []
    for row in rows:
        shown: dict[str, Any] = {}
        for key, value in row.items():
            if key == "ci_high":
                continue
            if key == "ci_low":
                shown["95% CI"] = _interval(row)
            elif key == "n":
                shown["n"] = None if value is None else int(value)
            elif key == "warning":
                shown["note"] = "few observations" if value else ""
            elif key == "significant":
                shown["significant"] = {True: "yes", False: "no", None: ""}[value]
            elif key == "p_value":
                shown["p"] = None if value is None else f"{value:.3f}"
            else:
                shown[key] = round(value, 2) if isinstance(value, float) else value
        out.append(shown)
    return out


def show_rows(rows: list[dict[str, Any]], *, title: str, as_json: bool, as_csv: bool) -> None:
    if as_json or as_csv:
        print_rows(rows, title=title, as_json=as_json, as_csv=as_csv)
    elif not rows:
        stdout().print(f"{title}: no data in this range.")
    else:
        print_rows(for_terminal(rows), title=title)


def parse_where(values: list[str]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{item!r} is not DIMENSION=VALUE", param_hint="--where")
        where.setdefault(name.strip(), []).extend(v.strip() for v in value.split(","))
    return where


def split_by(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@app.command("list")
def list_kpis(
    kpis_file: Path | None = kpis_file_option(),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Every KPI: id, name, formula, unit, direction, tables, default grain, interval method."""
    from cxloop.metrics import api

    with reporting_errors():
        rows = [k.describe() for k in api.kpis(kpis_file)]
        if not (as_json or as_csv):
            rows = [{c: r[c] for c in ("id", "name", "formula", "unit", "direction")} for r in rows]
        else:
            rows = [
                {**r, "tables": ", ".join(r["tables"]), "dimensions": ", ".join(r["dimensions"])}
                if as_csv
                else r
                for r in rows
            ]
        print_rows(rows, title="KPIs", as_json=as_json, as_csv=as_csv)


@app.command("show")
def show(
    ctx: typer.Context,
    kpi: str = typer.Argument(..., help="The KPI id (`cxloop kpi list`)."),
    grain: str = grain_option(),
    by: list[str] = typer.Option([], "--by", help="Break down by a dimension (repeat, or comma-separate)."),
    where: list[str] = typer.Option(
        [], "--where", help="Keep DIMENSION=VALUE[,VALUE] (repeatable).", metavar="DIM=VALUE"
    ),
    start: dt.datetime | None = typer.Option(
        None, "--from", formats=DATE_FORMATS, help="First day (inclusive)."
    ),
    end: dt.datetime | None = typer.Option(
        None, "--to", formats=DATE_FORMATS, help="End (exclusive; default: as of)."
    ),
    as_of: dt.datetime | None = as_of_option(),
    change: bool = typer.Option(
        False, "--change", help="Add the previous period, the change and its significance."
    ),
    active_days: int = active_days_option(),
    min_n: int = typer.Option(30, "--min-n", min=1, help="Warn when a rate rests on fewer observations."),
    kpis_file: Path | None = kpis_file_option(),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """One KPI per period (and breakdown): value, n, 95% interval and warning."""
    from cxloop.metrics import Options, api

    with reporting_errors():
        definition = api.kpis(kpis_file).get(kpi)
        options = Options(active_days=active_days, min_n=min_n)
        with opened(ctx) as source:
            frame = api.compute(
                source,
                definition,
                grain=grain,
                by=split_by(by),
                where=parse_where(where),
                start=start,
                end=end,
                as_of=as_of,
                change=change,
                options=options,
            )
        show_rows(
            records(frame), title=f"{definition.name} ({definition.unit})", as_json=as_json, as_csv=as_csv
        )


def summary(
    ctx: typer.Context,
    grain: str = grain_option(),
    as_of: dt.datetime | None = as_of_option(),
    kpi: list[str] = typer.Option([], "--kpi", help="Only these KPIs (repeat, or comma-separate)."),
    active_days: int = active_days_option(),
    kpis_file: Path | None = kpis_file_option(),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Headline KPIs for the last complete period against the one before."""
    from cxloop.metrics import Options, api

    with reporting_errors():
        with opened(ctx) as source:
            frame = api.summary(
                source,
                as_of=as_of,
                grain=grain,
                kpi_ids=split_by(kpi) or None,
                options=Options(active_days=active_days),
                custom_file=kpis_file,
            )
        rows = records(frame)
        period = rows[0]["period"] if rows else None
        title = f"Summary: {period} ({grain}) against the {grain} before"
        if not (as_json or as_csv):
            rows = [
                {
                    "kpi": r["name"],
                    "value": r["value"],
                    "unit": r["unit"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    "previous": r["previous"],
                    "change": r["change"],
                    "verdict": r["verdict"] + (" (few observations)" if r["warning"] else ""),
                }
                for r in rows
            ]
        show_rows(rows, title=title, as_json=as_json, as_csv=as_csv)


def _interval(row: dict[str, Any]) -> str:
    low, high = row.get("ci_low"), row.get("ci_high")
    return "" if low is None or high is None else f"{low:,.2f} to {high:,.2f}"


def cohorts(
    ctx: typer.Context,
    grain: str = grain_option(),
    start: dt.datetime | None = typer.Option(
        None, "--from", formats=DATE_FORMATS, help="First cohort to show (its period's first day)."
    ),
    end: dt.datetime | None = typer.Option(None, "--to", formats=DATE_FORMATS, help="Cohorts before this."),
    as_of: dt.datetime | None = as_of_option(),
    by: list[str] = typer.Option(
        [], "--by", help="One matrix per customer dimension (segment, region, ...)."
    ),
    where: list[str] = typer.Option(
        [], "--where", help="Keep DIMENSION=VALUE[,VALUE] (repeatable).", metavar="DIM=VALUE"
    ),
    revenue: bool = typer.Option(False, "--revenue", help="Show revenue retention instead of customers."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the tidy matrix: one object per cohort and age."
    ),
    as_csv: bool = typer.Option(False, "--csv", help="Print the tidy matrix as CSV."),
) -> None:
    """The cohort retention matrix: share of each cohort buying again k periods later."""
    from cxloop.metrics import average_curve, cohorts

    with reporting_errors():
        with opened(ctx) as source:
            matrix = cohorts(
                source,
                grain=grain,
                start=start,
                end=end,
                as_of=as_of,
                by=split_by(by),
                where=parse_where(where),
            )
        if as_json or as_csv:
            print_rows(records(matrix), title="Cohorts", as_json=as_json, as_csv=as_csv)
            return
        if matrix.empty:
            stdout().print("Cohorts: no purchases in this range.")
            return
        measure = "revenue_retention" if revenue else "retention"
        dims = split_by(by)
        curve = average_curve(matrix)
        what = "revenue retention" if revenue else "retention"
        groups = matrix.groupby(dims, dropna=False) if dims else [((), matrix)]
        for key, part in groups:
            values = key if isinstance(key, tuple) else (key,)
            mine = curve
            for dim, value in zip(dims, values, strict=True):
                mine = mine[mine[dim] == value]
            label = ", ".join(f"{d}={v}" for d, v in zip(dims, values, strict=True))
            title = f"Cohort {what} (%) by {grain} since the first purchase" + (f": {label}" if label else "")
            print_rows(_matrix_rows(part, mine, measure), title=title)


def _matrix_rows(matrix: pd.DataFrame, curve: pd.DataFrame, measure: str) -> list[dict[str, Any]]:
    """One row per cohort with a column per age, then the average curve."""
    rows: list[dict[str, Any]] = []
    for cohort, cells in matrix.groupby("cohort", sort=True):
        row: dict[str, Any] = {"cohort": cohort, "customers": int(cells["cohort_size"].iloc[0])}
        row.update({str(int(a)): _percent(v) for a, v in zip(cells["age"], cells[measure], strict=True)})
        rows.append(row)
    average: dict[str, Any] = {"cohort": "average", "customers": sum(r["customers"] for r in rows)}
    average.update({str(int(a)): _percent(v) for a, v in zip(curve["age"], curve[measure], strict=True)})
    ages = [str(a) for a in sorted(int(a) for a in curve["age"])]
    return [
        {"cohort": r["cohort"], "customers": r["customers"], **{a: r.get(a, "") for a in ages}}
        for r in [*rows, average]
    ]


def _percent(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{number:.1f}"


def rfm(
    ctx: typer.Context,
    as_of: dt.datetime | None = as_of_option(),
    lookback_days: int | None = typer.Option(
        None, "--lookback-days", min=1, help="Only purchases in this many days before as of."
    ),
    customers: bool = typer.Option(
        False, "--customers", help="One row per customer (scores and segment) instead of the segments."
    ),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """RFM: recency, frequency and monetary quintiles, and the named segments they make."""
    from cxloop.metrics import rfm, rfm_segments

    with reporting_errors():
        with opened(ctx) as source:
            table = rfm(source, as_of=as_of, lookback_days=lookback_days)
        if customers:
            print_rows(records(table), title="RFM by customer", as_json=as_json, as_csv=as_csv)
            return
        segments = records(rfm_segments(table))
        show_rows(segments, title=f"RFM segments ({len(table):,} customers)", as_json=as_json, as_csv=as_csv)
