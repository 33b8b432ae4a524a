"""``cxloop surveys``: define surveys from files, list them, make answer links, read results."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import csv_option, json_option, print_json, print_rows, stdout
from cxloop.surveys import links, results, tracking, versions
from cxloop.surveys.definitions import load_definition

app = typer.Typer(
    help="Surveys: NPS, CSAT, CES and custom questions, answered through links.", no_args_is_help=True
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@app.command("create")
def create(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="The definition, a .toml or .json file"),
    live: bool = typer.Option(False, "--live", help="Open it for answers at once (default: a draft)"),
) -> None:
    """Create a survey from a file, or save the file as the next version of the survey it names."""
    with reporting_errors(), state(ctx).open_store() as store:
        definition = load_definition(file)
        now = _now()
        try:
            survey = versions.create_survey(store, definition, now=now)
        except versions.SurveyError:
            survey = versions.edit_survey(store, definition.id, definition, now=now)
        if live:
            versions.set_state(store, survey.survey_id, "live", now=now)
        stdout().print(
            f"survey {survey.survey_id}: version {survey.version}, {'live' if live else survey.state}"
        )


@app.command("list")
def list_surveys(ctx: typer.Context, as_json: bool = json_option(), as_csv: bool = csv_option()) -> None:
    """Every survey: id, name, kind, state, current version."""
    with reporting_errors(), state(ctx).open_store() as store:
        rows = [
            {
                "survey_id": s.survey_id,
                "name": s.name,
                "kind": s.definition.main.kind,
                "state": s.state,
                "version": s.version,
                "updated_at": s.updated_at,
            }
            for s in versions.list_surveys(store)
        ]
    print_rows(rows, title="Surveys", as_json=as_json, as_csv=as_csv)


@app.command("links")
def make_links(
    ctx: typer.Context,
    survey: str = typer.Argument(..., metavar="SURVEY"),
    segment: str | None = typer.Option(None, "--segment", help="Customers of this segment (default: all)"),
    out: Path = typer.Option(
        ..., "--out", help="Where to write the CSV (customer_id, email, url, expires_at)"
    ),
    base_url: str = typer.Option(
        "http://127.0.0.1:8000",
        "--base-url",
        envvar="CXLOOP_PUBLIC_URL",
        help="The server's address as customers reach it",
    ),
    channel: str = typer.Option("link", "--channel", help="Recorded with each invitation (email, sms, ...)"),
    days: float | None = typer.Option(
        None, "--days", help="Links expire after this many days (default: the survey's)"
    ),
) -> None:
    """One personal link per customer, as a CSV for a mail merge (the tokens are not kept)."""
    with reporting_errors(), state(ctx).open_store() as store:
        customers = links.segment_customers(store, segment)
        made = links.create_links(store, survey, customers, now=_now(), channel=channel, expires_in_days=days)
        out.write_text(links.links_csv(made, base_url), encoding="utf-8")
    stdout().print(f"{len(made)} links written to {out}")


@app.command("results")
def show_results(
    ctx: typer.Context,
    survey: str = typer.Argument(..., metavar="SURVEY"),
    grain: str = typer.Option("week", "--grain", help="day, week or month"),
    as_json: bool = json_option(),
) -> None:
    """The survey's KPI over time and its invitation funnel (sent, opened, started, completed)."""
    with reporting_errors(), state(ctx).open_store() as store:
        found = versions.get_survey(store, survey)
        kind, periods = results.over_time(store, survey, grain=grain)  # type: ignore[arg-type]
        funnel = tracking.funnel(store, survey)
    if as_json:
        print_json(
            {
                "survey_id": survey,
                "kind": found.definition.main.kind,
                "periods": [p.as_dict() for p in periods],
                "funnel": [f.as_dict() for f in funnel],
            }
        )
        return
    print_rows([p.as_dict() for p in periods], title=f"{found.name}: {kind.upper()} by {grain}")
    print_rows([f.as_dict() for f in funnel], title="Invitations")
