"""Sending surveys by email: invitations to a segment, one reminder, one retry, re-surveys.

Every mail attempted is a row of ``survey_deliveries`` (purpose, status ``sent | failed |
skipped``, the reason, attempts); every invitation *sent* is also a row of
``survey_invitations`` (channel ``email``, ``sent_at``), the response rate's denominator. Before
anything is mailed, :func:`cxloop.surveys.fatigue.screen` removes the opted-out and those asked
within the fatigue window; customers without an email are skipped with that reason.

* :func:`send_survey` — invite customers (a segment, or given ids) now. ``dry_run`` writes nothing
  and says who would be mailed.
* :func:`send_reminders` — one reminder, ``reminder_days`` after an invitation, to those who have
  not answered that survey since (never to the opted-out).
* :func:`retry_failed` — a failed invitation is tried once more, ``retry_minutes`` later.
* :func:`send_resurvey` — the short re-survey when a case closes (opt-outs honoured; not subject to
  fatigue: it is the follow-up the customer was promised).

Links are stored hashed (:mod:`cxloop.surveys.links`), so a reminder or a retry carries a new link to
the same survey; an answer through any of the customer's links counts for their invitation (the
response rate pairs invitations and answers by survey and customer). Each mail's opt-out link has
its own token, kept as a SHA-256 on the delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cxloop.store import schema
from cxloop.store.schema import survey_deliveries
from cxloop.store.store import Store
from cxloop.surveys.email import (
    DEFAULT_TEMPLATE,
    REMINDER_TEMPLATE,
    RESURVEY_TEMPLATE,
    DeliveryError,
    EmailTemplate,
    Mailer,
    SmtpSender,
    SmtpSettings,
    build_message,
)
from cxloop.surveys.fatigue import screen
from cxloop.surveys.links import create_links, invitation_row, link_url
from cxloop.surveys.versions import Survey, SurveyError, get_survey

__all__ = [
    "DistributionSettings",
    "SendReport",
    "resurvey_callback",
    "retry_failed",
    "send_reminders",
    "send_resurvey",
    "send_survey",
    "sends_stamp",
    "sends_stamp_query",
]

D = survey_deliveries
MAX_ATTEMPTS: Final = 2


class DistributionSettings(BaseSettings):
    """``CXLOOP_SURVEY_BASE_URL`` (the address respondents open), ``_FATIGUE_DAYS``,
    ``_REMINDER_DAYS``, ``_RETRY_MINUTES``, ``_SENDER`` details are in :class:`SmtpSettings`."""

    model_config = SettingsConfigDict(env_prefix="CXLOOP_SURVEY_", extra="ignore")

    base_url: str = Field(default="http://127.0.0.1:8000", description="Public address of the answer pages")
    fatigue_days: float = Field(
        default=30, ge=0, description="Ask a customer at most once per this many days"
    )
    reminder_days: float = Field(default=3, gt=0, description="Remind those who have not answered after this")
    retry_minutes: float = Field(default=60, ge=0, description="Try a failed invitation again after this")


@dataclass
class SendReport:
    """What a run did (or, dry, would do), customer by customer."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.failed.update(other.failed)
        self.skipped.update(other.skipped)

    def rows(self) -> list[dict[str, str]]:
        """One row per customer: customer_id, outcome (sent | would send | failed | skipped), reason."""
        done = "would send" if self.dry_run else "sent"
        return (
            [{"customer_id": c, "outcome": done, "reason": ""} for c in self.sent]
            + [{"customer_id": c, "outcome": "failed", "reason": r} for c, r in self.failed.items()]
            + [{"customer_id": c, "outcome": "skipped", "reason": r} for c, r in self.skipped.items()]
        )


@dataclass(frozen=True)
class _Recipient:
    customer_id: str
    email: str | None
    name: str | None


def _recipients(conn: sa.Connection, segment: str | None, ids: Sequence[str] | None) -> list[_Recipient]:
    c = schema.customers
    query = sa.select(c.c.customer_id, c.c.email, c.c.name).order_by(c.c.customer_id)
    if segment is not None:
        query = query.where(c.c.segment == segment)
    if ids is not None:
        found: list[_Recipient] = []
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), 1000):
            chunk = query.where(c.c.customer_id.in_(wanted[start : start + 1000]))
            found += [_Recipient(r.customer_id, r.email, r.name) for r in conn.execute(chunk)]
        return sorted(found, key=lambda r: r.customer_id)
    return [_Recipient(r.customer_id, r.email, r.name) for r in conn.execute(query)]


def _new_delivery(
    survey_id: str,
    customer_id: str,
    purpose: str,
    now: dt.datetime,
    *,
    trigger_key: str | None = None,
    parent_id: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A delivery row (pending) and the opt-out token its mail will carry."""
    token = secrets.token_urlsafe(18)
    row = {
        "delivery_id": secrets.token_hex(10),
        "survey_id": survey_id,
        "customer_id": customer_id,
        "purpose": purpose,
        "channel": "email",
        "status": "pending",
        "reason": None,
        "attempts": 0,
        "created_at": now,
        "last_attempt_at": None,
        "sent_at": None,
        "link": None,
        "optout_hash": hashlib.sha256(token.encode()).hexdigest(),
        "trigger_key": trigger_key,
        "parent_id": parent_id,
    }
    return row, token


def _skipped(
    survey_id: str, customer_id: str, purpose: str, now: dt.datetime, reason: str, **keys: Any
) -> dict[str, Any]:
    row, _ = _new_delivery(survey_id, customer_id, purpose, now, **keys)
    row.update(status="skipped", reason=reason, optout_hash=None)
    return row


def send_survey(
    store: Store,
    survey_id: str,
    *,
    mailer: Mailer | None,
    now: dt.datetime,
    settings: DistributionSettings,
    segment: str | None = None,
    customer_ids: Sequence[str] | None = None,
    template: EmailTemplate = DEFAULT_TEMPLATE,
    dry_run: bool = False,
    trigger_keys: dict[str, str] | None = None,
) -> SendReport:
    """Invite the customers of ``segment`` (None: all), or only ``customer_ids``, to ``survey_id``.

    Raises :class:`SurveyError` when the survey is unknown or not live. ``mailer`` may be None only
    for a dry run. ``trigger_keys`` (customer -> key) marks invitations a trigger made, once each.
    """
    survey = get_survey(store, survey_id)
    if survey.state != "live":
        raise SurveyError(
            f"survey {survey_id!r} is {survey.state}: only a live survey can be sent", field="survey"
        )
    template.check()
    with store.engine.connect() as conn:
        people = _recipients(conn, segment, customer_ids)
        held = screen(conn, [p.customer_id for p in people], now=now, days=settings.fatigue_days)
    report = SendReport(dry_run=dry_run)
    known = {p.customer_id for p in people}
    for cid in customer_ids or ():
        if cid not in known:
            report.skipped[cid] = "unknown customer"
    chosen = []
    for p in people:
        reason = held.get(p.customer_id) or (None if p.email and "@" in p.email else "no email address")
        if reason:
            report.skipped[p.customer_id] = reason
        else:
            chosen.append(p)
    keys = trigger_keys or {}
    if dry_run:
        report.sent = [p.customer_id for p in chosen]
        return report
    if keys:
        skipped_rows = [
            _skipped(survey_id, cid, "invitation", now, why, trigger_key=keys[cid])
            for cid, why in report.skipped.items()
            if cid in keys
        ]
        _insert(store, skipped_rows)
    if mailer is None:
        raise ValueError("mailer: required to send (None only for a dry run)")
    _mail(store, survey, chosen, "invitation", template, mailer, now, settings, report, keys)
    return report


def _insert(store: Store, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if rows:
        with store.engine.begin() as conn:
            conn.execute(D.insert(), rows)


def _claim(store: Store, row: dict[str, Any]) -> bool:
    """Insert a pending delivery; False when its trigger key was claimed by another run."""
    try:
        _insert(store, [row])
    except sa.exc.IntegrityError:
        return False
    return True


def _mail(
    store: Store,
    survey: Survey,
    people: Sequence[_Recipient],
    purpose: str,
    template: EmailTemplate,
    mailer: Mailer,
    now: dt.datetime,
    settings: DistributionSettings,
    report: SendReport,
    trigger_keys: dict[str, str] | None = None,
    parents: dict[str, str] | None = None,
    retry_of: dict[str, str] | None = None,
) -> list[str]:
    """Make links, record deliveries (or take up the failed ones in ``retry_of``: customer ->
    delivery id), mail them one by one; return the delivery ids sent."""
    if not people:
        return []
    links = create_links(
        store,
        survey.survey_id,
        [(p.customer_id, p.email) for p in people],
        now=now,
        channel="email",
        record_invitations=False,
    )
    sent_ids = []
    for person, link in zip(people, links, strict=True):
        row, token = _new_delivery(
            survey.survey_id,
            person.customer_id,
            purpose,
            now,
            trigger_key=(trigger_keys or {}).get(person.customer_id),
            parent_id=(parents or {}).get(person.customer_id),
        )
        retried = (retry_of or {}).get(person.customer_id)
        if retried is not None:
            row["delivery_id"] = retried
            with store.engine.begin() as conn:
                conn.execute(
                    D.update()
                    .where(D.c.delivery_id == retried)
                    .values(link=link.link_id, optout_hash=row["optout_hash"], status="pending")
                )
        else:
            row["link"] = link.link_id
            if not _claim(store, row):
                report.skipped[person.customer_id] = "already handled by another run"
                continue
        address, name = mailer.sender
        message = build_message(
            template,
            to=str(person.email),
            name=person.name,
            survey=survey.name,
            brand=survey.definition.brand.name,
            link=link_url(settings.base_url, link.token),
            opt_out_link=f"{settings.base_url.rstrip('/')}/s/opt-out/{token}",
            sender=address,
            sender_name=name,
        )
        try:
            mailer.send(message)
        except DeliveryError as exc:
            _finish(store, row["delivery_id"], now, error=exc.reason)
            report.failed[person.customer_id] = exc.reason
            continue
        invitation = invitation_row(link, channel="email", sent_at=now) if purpose == "invitation" else None
        _finish(store, row["delivery_id"], now, invitation=invitation)
        report.sent.append(person.customer_id)
        sent_ids.append(row["delivery_id"])
    return sent_ids


def _finish(
    store: Store,
    delivery_id: str,
    now: dt.datetime,
    *,
    error: str | None = None,
    invitation: dict[str, Any] | None = None,
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            D.update()
            .where(D.c.delivery_id == delivery_id)
            .values(
                status="failed" if error else "sent",
                reason=error,
                attempts=D.c.attempts + 1,
                last_attempt_at=now,
                sent_at=None if error else now,
            )
        )
        if invitation is not None:
            conn.execute(schema.survey_invitations.insert().values(**invitation))


def _live(store: Store, survey_ids: Iterable[str]) -> dict[str, Survey]:
    out = {}
    for survey_id in sorted(set(survey_ids)):
        try:
            survey = get_survey(store, survey_id)
        except SurveyError:
            continue
        if survey.state == "live":
            out[survey_id] = survey
    return out


def _due(
    store: Store, query: sa.Select[Any], now: dt.datetime
) -> tuple[list[Any], dict[str, str], dict[str, _Recipient], dict[str, Survey]]:
    """The deliveries ``query`` finds (by survey, then customer), who of them may not be mailed now
    and why (opt-outs, not fatigue: these were invited already), their contacts, and which of
    their surveys are still live."""
    with store.engine.connect() as conn:
        due = list(conn.execute(query.order_by(D.c.survey_id, D.c.customer_id)).all())
        held = screen(conn, [r.customer_id for r in due], now=now, days=0, fatigue=False)
        people = {p.customer_id: p for p in _recipients(conn, None, [r.customer_id for r in due])}
    return due, held, people, _live(store, (r.survey_id for r in due))


def _group(rows: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r.survey_id, []).append(r)
    return out


def send_reminders(
    store: Store,
    *,
    mailer: Mailer | None,
    now: dt.datetime,
    settings: DistributionSettings,
    survey_id: str | None = None,
    template: EmailTemplate = REMINDER_TEMPLATE,
    dry_run: bool = False,
) -> SendReport:
    """One reminder to each customer mailed an invitation at least ``reminder_days`` ago who has not
    answered that survey since, has had no reminder for it, and has not opted out."""
    report = SendReport(dry_run=dry_run)
    cutoff = now - dt.timedelta(days=settings.reminder_days)
    reminded = sa.select(D.c.parent_id).where(D.c.purpose == "reminder", D.c.parent_id.is_not(None))
    R = schema.survey_responses
    answered = sa.exists().where(
        R.c.survey_id == D.c.survey_id, R.c.customer_id == D.c.customer_id, R.c.responded_at >= D.c.sent_at
    )
    query = sa.select(D).where(
        D.c.purpose == "invitation",
        D.c.status == "sent",
        D.c.sent_at <= cutoff,
        D.c.delivery_id.not_in(reminded),
        ~answered,
    )
    if survey_id is not None:
        query = query.where(D.c.survey_id == survey_id)
    due, held, people, surveys = _due(store, query, now)
    for sid, rows in _group(due).items():
        chosen, parents = [], {}
        for r in rows:
            person = people.get(r.customer_id)
            reason = held.get(r.customer_id) or ("survey no longer live" if sid not in surveys else None)
            if reason is None and (person is None or not person.email):
                reason = "no email address"
            if reason is not None:
                report.skipped[r.customer_id] = reason
                continue
            assert person is not None
            chosen.append(person)
            parents[r.customer_id] = r.delivery_id
        if dry_run:
            report.sent += [p.customer_id for p in chosen]
            continue
        if mailer is None:
            raise ValueError("mailer: required to send (None only for a dry run)")
        if chosen:
            _mail(
                store,
                surveys[sid],
                chosen,
                "reminder",
                template,
                mailer,
                now,
                settings,
                report,
                parents=parents,
            )
        # A reminder that cannot be sent (opted out since, say) is recorded once as skipped.
        _insert(
            store,
            [
                _skipped(
                    sid,
                    r.customer_id,
                    "reminder",
                    now,
                    report.skipped[r.customer_id],
                    parent_id=r.delivery_id,
                )
                for r in rows
                if r.customer_id in report.skipped
            ],
        )
    return report


def retry_failed(
    store: Store,
    *,
    mailer: Mailer | None,
    now: dt.datetime,
    settings: DistributionSettings,
    template: EmailTemplate = DEFAULT_TEMPLATE,
    dry_run: bool = False,
) -> SendReport:
    """Try once more each invitation that failed ``retry_minutes`` ago or more (one retry each);
    the opted-out since are not retried."""
    report = SendReport(dry_run=dry_run)
    cutoff = now - dt.timedelta(minutes=settings.retry_minutes)
    query = sa.select(D).where(
        D.c.purpose == "invitation",
        D.c.status == "failed",
        D.c.attempts < MAX_ATTEMPTS,
        D.c.last_attempt_at <= cutoff,
    )
    due, held, people, surveys = _due(store, query, now)
    for sid, rows in _group(due).items():
        chosen, retry_of = [], {}
        for r in rows:
            person = people.get(r.customer_id)
            if r.customer_id in held or sid not in surveys or person is None or not person.email:
                report.skipped[r.customer_id] = held.get(r.customer_id) or "cannot be retried"
                continue
            chosen.append(person)
            retry_of[r.customer_id] = r.delivery_id
        if dry_run:
            report.sent += [p.customer_id for p in chosen]
            continue
        if mailer is None:
            raise ValueError("mailer: required to send (None only for a dry run)")
        _mail(
            store,
            surveys[sid],
            chosen,
            "invitation",
            template,
            mailer,
            now,
            settings,
            report,
            retry_of=retry_of,
        )
    return report


def send_resurvey(
    store: Store,
    survey_id: str,
    customer_id: str,
    *,
    mailer: Mailer,
    now: dt.datetime,
    settings: DistributionSettings,
    template: EmailTemplate = RESURVEY_TEMPLATE,
) -> str | None:
    """Mail ``customer_id`` the re-survey ``survey_id`` after their case closed; the delivery id,
    or None when they opted out, have no email, or the mail failed (recorded)."""
    survey = get_survey(store, survey_id)
    if survey.state != "live":
        raise SurveyError(
            f"survey {survey_id!r} is {survey.state}: only a live survey can be sent", field="survey"
        )
    with store.engine.connect() as conn:
        if screen(conn, [customer_id], now=now, days=0, fatigue=False):
            return None
        people = _recipients(conn, None, [customer_id])
    if not people or not people[0].email:
        return None
    sent = _mail(store, survey, people, "resurvey", template, mailer, now, settings, SendReport())
    return sent[0] if sent else None


def resurvey_callback(
    store: Store,
    survey_id: str,
    *,
    now: dt.datetime,
    smtp: SmtpSettings | None = None,
    settings: DistributionSettings | None = None,
) -> Callable[[dict[str, Any]], str | None]:
    """The ``resurvey`` of :func:`cxloop.cases.close_case`: mails ``survey_id`` to the case's
    customer through the SMTP server of ``smtp`` (default: ``CXLOOP_SMTP_*``)."""
    get_survey(store, survey_id)  # an unknown survey fails before the case is closed

    def send(case: dict[str, Any]) -> str | None:
        with SmtpSender(smtp or SmtpSettings()) as mailer:
            return send_resurvey(
                store,
                survey_id,
                case["customer_id"],
                mailer=mailer,
                now=now,
                settings=settings or DistributionSettings(),
            )

    return send


def sends_stamp_query() -> sa.Select[int, dt.datetime | None]:
    """The query of :func:`sends_stamp`, for a fingerprint that folds it into a larger one."""
    deliveries = sa.func.count().label("deliveries")
    latest: sa.Label[dt.datetime | None] = sa.func.max(D.c.last_attempt_at).label("last_attempt")
    return sa.select(deliveries, latest)


def sends_stamp(conn: sa.Connection) -> tuple[int, dt.datetime | None]:
    """(deliveries, latest attempt): changes with every mail recorded (a retry updates its
    delivery's ``last_attempt_at``), so a data fingerprint that includes it sees new invitations
    (the response rate's denominator) at once. :func:`cxloop.metrics.cache.store_fingerprint`
    includes it."""
    count, latest = conn.execute(sends_stamp_query()).one()
    return int(count), latest
