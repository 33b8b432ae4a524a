"""``cxloop surveys send``, ``opt-out``, ``triggers`` and ``embed``: distribution from the shell.

Added to the ``surveys`` command group by :func:`register`. Mail goes through the SMTP server of
``CXLOOP_SMTP_*``; links point at ``CXLOOP_SURVEY_BASE_URL``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.output import json_option, print_json, print_rows, stderr
from cxloop.errors import CxloopError
from cxloop.surveys.distribution import DistributionSettings, SendReport, send_survey
from cxloop.surveys.email import DEFAULT_TEMPLATE, EmailTemplate, SmtpSender, SmtpSettings
from cxloop.surveys.fatigue import opt_out as record_opt_out
from cxloop.surveys.links import survey_of_token
from cxloop.surveys.triggers import EVENTS, add_trigger, embed_note, embed_snippet, list_triggers, send_due
from cxloop.surveys.versions import get_survey

triggers_app = typer.Typer(
    help="Send a survey some time after an order or a resolved ticket.", no_args_is_help=True
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _template(path: Path | None) -> EmailTemplate:
    if path is None:
        return DEFAULT_TEMPLATE
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        template = EmailTemplate(subject=str(data["subject"]), body=str(data["body"]))
        template.check()
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise CxloopError(f"{path}: {exc if not isinstance(exc, KeyError) else f'missing {exc}'}") from None
    return template


def _print(reports: dict[str, SendReport], as_json: bool) -> None:
    rows = [{"step": step, **row} for step, report in reports.items() for row in report.rows()]
    if as_json:
        print_json(rows)
        return
    for step, report in reports.items():
        done = "would send" if report.dry_run else "sent"
        typer.echo(
            f"{step}: {len(report.sent)} {done}, {len(report.failed)} failed, {len(report.skipped)} skipped"
        )
    problems = [r for r in rows if r["outcome"] == "failed"]
    if problems:
        print_rows(problems, title="Failed (tried once more by the next `send --due`)")


def send(
    ctx: typer.Context,
    survey: str | None = typer.Argument(
        None, metavar="SURVEY", help="The survey's id (with --due: optional)."
    ),
    segment: str | None = typer.Option(None, "--segment", help="Only customers of this segment."),
    due: bool = typer.Option(
        False, "--due", help="Send what is due: triggered invitations, reminders, retries (for cron)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say who would be mailed; send and record nothing."
    ),
    template: Path | None = typer.Option(
        None,
        "--template",
        exists=True,
        dir_okay=False,
        help="TOML with subject and body ($name, $link, ...).",
    ),
    as_json: bool = json_option(),
) -> None:
    """Email a survey to a segment now, or (--due) whatever triggers, reminders and retries are due.

    Opted-out customers are never mailed; nobody is asked more than once per
    CXLOOP_SURVEY_FATIGUE_DAYS (30) days across surveys."""
    if not due and survey is None:
        raise typer.BadParameter("give a SURVEY, or --due", param_hint="SURVEY")
    settings = DistributionSettings()
    with reporting_errors(), state(ctx).open_store() as store, SmtpSender(SmtpSettings()) as mailer:
        now = _now()
        if due:
            reports = send_due(
                store, mailer=mailer, now=now, settings=settings, survey_id=survey, dry_run=dry_run
            )
        else:
            assert survey is not None
            report = send_survey(
                store, survey, mailer=mailer, now=now, settings=settings, segment=segment,
                template=_template(template), dry_run=dry_run,
            )  # fmt: skip
            reports = {"invitations": report}
    _print(reports, as_json)


def opt_out(
    ctx: typer.Context,
    customer_id: str = typer.Argument(
        ..., metavar="CUSTOMER_ID", help="The customer who asked for no surveys."
    ),
) -> None:
    """Record that a customer wants no more surveys (for good)."""
    with reporting_errors(), state(ctx).open_store() as store:
        new = record_opt_out(store, customer_id, now=_now(), via="cli")
    typer.echo(f"{customer_id} {'opted out' if new else 'had opted out already'}.")


@triggers_app.command("add")
def triggers_add(
    ctx: typer.Context,
    survey: str = typer.Argument(..., metavar="SURVEY"),
    after: str = typer.Option(..., "--after", help=f"The event: {' or '.join(EVENTS)}."),
    delay_days: float = typer.Option(2, "--delay-days", min=0, help="How long after the event."),
) -> None:
    """Send SURVEY DAYS after each order or resolved ticket from now on (by `send --due`)."""
    with reporting_errors(), state(ctx).open_store() as store:
        t = add_trigger(store, survey, event=after, delay_hours=round(delay_days * 24), now=_now())
    typer.echo(f"Trigger {t.trigger_id}: {t.survey_id} {t.delay_hours} h after each {t.event}.")


@triggers_app.command("list")
def triggers_list(ctx: typer.Context, as_json: bool = json_option()) -> None:
    """The triggers."""
    with reporting_errors(), state(ctx).open_store() as store:
        rows = [t.__dict__ for t in list_triggers(store)]
    print_rows(rows, title="Triggers", as_json=as_json)


def embed(
    ctx: typer.Context,
    url: str = typer.Argument(
        ...,
        metavar="URL",
        help="The survey's public link (the survey's page, or POST /api/v1/surveys/{id}/links with public).",
    ),
    iframe: bool = typer.Option(
        False,
        "--iframe",
        help="Embed the answer page instead of linking to it; it shows only on the sites the survey's "
        "embed_origins name (the link is looked up in the store).",
    ),
    title: str = typer.Option(
        "Tell us what you think", "--title", help="The link's text or the frame's title."
    ),
) -> None:
    """Print the HTML to paste into a website or app (no script, nothing third-party)."""
    origins: tuple[str, ...] | None = None
    if iframe:
        token = urlsplit(url).path.rstrip("/").rpartition("/")[2]
        with reporting_errors(), state(ctx).open_store() as store:
            survey_id = survey_of_token(store, token) if token else None
            if survey_id is None:
                raise CxloopError(f"{url}: not a survey link of this store (check the link and --db)")
            origins = get_survey(store, survey_id).definition.frame_ancestors
        if not origins:
            note = escape(f"survey {survey_id!r}: {embed_note(origins)}")
            stderr().print(f"[yellow]warning:[/] {note}", highlight=False)
    snippet = embed_snippet(url, kind="iframe" if iframe else "link", title=title, origins=origins)
    typer.echo(snippet, nl=False)


def register(app: typer.Typer) -> None:
    """Add these commands to the ``surveys`` group."""
    app.command("send")(send)
    app.command("opt-out")(opt_out)
    app.command("embed")(embed)
    app.add_typer(triggers_app, name="triggers")
