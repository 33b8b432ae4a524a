"""``cxloop cases``: the closed loop from the shell — open cases from unhappy answers, list, show,
record a contact, close (optionally with a re-survey), assignment rules, KPIs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from cxloop import cases as core
from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import csv_option, json_option, print_json, print_rows, stdout

app = typer.Typer(
    help="Follow-up cases of detractors, low CSAT and negative comments (the closed loop).",
    no_args_is_help=True,
)

LIST_COLUMNS = (
    "case_id",
    "status",
    "reasons",
    "customer_id",
    "score",
    "assignee",
    "due_at",
    "overdue",
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _case_id() -> Any:
    return typer.Argument(..., metavar="CASE_ID", help="The case's id (K followed by 12 characters).")


@app.command("open")
def open_(
    ctx: typer.Context,
    days: float = typer.Option(30, "--days", min=0, help="Look at answers of the last DAYS days."),
    as_json: bool = typer.Option(False, "--json", help="Print the new case ids as a JSON array."),
) -> None:
    """Open a case for each recent unhappy answer that has none (cron-friendly: idempotent)."""
    now = _now()
    with reporting_errors(), state(ctx).open_store() as store:
        opened = core.open_cases(store, now=now, since=now - dt.timedelta(days=days))
    if as_json:
        print_json(opened)
    else:
        typer.echo(f"Opened {len(opened)} case(s).")


@app.command("list")
def list_(
    ctx: typer.Context,
    only_open: bool = typer.Option(False, "--open", help="Only open cases."),
    overdue: bool = typer.Option(False, "--overdue", help="Only cases past due without a follow-up."),
    assignee: str | None = typer.Option(
        None, "--assignee", metavar="EMAIL", help="Only this person's cases."
    ),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="At most this many cases."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Cases, the most urgent first: open before closed, then by due time."""
    with reporting_errors(), state(ctx).open_store() as store:
        page = core.list_cases(
            store,
            now=_now(),
            status="open" if only_open else None,
            overdue=overdue,
            assignee=assignee,
            limit=limit,
        )
    rows = page.items
    if not (as_json or as_csv):
        rows = [
            {k: (",".join(c[k]) if k == "reasons" else ("yes" if c[k] else "") if k == "overdue" else c[k])
             for k in LIST_COLUMNS}
            for c in rows
        ]  # fmt: skip
    print_rows(rows, title=f"Cases ({len(page.items)} of {page.total})", as_json=as_json, as_csv=as_csv)


@app.command()
def show(ctx: typer.Context, case_id: str = _case_id(), as_json: bool = json_option()) -> None:
    """One case: the answer, assignment and SLA, notes, and the customer's recent history."""
    with reporting_errors(), state(ctx).open_store() as store:
        view = core.get_case(store, case_id, now=_now(), history=20)
    data = {
        "case": view.case,
        "notes": view.notes,
        "previous_cases": [c["case_id"] for c in view.previous_cases],
        "history": view.history.timeline if view.history else [],
    }
    if as_json:
        print_json(data)
        return
    case = view.case
    out = stdout()
    out.print(
        f"[bold]{case['case_id']}[/] · {case['status']} · {', '.join(case['reasons'])}", highlight=False
    )
    for key in ("customer_id", "survey_id", "kind", "score", "assignee", "rule", "opened_at", "due_at",
                "first_contact_at", "closed_at", "outcome", "root_cause"):  # fmt: skip
        if case[key] is not None:
            out.print(f"{key.replace('_', ' ')}: {case[key]}", highlight=False, markup=False)
    if case["overdue"]:
        out.print("[bold red]overdue[/]: no follow-up yet and past due")
    if case["comment"]:
        out.print(f"comment: {case['comment']}", highlight=False, markup=False)
    for note in view.notes:
        out.print(
            f"- {note['noted_at']} {note['kind']} ({note['author'] or '-'}): {note['text']}", markup=False
        )
    if view.history:
        out.print(f"history ({len(view.history.timeline)} latest events):", highlight=False)
        for e in view.history.timeline:
            what = e.get("comment") or e.get("subject") or e.get("status") or ""
            score = f" score {e['score']:g}" if e.get("score") is not None else ""
            out.print(
                f"  {e['at']:%Y-%m-%d} {e['type']} {e['id']}{score} {what}", markup=False, highlight=False
            )


