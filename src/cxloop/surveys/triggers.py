"""Triggers: a survey sent some time after an order or a resolved ticket; and the embed snippet.

A trigger (``survey_triggers``) names a survey, an event (``order``: the order's ``ordered_at``;
``ticket_resolved``: the ticket's ``resolved_at``) and a delay. :func:`send_due` — what
``cxloop surveys send --due`` runs from cron — finds every event whose time plus delay has come
(events before the trigger's ``starts_at`` are ignored, so a new trigger does not mail the whole
history), sends the invitations subject to opt-outs and fatigue, then the reminders and the one
retry of failed mails. Each event is handled once: its delivery carries the key
``trigger id:event id`` (unique), sent or skipped with the reason, so running it again, or twice at
once, mails nobody twice.

:func:`embed_snippet` is the HTML a website or app pastes to offer a survey's public link: a plain
link, or an ``<iframe>`` of the answer page. No script, nothing third-party. The frame shows only on
the sites the survey's definition names in ``embed_origins`` (the answer pages' ``frame-ancestors``);
:func:`embed_note` says which, or that there are none.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa

from cxloop.store import schema
from cxloop.store.schema import survey_deliveries, survey_triggers
from cxloop.store.store import Store
from cxloop.surveys.distribution import (
    DistributionSettings,
    SendReport,
    _insert,
    _skipped,
    retry_failed,
    send_reminders,
    send_survey,
)
from cxloop.surveys.email import Mailer
from cxloop.surveys.versions import SurveyError, get_survey

__all__ = [
    "EVENTS",
    "Trigger",
    "add_trigger",
    "due_events",
    "embed_note",
    "embed_snippet",
    "list_triggers",
    "send_due",
]

Event = Literal["order", "ticket_resolved"]
EVENTS: Final[tuple[Event, ...]] = ("order", "ticket_resolved")
T = survey_triggers
MAX_DELAY_HOURS: Final = 24 * 365


@dataclass(frozen=True)
class Trigger:
    trigger_id: str
    survey_id: str
    event: str
    delay_hours: int
    starts_at: dt.datetime
    active: bool
    created_at: dt.datetime


def add_trigger(
    store: Store,
    survey_id: str,
    *,
    event: str,
    delay_hours: int,
    now: dt.datetime,
    starts_at: dt.datetime | None = None,
) -> Trigger:
    """Send ``survey_id`` ``delay_hours`` after each ``event`` from ``starts_at`` (default now) on."""
    if event not in EVENTS:
        raise SurveyError(
            f"event: must be one of {', '.join(EVENTS)}, not {event!r}", status=422, field="event"
        )
    if not 0 <= delay_hours <= MAX_DELAY_HOURS:
        raise SurveyError(f"delay_hours: must be 0-{MAX_DELAY_HOURS}", status=422, field="delay_hours")
    get_survey(store, survey_id)  # unknown: SurveyError
    trigger = Trigger(secrets.token_hex(6), survey_id, event, delay_hours, starts_at or now, True, now)
    with store.engine.begin() as conn:
        conn.execute(T.insert().values(**trigger.__dict__))
    return trigger


def list_triggers(store: Store, *, active_only: bool = False) -> list[Trigger]:
    query = sa.select(T).order_by(T.c.created_at, T.c.trigger_id)
    if active_only:
        query = query.where(T.c.active.is_(True))
    with store.engine.connect() as conn:
        return [Trigger(**dict(r._mapping)) for r in conn.execute(query)]


def due_events(conn: sa.Connection, trigger: Trigger, *, now: dt.datetime) -> list[tuple[str, str]]:
    """(event id, customer id) of the trigger's events due at ``now`` and not handled yet, oldest first."""
    latest = now - dt.timedelta(hours=trigger.delay_hours)
    if trigger.event == "order":
        o = schema.orders
        event_id: sa.ColumnElement[Any] = o.c.order_id
        query = sa.select(event_id, o.c.customer_id, o.c.ordered_at).where(
            o.c.customer_id.is_not(None), o.c.ordered_at >= trigger.starts_at, o.c.ordered_at <= latest
        )
        at: sa.ColumnElement[Any] = o.c.ordered_at
    else:
        t = schema.tickets
        event_id = t.c.source.concat("/").concat(t.c.ticket_id)
        query = sa.select(event_id, t.c.customer_id, t.c.resolved_at).where(
            t.c.customer_id.is_not(None), t.c.resolved_at >= trigger.starts_at, t.c.resolved_at <= latest
        )
        at = t.c.resolved_at
    handled = sa.select(survey_deliveries.c.trigger_key).where(
        survey_deliveries.c.trigger_key.startswith(f"{trigger.trigger_id}:")
    )
    done = {str(k).split(":", 1)[1] for k in conn.execute(handled).scalars()}
    rows = conn.execute(query.order_by(at, event_id)).all()
    return [(str(r[0]), str(r[1])) for r in rows if str(r[0]) not in done]


def send_due(
    store: Store,
    *,
    mailer: Mailer | None,
    now: dt.datetime,
    settings: DistributionSettings,
    survey_id: str | None = None,
    dry_run: bool = False,
) -> dict[str, SendReport]:
    """Everything due at ``now``: triggered invitations, reminders, retries (``survey_id``: only
    that survey's). Idempotent; returns a report per step."""
    invited = SendReport(dry_run=dry_run)
    for trigger in list_triggers(store, active_only=True):
        if survey_id is not None and trigger.survey_id != survey_id:
            continue
        try:
            survey = get_survey(store, trigger.survey_id)
        except SurveyError:
            continue
        if survey.state != "live":
            continue
        with store.engine.connect() as conn:
            events = due_events(conn, trigger, now=now)
        # One invitation per customer per run: the customer's first due event; their other events
        # are handled too (skipped: fatigue), so that they are not reconsidered later.
        first: dict[str, str] = {}
        for event_id, customer_id in events:
            first.setdefault(customer_id, event_id)
        keys = {cid: f"{trigger.trigger_id}:{eid}" for cid, eid in first.items()}
        report = send_survey(
            store,
            trigger.survey_id,
            mailer=mailer,
            now=now,
            settings=settings,
            customer_ids=sorted(keys),
            dry_run=dry_run,
            trigger_keys=keys,
        )
        if not dry_run:
            _mark_other_events(store, trigger, events, first, now)
        invited.add(report)
    reminders = send_reminders(
        store, mailer=mailer, now=now, settings=settings, survey_id=survey_id, dry_run=dry_run
    )
    retries = retry_failed(store, mailer=mailer, now=now, settings=settings, dry_run=dry_run)
    return {"invitations": invited, "reminders": reminders, "retries": retries}


def _mark_other_events(
    store: Store, trigger: Trigger, events: list[tuple[str, str]], first: dict[str, str], now: dt.datetime
) -> None:
    rows = [
        _skipped(
            trigger.survey_id,
            cid,
            "invitation",
            now,
            "another event of this customer was handled in the same run",
            trigger_key=f"{trigger.trigger_id}:{eid}",
        )
        for eid, cid in events
        if first[cid] != eid
    ]
    with contextlib.suppress(sa.exc.IntegrityError):  # another run recorded them meanwhile
        _insert(store, rows)


def embed_note(origins: Sequence[str]) -> str:
    """Where an iframe of the survey shows: the sites its definition allows, or none."""
    if not origins:
        return (
            "This survey allows no other site to show it in a frame: browsers will refuse the iframe. "
            'Add your site to its definition, like embed_origins = ["https://shop.example.com"], '
            "or use the link."
        )
    return "The frame shows only on " + ", ".join(origins) + " (the survey's embed_origins)."


def embed_snippet(
    url: str,
    *,
    kind: Literal["link", "iframe"] = "link",
    title: str = "Tell us what you think",
    origins: Sequence[str] | None = None,
) -> str:
    """HTML to paste into a website or app: a link to the survey, or the answer page in an iframe.
    Only markup (no script), every value escaped. With the survey's ``origins`` (its
    ``embed_origins``) known, the iframe's snippet starts with a comment saying where it shows."""
    href, label = html.escape(url, quote=True), html.escape(title)
    if kind == "iframe":
        # The origins are checked (letters, digits, '.', '-', ':', '/', '*'): nothing ends a comment.
        note = f"<!-- {embed_note(origins)} -->\n" if origins is not None else ""
        return note + (
            f'<iframe src="{href}" title="{label}" width="100%" height="560" loading="lazy" '
            'style="border:0;max-width:40rem" referrerpolicy="no-referrer" '
            'sandbox="allow-forms allow-same-origin"></iframe>\n'
        )
    return f'<a href="{href}" target="_blank" rel="noopener">{label}</a>\n'
