"""Rendering for every command: a Rich table on a terminal, or ``--json`` / ``--csv``.

``--json`` prints a JSON array of row objects with snake_case keys (an object for single
results); ``--csv`` prints CSV with formula-looking text neutralised.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cxloop.ingest.csvsafe import neutralise


def json_option() -> Any:
    return typer.Option(False, "--json", help="Print a JSON array of row objects.")


def csv_option() -> Any:
    return typer.Option(False, "--csv", help="Print CSV (formula-looking text neutralised).")


def stdout() -> Console:
    return Console()


def stderr() -> Console:
    return Console(stderr=True)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def print_csv(rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: neutralise(to_jsonable(v)) for k, v in row.items()})


def print_rows(
    rows: Sequence[Mapping[str, Any]], *, title: str, as_json: bool = False, as_csv: bool = False
) -> None:
    """One table, in the format the user asked for."""
    if as_json:
        print_json(list(rows))
        return
    if as_csv:
        print_csv(rows)
        return
    table = Table(title=title, title_justify="left")
    columns = list(rows[0]) if rows else []
    for name in columns:
        table.add_column(name.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    stdout().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, int):
        return f"{value:,}"
    # Rich markup in untrusted text must show as text.
    from rich.markup import escape

    return escape(str(value))
