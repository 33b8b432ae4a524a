"""``cxloop demo``: a coherent synthetic business to explore cxloop with."""

from __future__ import annotations

import datetime as dt

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import print_json, print_rows, stderr, stdout
from cxloop.demo_store import load_demo
from cxloop.status import store_status


def demo(
    ctx: typer.Context,
    customers: int = typer.Option(5_000, min=10, help="How many customers (about 10 order lines each)."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same business."),
    as_of: str | None = typer.Option(
        None, help="The day the data ends, YYYY-MM-DD (default: today, so the KPIs are current)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the import results as JSON."),
) -> None:
    """Generate a demo business over 2.5 years and load it into the store."""
    with reporting_errors():
        day = _parse_day(as_of)
        store = state(ctx).open_store()
        console = stderr()
        with (
            console.status("generating", spinner="dots")
            if console.is_terminal and not as_json
            else _nullcontext() as status
        ):
            results = load_demo(
                store,
                customers=customers,
                seed=seed,
                as_of=day,
                on_table=(lambda name: status.update(f"loading {name}")) if status else None,
            )
        rows = [
            {
                "table": r.entity,
                "source": r.source,
                "rows_read": r.rows_read,
                "loaded": r.loaded,
                "updated": r.updated,
                "unchanged": r.unchanged,
                "rejected": r.rejected,
            }
            for r in results
        ]
        if as_json:
            print_json(rows)
            return
        print_rows(rows, title=f"Demo business loaded into {store.url}")
        report = store_status(store)
        print_rows(report["tables"], title="What the store holds")
        stdout().print(
            "Next: `cxloop summary` (headline KPIs), `cxloop kpi list`, `cxloop status`, "
            "or import your own data with `cxloop import --help`."
        )


def _parse_day(value: str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-01-01", param_hint="--as-of") from None


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
