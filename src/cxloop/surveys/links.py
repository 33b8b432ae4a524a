"""Answer links: unguessable tokens, one per customer (made in bulk for a segment and exported as
CSV for a mail merge) or one public link per survey that anyone may answer.

A token is ``secrets.token_urlsafe(24)`` (192 bits); the store keeps only its SHA-256, so a copy of
the database gives no working link. Each link also gets a form token that the answer page puts in
its form and that must come back with every answer (the public form's CSRF defence). Making a
personal link records an invitation (``survey_invitations``, source ``cxloop``, the link's id), the
denominator of the response rate; pass ``record_invitations=False`` when the invitation is recorded
when it is actually sent (by email, say) with :func:`invitation_row`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.surveys.versions import SurveyError, get_survey

__all__ = [
    "SOURCE",
    "NewLink",
    "create_links",
    "create_public_link",
    "invitation_row",
    "link_id_of",
    "link_url",
    "links_csv",
    "segment_customers",
    "survey_of_token",
    "token_hash",
]

SOURCE = "cxloop"
"""The ``source`` of the invitations and answers cxloop's own surveys write."""
L = schema.survey_links


@dataclass(frozen=True)
class NewLink:
    """A link just made: ``token`` is shown once and never stored."""

    link_id: str
    token: str
    survey_id: str
    customer_id: str | None
    email: str | None
    expires_at: dt.datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/s/{token}"


def segment_customers(store: Store, segment: str | None) -> list[tuple[str, str | None]]:
    """(customer id, email) of the customers in ``segment`` (None: every customer), by id."""
    c = schema.customers
    query = sa.select(c.c.customer_id, c.c.email).order_by(c.c.customer_id)
    if segment is not None:
        query = query.where(c.c.segment == segment)
    with store.engine.connect() as conn:
        return [(row.customer_id, row.email) for row in conn.execute(query)]


def invitation_row(link: NewLink, *, channel: str | None, sent_at: dt.datetime) -> dict[str, Any]:
    """The ``survey_invitations`` row saying ``link`` was sent to its customer at ``sent_at``."""
    content = f"{link.survey_id}|{link.customer_id}|{channel}|{sent_at.isoformat()}"
    return {
        "source": SOURCE,
        "invitation_id": link.link_id,
        "survey_id": link.survey_id,
        "customer_id": link.customer_id,
        "channel": channel,
        "sent_at": sent_at,
        "row_hash": hashlib.md5(content.encode()).hexdigest(),
        "import_id": None,
    }


def _expiry(store: Store, survey_id: str, now: dt.datetime, days: float | None) -> dt.datetime | None:
    if days is None:
        days = get_survey(store, survey_id).definition.link_days
    return None if days is None else now + dt.timedelta(days=days)


def link_id_of(token: str) -> str:
    """A link's id: the first 24 hex digits of its token's SHA-256, so that the answer page finds the
    link by its primary key (the full hash is compared too)."""
    return token_hash(token)[:24]


def survey_of_token(store: Store, token: str) -> str | None:
    """The survey whose link ``token`` is (None: no link of this store has that token)."""
    digest = token_hash(token)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(L.c.token_hash, L.c.survey_id).where(L.c.link_id == digest[:24])).first()
    if row is None or not secrets.compare_digest(row.token_hash, digest):
        return None
    return str(row.survey_id)


def _new(
    survey_id: str, customer_id: str | None, email: str | None, expires_at: dt.datetime | None
) -> NewLink:
    token = secrets.token_urlsafe(24)
    return NewLink(link_id_of(token), token, survey_id, customer_id, email, expires_at)


def create_links(
    store: Store,
    survey_id: str,
    customers: Sequence[tuple[str, str | None]],
    *,
    now: dt.datetime,
    channel: str | None = "link",
    expires_in_days: float | None = None,
    record_invitations: bool = True,
) -> list[NewLink]:
    """One personal link per (customer id, email), in one transaction.

    Links expire ``expires_in_days`` after ``now`` (default: the survey's ``link_days``).
    """
    survey = get_survey(store, survey_id)
    if survey.state == "closed":
        raise SurveyError(f"survey {survey_id!r} is closed: reopen it before making links")
    expires_at = _expiry(store, survey_id, now, expires_in_days)
    links = [_new(survey_id, cid, email, expires_at) for cid, email in customers]
    rows = [_row(link, "personal", channel, now) for link in links]
    with store.engine.begin() as conn:
        _insert_many(store, conn, L, rows)
        if record_invitations:
            _insert_many(
                store,
                conn,
                schema.survey_invitations,
                [invitation_row(k, channel=channel, sent_at=now) for k in links],
            )
    return links


def create_public_link(
    store: Store,
    survey_id: str,
    *,
    now: dt.datetime,
    channel: str | None = "public",
    expires_in_days: float | None = None,
) -> NewLink:
    """A link anyone may answer (rate-limited per address, one answer per browser)."""
    survey = get_survey(store, survey_id)
    if not survey.definition.public:
        raise SurveyError(f"survey {survey_id!r} does not allow public answers (set public = true)")
    link = _new(survey_id, None, None, _expiry(store, survey_id, now, expires_in_days))
    with store.engine.begin() as conn:
        conn.execute(L.insert().values(**_row(link, "public", channel, now)))
    return link


def _row(link: NewLink, kind: str, channel: str | None, now: dt.datetime) -> dict[str, Any]:
    return {
        "link_id": link.link_id,
        "token_hash": token_hash(link.token),
        "survey_id": link.survey_id,
        "kind": kind,
        "customer_id": link.customer_id,
        "channel": channel,
        "form_token": secrets.token_urlsafe(16),
        "created_at": now,
        "expires_at": link.expires_at,
        "opened_at": None,
    }


def _insert_many(store: Store, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if store.dialect == "duckdb" and len(rows) > 200:
        # Row-by-row inserts are slow on DuckDB: hand it the rows as one Arrow table.
        import pyarrow as pa

        names = [c.name for c in table.columns]
        arrow = pa.table({n: [r[n] for r in rows] for n in names})
        raw: Any = conn.connection.driver_connection
        duck = raw._ConnectionWrapper__c
        duck.register("_cxloop_rows", arrow)
        try:
            duck.execute(
                f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} FROM _cxloop_rows"
            )
        finally:
            duck.unregister("_cxloop_rows")
        return
    conn.execute(table.insert(), rows)


def links_csv(links: Iterable[NewLink], base_url: str) -> str:
    """CSV for a mail merge: customer_id, email, url, expires_at."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "email", "url", "expires_at"])
    for link in links:
        expires = link.expires_at.isoformat(timespec="seconds") if link.expires_at else ""
        writer.writerow([_safe(link.customer_id), _safe(link.email), link_url(base_url, link.token), expires])
    return out.getvalue()


def _safe(value: str | None) -> str:
    # A cell starting with = + - @ runs as a formula in spreadsheets: quote it.
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
