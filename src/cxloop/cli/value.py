"""``cxloop value``: customer lifetime value, churn risk and subscription survival."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import typer

from cxloop.cli.app import reporting_errors
from cxloop.cli.metrics import DATE_FORMATS, as_of_option, opened, records
from cxloop.cli.output import csv_option, json_option, print_rows
from cxloop.cli.value_survival import survival

if TYPE_CHECKING:
    from cxloop.value.report import ValueQuery

app = typer.Typer(
    help="Customer value: fit BG/NBD and Gamma-Gamma, CLV, customers at risk, survival curves.",
    no_args_is_help=True,
)

app.command("survival")(survival)


def unit_option() -> Any:
    return typer.Option("weeks", "--unit", help="Time unit of the models: days or weeks.")


def model_option() -> Any:
    return typer.Option("bgnbd", "--model", help="Purchase model: bgnbd or paretonbd.")


def calibration_end_option() -> Any:
    return typer.Option(
        None,
        "--calibration-end",
        formats=["%Y-%m-%d"],
        help="Last day of data the models see (default: the day before --as-of).",
    )


def value_query(
    as_of: dt.datetime | None, calibration_end: dt.datetime | None, unit: str, model: str
) -> ValueQuery:
    from cxloop.value.report import ValueQuery, last_complete_day

    if calibration_end is not None:
        end = calibration_end.date()
    else:
        end = last_complete_day(as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return ValueQuery(calibration_end=end, unit=unit, model=model)


def for_terminal(rows: list[dict[str, Any]], columns: list[str] | None, places: int) -> list[dict[str, Any]]:
    """Rows for a terminal: the main columns, floats rounded, flags as yes/no (JSON and CSV keep
    every column at full precision)."""
    out = []
    for row in rows:
        shown = {k: v for k, v in row.items() if columns is None or k in columns}
        out.append(
            {
                k: ("yes" if v else "no")
                if isinstance(v, bool)
                else round(v, places)
                if isinstance(v, float)
                else v
                for k, v in shown.items()
            }
        )
    return out


def show(
    rows: list[dict[str, Any]],
    *,
    title: str,
    as_json: bool,
    as_csv: bool,
    places: int = 4,
    columns: list[str] | None = None,
) -> None:
    if as_json or as_csv:
        print_rows(rows, title=title, as_json=as_json, as_csv=as_csv)
    else:
        print_rows(for_terminal(rows, columns, places), title=title)


@app.command("fit")
def fit(
    ctx: typer.Context,
    as_of: dt.datetime | None = as_of_option(),
    calibration_end: dt.datetime | None = calibration_end_option(),
    unit: str = unit_option(),
    model: str = typer.Option(
        "bgnbd", "--model", help="Purchase model: bgnbd, paretonbd, or all (both; Pareto/NBD is slower)."
    ),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Fit the purchase model and Gamma-Gamma: parameters, standard errors, log-likelihood."""
    from cxloop.value.report import fit_rows

    with reporting_errors():
        query = value_query(as_of, calibration_end, unit, "bgnbd" if model == "all" else model)
        with opened(ctx) as source:
            rows = fit_rows(source, query, all_models=model == "all")
        show(
            rows,
            title=f"Value models (data to {query.calibration_end}, time in {unit})",
            as_json=as_json,
            as_csv=as_csv,
            columns=["model", "parameter", "value", "se", "log_likelihood", "customers", "converged"],
        )


