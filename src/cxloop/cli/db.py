"""``cxloop db``: the schema."""

from __future__ import annotations

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import csv_option, json_option, print_rows
from cxloop.store import migrate
from cxloop.store.store import Store

app = typer.Typer(help="Create or upgrade the database schema.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations (safe to run any time; also done on first use)."""
    with reporting_errors():
        store = state(ctx).open_store()
        with store.engine.connect() as conn:
            revision = migrate.current_revision(conn)
        typer.echo(f"{store.url}: schema at revision {revision} (head {migrate.head_revision()})")


@app.command()
def current(ctx: typer.Context, as_json: bool = json_option(), as_csv: bool = csv_option()) -> None:
    """Show the schema revision without changing anything."""
    with reporting_errors():
        store = Store.open(state(ctx).database_url, upgrade=False)
        with store.engine.connect() as conn:
            revision = migrate.current_revision(conn)
        print_rows(
            [{"database": store.url, "revision": revision, "head": migrate.head_revision()}],
            title="Schema",
            as_json=as_json,
            as_csv=as_csv,
        )
