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
        None, "--kpis", help="A TOML file of your own KPIs (docs/metrics.md).", metavar="FILE", exists=True
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
    """Rows as plain Python values: NaN and NaT become None, numpy scalars Python numbers."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


def _plain(value: Any) -> Any:
    import pandas as pd

    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


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
