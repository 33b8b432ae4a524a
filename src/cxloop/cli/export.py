"""``cxloop export TABLE``: one table of the store to a CSV or Parquet file."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import print_json, stdout
from cxloop.exports import ExportFormat, export_filename, export_table


class Table(StrEnum):
    """The tables ``cxloop export`` writes (``cxloop.exports.EXPORT_TABLES``)."""

    customers = "customers"
    orders = "orders"
    order_lines = "order_lines"
    survey_responses = "survey_responses"
    tickets = "tickets"
    reviews = "reviews"
    subscriptions = "subscriptions"


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"


def export(
    ctx: typer.Context,
    table: Table = typer.Argument(..., help="The table to export.", show_default=False),
    format_: Format = typer.Option(Format.csv, "--format", help="csv or parquet."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The file to write (default: TABLE.csv or TABLE.parquet here)."
    ),
    since: str | None = typer.Option(
        None, help="Only rows from this day or moment on, UTC (YYYY-MM-DD or ISO 8601)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print {table, format, file, rows} as JSON."),
) -> None:
    """Export a table as CSV (spreadsheet formulas neutralised) or Parquet (exact types)."""
    moment = _parse_moment(since)
    fmt: ExportFormat = "parquet" if format_ is Format.parquet else "csv"
    with reporting_errors():
        path = output or Path(export_filename(table.value, fmt, moment))
        with state(ctx).open_store() as store:
            written = export_table(store, table.value, fmt, path, since=moment)
        if as_json:
            print_json({"table": table.value, "format": fmt, "file": str(path), "rows": written})
            return
        stdout().print(f"Wrote {written:,} rows of {table.value} to {escape(str(path))}")


def _parse_moment(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time", param_hint="--since"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment
