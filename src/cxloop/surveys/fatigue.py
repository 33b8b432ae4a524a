"""Who may be asked: opt-outs (for good) and fatigue (not more than once per N days, any survey).

* An **opt-out** is a row of ``survey_optouts``, made by the link in every mail
  (``/s/opt-out/{token}``), the API or the CLI. It is never removed by cxloop: an opted-out
  customer is never mailed again, whatever the survey, trigger or command.
* **Fatigue**: a customer who was sent any survey invitation (``survey_invitations``, whatever its
  channel or source, imported ones too) less than ``days`` ago is not asked again (default 30,
  ``CXLOOP_SURVEY_FATIGUE_DAYS``). Reminders and re-surveys after a case are not new asks.

:func:`screen` says, for a list of customers, who must not be asked and why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Final, Literal

import sqlalchemy as sa

from cxloop.errors import CxloopError
from cxloop.store import schema
from cxloop.store.schema import survey_deliveries, survey_optouts
from cxloop.store.store import Store

__all__ = ["Via", "opt_out", "opt_out_by_token", "opted_out", "recently_asked", "screen"]

Via = Literal["link", "api", "cli", "page"]
OPTED_OUT: Final = "opted out"
CHUNK: Final = 1000


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), CHUNK):
        yield wanted[start : start + CHUNK]


def opt_out(store: Store, customer_id: str, *, now: dt.datetime, via: Via) -> bool:
    """Record that ``customer_id`` wants no more surveys; True if new (an opt-out is kept once, the
    first time)."""
    customer_id = customer_id.strip()
    if not customer_id:
        raise CxloopError("customer_id: required")
    with store.engine.begin() as conn:
        found = conn.execute(
            sa.select(survey_optouts.c.customer_id).where(survey_optouts.c.customer_id == customer_id)
        ).first()
        if found is not None:
            return False
        conn.execute(survey_optouts.insert().values(customer_id=customer_id, opted_out_at=now, via=via))
    return True


def opt_out_by_token(store: Store, token: str, *, now: dt.datetime) -> str | None:
    """Opt out the customer whose mail carried ``token``; their id, or None for an unknown token."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    with store.engine.connect() as conn:
        customer = conn.execute(
            sa.select(survey_deliveries.c.customer_id).where(survey_deliveries.c.optout_hash == digest)
        ).scalar()
    if customer is None:
        return None
    opt_out(store, customer, now=now, via="link")
    return str(customer)


def opted_out(conn: sa.Connection, customer_ids: Iterable[str]) -> set[str]:
    """Which of ``customer_ids`` opted out."""
    out: set[str] = set()
    for chunk in _chunks(customer_ids):
        out.update(
            conn.execute(
                sa.select(survey_optouts.c.customer_id).where(survey_optouts.c.customer_id.in_(chunk))
            ).scalars()
        )
    return out


def recently_asked(
    conn: sa.Connection, customer_ids: Iterable[str], *, now: dt.datetime, days: float
) -> dict[str, dt.datetime]:
    """Those of ``customer_ids`` sent an invitation in the ``days`` before ``now``, with the last time."""
    if days <= 0:
        return {}
    inv = schema.survey_invitations
    since = now - dt.timedelta(days=days)
    out: dict[str, dt.datetime] = {}
    for chunk in _chunks(customer_ids):
        query = (
            sa.select(inv.c.customer_id, sa.func.max(inv.c.sent_at))
            .where(inv.c.customer_id.in_(chunk), inv.c.sent_at > since, inv.c.sent_at <= now)
            .group_by(inv.c.customer_id)
        )
        out.update({str(cid): at for cid, at in conn.execute(query)})
    return out


def screen(
    conn: sa.Connection, customer_ids: Iterable[str], *, now: dt.datetime, days: float, fatigue: bool = True
) -> dict[str, str]:
    """Who of ``customer_ids`` must not be asked now, and why (``opted out``, or ``asked on <date>``
    within the fatigue window; ``fatigue=False`` checks opt-outs only)."""
    ids = list(customer_ids)
    reasons = {cid: OPTED_OUT for cid in opted_out(conn, ids)}
    if fatigue:
        for cid, at in recently_asked(conn, ids, now=now, days=days).items():
            reasons.setdefault(cid, f"asked on {at:%Y-%m-%d} (less than {days:g} days ago)")
    return reasons
