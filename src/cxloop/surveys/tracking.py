"""How far each invitation got: sent, opened (the answer page viewed), started (score given),
completed (the rest answered), and the response rate, per survey, segment or channel.

Counted over cxloop's own personal links (one per invited customer): *sent* is a link whose
invitation is recorded in ``survey_invitations``; the response rate is started / sent, as the
metrics layer's ``response_rate`` KPI counts an invitation answered once a score came back (it
reads the same ``survey_invitations`` and ``survey_responses`` rows). Answers through a public link
or the API have no invitation: they appear as ``answers_without_invitation``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import sqlalchemy as sa

from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.surveys.links import SOURCE

__all__ = ["BY", "Funnel", "answers_without_invitation", "funnel"]

By = Literal["survey", "segment", "channel"]
BY: tuple[By, ...] = ("survey", "segment", "channel")
L, R, C = schema.survey_links, schema.survey_replies, schema.customers
INV = schema.survey_invitations


@dataclass(frozen=True)
class Funnel:
    group: str | None
    sent: int
    opened: int
    started: int
    completed: int

    @property
    def response_rate(self) -> float | None:
        """Started / sent, in [0, 1]; None when nothing was sent."""
        return self.started / self.sent if self.sent else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "response_rate": self.response_rate}


def funnel(store: Store, survey_id: str | None = None, *, by: By = "survey") -> list[Funnel]:
    """The funnel per ``by`` group (survey id, customer segment, or link channel)."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    group: sa.ColumnElement[Any] = {"survey": L.c.survey_id, "segment": C.c.segment, "channel": L.c.channel}[
        by
    ]
    query = (
        sa.select(
            group.label("grp"),
            sa.func.count().label("sent"),
            sa.func.count(L.c.opened_at).label("opened"),
            sa.func.count(R.c.reply_id).label("started"),
            sa.func.count(R.c.completed_at).label("completed"),
        )
        .select_from(L)
        .join(INV, (INV.c.source == SOURCE) & (INV.c.invitation_id == L.c.link_id))
        .outerjoin(R, R.c.reply_id == L.c.link_id)
        .outerjoin(C, C.c.customer_id == L.c.customer_id)
        .where(L.c.kind == "personal")
        .group_by(group)
        .order_by(group)
    )
    if survey_id is not None:
        query = query.where(L.c.survey_id == survey_id)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Funnel(row.grp, int(row.sent), int(row.opened), int(row.started), int(row.completed)) for row in rows
    ]


def answers_without_invitation(store: Store, survey_id: str) -> int:
    """Replies through a public link or the API."""
    query = (
        sa.select(sa.func.count())
        .select_from(R)
        .outerjoin(L, L.c.link_id == R.c.link_id)
        .where(R.c.survey_id == survey_id, sa.or_(L.c.kind.is_(None), L.c.kind == "public"))
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
