"""``cxloop value survival``: Kaplan-Meier retention curves and a shifted-beta-geometric forecast."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.metrics import as_of_option
from cxloop.cli.output import csv_option, json_option, print_rows, stdout


def survival(
    ctx: typer.Context,
    by: str | None = typer.Option(
        None,
        "--by",
        help="One curve per value of: plan, source, segment, region, country, acquisition_channel.",
    ),
    periods: int | None = typer.Option(
        None, "--periods", min=1, help="Fit the sBG model on the first N periods (default: all observed)."
    ),
    forecast: int = typer.Option(0, "--forecast", min=0, help="Project the sBG curve N periods further."),
    unit: str = typer.Option("month", "--unit", help="Length of a period: day, week, month or year."),
    summary: bool = typer.Option(
        False, "--summary", help="One row per segment: median lifetime and sBG parameters."
    ),
    as_of: dt.datetime | None = as_of_option(),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Retention curves of subscriptions by segment (Kaplan-Meier, 95% Greenwood interval) and
    their shifted-beta-geometric fit and forecast."""
    from cxloop.metrics.frames import records
    from cxloop.metrics.source import store_source
    from cxloop.value.survival import survival_report

    with reporting_errors():
        moment = as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with store_source(state(ctx).open_store()) as source:
            report = survival_report(
                source, as_of=moment, by=by, unit=unit, periods=periods, forecast=forecast
            )
        frame = report.summary_frame() if summary else report.curve_frame()
        rows = records(frame)
        title = f"Subscription survival by {by or 'all'} ({unit}s, as of {moment:%Y-%m-%d})"
        if as_json or as_csv:
            print_rows(rows, title=title, as_json=as_json, as_csv=as_csv)
            return
        shown = [_summary_cells(r) for r in rows] if summary else [_curve_cells(r) for r in rows]
        print_rows(shown, title=title)
        if not summary:
            for row in records(report.summary_frame()):
                median = row["median_periods"]
                said = f"median {median} {unit}s" if median is not None else "median not reached"
                stdout().print(f"{row['segment']}: {row['subscriptions']:,} subscriptions, {said}")


def _num(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _curve_cells(row: dict[str, Any]) -> dict[str, Any]:
    low, high = row["ci_low"], row["ci_high"]
    return {
        "segment": row["segment"],
        "period": row["period"],
        "at_risk": row["at_risk"],
        "churned": row["churned"],
        "censored": row["censored"],
        "survival": _num(row["survival"]),
        "95% CI": "" if low is None else f"{low:.3f}–{high:.3f}",
        "sBG": _num(row["sbg_survival"]),
        "phase": row["phase"],
    }


def _summary_cells(row: dict[str, Any]) -> dict[str, Any]:
    def with_se(value: Any, se: Any) -> str:
        return "" if value is None else _num(value) + ("" if se is None else f" ± {se:.3f}")

    low, high = row["median_ci_low"], row["median_ci_high"]
    median = row["median_periods"]
    return {
        "segment": row["segment"],
        "subscriptions": row["subscriptions"],
        "churned": row["churned"],
        "median": "" if median is None else f"{median} ({low}–{high if high is not None else '…'})",
        "alpha": with_se(row["sbg_alpha"], row["sbg_alpha_se"]),
        "beta": with_se(row["sbg_beta"], row["sbg_beta_se"]),
        "churn rate": _num(row["sbg_churn_rate"], 4),
        "note": row["note"],
    }
