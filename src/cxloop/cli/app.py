"""The Typer application: global options, command groups, and error handling."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer
from rich.markup import escape

from cxloop import __version__
from cxloop.cli.output import stderr
from cxloop.errors import CxloopError, is_interrupted_query
from cxloop.store.store import Store

EXIT_ERROR = 1
EXIT_REJECTED = 3

app = typer.Typer(
    name="cxloop",
    help="cxloop: measure customer relationships and improve them continuously.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@dataclass
class State:
    database_url: str | None = None

    def open_store(self) -> Store:
        return Store.open(self.database_url)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn cxloop's own errors into one clear line on stderr and exit code 1."""
    try:
        yield
    except CxloopError as exc:
        stderr().print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_ERROR) from None
    except (KeyboardInterrupt, Exception) as exc:
        # Ctrl-C that lands inside any DuckDB query (opening the store, say) arrives as an error.
        if not isinstance(exc, KeyboardInterrupt) and not is_interrupted_query(exc):
            raise
        stderr().print("[yellow]interrupted: nothing was written[/]")
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cxloop {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None,
        "--db",
        help="Database URL or DuckDB file (default: $CXLOOP_DATABASE_URL, else ./cxloop.duckdb)",
        metavar="URL",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    ctx.obj = State(db)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def _register() -> None:
    from cxloop.cli import (
        db,
        demo,
        export,
        importing,
        metrics,
        presets,
        serve,
        status,
        surveys,
        users,
        value,
        voice,
    )

    app.add_typer(db.app, name="db")
    app.add_typer(importing.app, name="import")
    app.add_typer(presets.app, name="presets")
    app.add_typer(presets.mappings_app, name="mappings")
    app.command("demo")(demo.demo)
    app.command("status")(status.status)
    app.command("export")(export.export)
    app.add_typer(metrics.app, name="kpi")
    app.command("summary")(metrics.summary)
    app.command("cohorts")(metrics.cohorts)
    app.command("rfm")(metrics.rfm)
    app.command("serve")(serve.serve)
    app.add_typer(users.app, name="users")
    app.add_typer(users.tokens_app, name="tokens")
    app.add_typer(value.app, name="value")
    from cxloop.cli import cases, surveys_send

    app.add_typer(cases.app, name="cases")
    surveys_send.register(surveys.app)
    app.add_typer(surveys.app, name="surveys")
    app.add_typer(voice.app, name="voice")
    from cxloop.cli import competitors, sales

    app.add_typer(sales.app, name="sales")
    app.command("competitors")(competitors.competitors)


_register()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        # Imports are one transaction each: an interrupted one wrote nothing.
        stderr().print("[yellow]interrupted: nothing was written[/]")
        sys.exit(130)
    sys.exit(0)