@app.command()
def contact(
    ctx: typer.Context,
    case_id: str = _case_id(),
    text: str = typer.Argument(..., help="How the customer was contacted and what was said."),
    author: str | None = typer.Option(None, "--author", metavar="EMAIL", help="Who made the contact."),
) -> None:
    """Record a contact with the customer (the first one ends the SLA clock)."""
    with reporting_errors(), state(ctx).open_store() as store:
        core.record_contact(store, case_id, text=text, author=author, now=_now())
    typer.echo(f"Recorded a contact on {case_id}.")


@app.command()
def close(
    ctx: typer.Context,
    case_id: str = _case_id(),
    outcome: str = typer.Option(..., "--outcome", help="What came of the follow-up."),
    root_cause: str = typer.Option(..., "--root-cause", help="Why the customer was unhappy."),
    contact_text: str | None = typer.Option(None, "--contact", help="Record this contact too."),
    author: str | None = typer.Option(None, "--author", metavar="EMAIL", help="Who closes it."),
    resurvey: str | None = typer.Option(
        None, "--resurvey", metavar="SURVEY", help="Mail the customer this (live) survey once closed."
    ),
) -> None:
    """Close a case with its outcome and root cause."""
    with reporting_errors(), state(ctx).open_store() as store:
        now = _now()
        send = None
        if resurvey is not None:
            from cxloop.surveys.distribution import resurvey_callback

            send = resurvey_callback(store, resurvey, now=now)
        closed = core.close_case(
            store, case_id, outcome=outcome, root_cause=root_cause, author=author, now=now,
            contact=contact_text, resurvey=send,
        )  # fmt: skip
    extra = (
        f"; re-survey sent ({closed['resurvey_delivery_id']})" if closed.get("resurvey_delivery_id") else ""
    )
    typer.echo(f"Closed {case_id}{extra}.")


@app.command()
def rules(
    ctx: typer.Context,
    file: Path | None = typer.Argument(
        None, exists=True, dir_okay=False, help="A TOML file of [[rule]] tables."
    ),
    as_json: bool = json_option(),
) -> None:
    """Show the assignment rules, or replace them with those of FILE."""
    with reporting_errors(), state(ctx).open_store() as store:
        if file is not None:
            core.save_rules(store, core.rules_from_toml(file.read_text(encoding="utf-8")))
        with store.engine.connect() as conn:
            found = core.load_rules(conn)
    rows = [
        {"name": r.name, "segment": r.segment, "region": r.region, "team": r.team,
         "assignees": ",".join(r.assignees), "sla_hours": r.sla_hours}
        for r in found
    ]  # fmt: skip
    print_rows(rows, title="Assignment rules (first match wins)", as_json=as_json)


@app.command()
def kpis(
    ctx: typer.Context,
    days: int = typer.Option(30, "--days", min=1, help="Cases opened in the last DAYS days."),
    as_json: bool = typer.Option(False, "--json", help="Print the KPIs as a JSON object."),
) -> None:
    """Case KPIs: time to first follow-up, % within SLA, detractors recovered."""
    now = _now()
    with reporting_errors(), state(ctx).open_store() as store:
        k = core.case_kpis(store, start=now - dt.timedelta(days=days), end=now, now=now)
    if as_json:
        print_json(k.as_dict())
        return
    print_rows(
        [{"kpi": key, "value": value} for key, value in k.as_dict().items()], title=f"Cases, last {days} days"
    )