@app.command("clv")
def clv(
    ctx: typer.Context,
    as_of: dt.datetime | None = as_of_option(),
    calibration_end: dt.datetime | None = calibration_end_option(),
    unit: str = unit_option(),
    model: str = model_option(),
    months: int = typer.Option(12, "--months", min=1, help="CLV horizon in months."),
    discount_rate: float = typer.Option(0.01, "--discount-rate", min=0, help="Discount rate per month."),
    margin: float = typer.Option(1.0, "--margin", help="Share of spend that is profit (1: revenue)."),
    top: int = typer.Option(20, "--top", min=0, help="Show the N most valuable customers (0: all)."),
    by: str | None = typer.Option(None, "--by", help="Totals per customer segment: --by segment."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Customer lifetime value per customer (most valuable first), or per segment."""
    from cxloop.value.clv import ClvOptions, clv_by_segment
    from cxloop.value.report import fitted, value_frame

    with reporting_errors():
        if by not in (None, "segment"):
            raise typer.BadParameter("only segment", param_hint="--by")
        query = value_query(as_of, calibration_end, unit, model)
        with opened(ctx) as source:
            result = fitted(source, query)
        values = value_frame(result, ClvOptions(months=months, discount_rate=discount_rate, margin=margin))
        if by == "segment":
            show(
                records(clv_by_segment(values)),
                title=f"CLV by segment, next {months} months",
                as_json=as_json,
                as_csv=as_csv,
                places=2,
            )
            return
        frame = values.head(top) if top else values
        columns = [
            "customer_id",
            "segment",
            "frequency",
            "p_alive",
            "expected_purchases",
            "expected_spend",
            "clv",
        ]
        show(
            records(frame),
            title=f"CLV, next {months} months",
            as_json=as_json,
            as_csv=as_csv,
            places=2,
            columns=columns,
        )


@app.command("at-risk")
def at_risk(
    ctx: typer.Context,
    as_of: dt.datetime | None = as_of_option(),
    calibration_end: dt.datetime | None = calibration_end_option(),
    unit: str = unit_option(),
    model: str = model_option(),
    max_p_alive: float = typer.Option(0.5, "--max-p-alive", help="List customers with P(alive) below this."),
    top_share: float = typer.Option(0.2, "--top-share", help="...whose past spend is in this top share."),
    min_spend: float | None = typer.Option(None, "--min-spend", help="...or at least this much (instead)."),
    min_purchases: int = typer.Option(2, "--min-purchases", min=1, help="...who bought on this many days."),
    currency: str = typer.Option("", "--currency", help="Written before amounts in the reason, e.g. '$'."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Valuable customers who are probably slipping away, each with the reason."""
    from cxloop.value.at_risk import AtRiskOptions
    from cxloop.value.report import at_risk_frame, fitted

    with reporting_errors():
        options = AtRiskOptions(
            max_p_alive=max_p_alive,
            top_share=top_share,
            min_spend=min_spend,
            min_purchases=min_purchases,
            currency=currency,
        )
        options.check()
        query = value_query(as_of, calibration_end, unit, model)
        with opened(ctx) as source:
            result = fitted(source, query)
        rows = records(at_risk_frame(result, options=options))
        show(
            rows,
            title=f"Customers at risk ({len(rows)})",
            as_json=as_json,
            as_csv=as_csv,
            places=2,
            columns=["customer_id", "segment", "clv", "reason"],
        )


@app.command("validate")
def validate(
    ctx: typer.Context,
    calibration_end: dt.datetime = typer.Option(
        ..., "--calibration-end", formats=["%Y-%m-%d"], help="Last day of the calibration period."
    ),
    holdout_end: dt.datetime = typer.Option(
        ..., "--holdout-end", formats=DATE_FORMATS[:1], help="Last day of the holdout period."
    ),
    unit: str = unit_option(),
    model: str = model_option(),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Fit on the calibration period; predicted against actual repeat purchases in the holdout,
    by calibration frequency and in all."""
    from cxloop.value.validation import validate as run

    with reporting_errors():
        with opened(ctx) as source:
            result = run(
                source,
                calibration_end=calibration_end.date(),
                holdout_end=holdout_end.date(),
                unit=unit,
                model=model,
            )
        show(
            records(result.table),
            title="Holdout: repeat purchases per customer",
            as_json=as_json,
            as_csv=as_csv,
            places=3,
        )
