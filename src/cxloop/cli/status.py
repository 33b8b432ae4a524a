"""``cxloop status``: what the store holds and what was imported last."""

from __future__ import annotations

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import print_csv, print_json, print_rows, stdout
from cxloop.status import store_status


def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: {database, revision, tables: [...], imports: [...]}."
    ),
    as_csv: bool = typer.Option(False, "--csv", help="Print the tables as CSV."),
    imports: int = typer.Option(5, help="How many recent imports to list."),
) -> None:
    """Tables with row counts and time spans, and the last imports."""
    with reporting_errors():
        report = store_status(state(ctx).open_store(), recent_imports_limit=imports)
        if as_json:
            print_json(report)
            return
        if as_csv:
            print_csv(report["tables"])
            return
        stdout().print(f"Database: {report['database']} (schema {report['revision']})")
        print_rows(report["tables"], title="Tables")
        if report["imports"]:
            print_rows(report["imports"], title="Last imports")
