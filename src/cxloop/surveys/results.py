"""A survey's results over time (its main KPI per day, week or month) and its latest comments.

The headline figure follows the survey's kind, counted as the metrics layer counts it: NPS = %
promoters (9-10) - % detractors (0-6); CSAT = % satisfied (top two boxes on 5 points or more, the
top box on 3); CES = the mean score on its 1-7 scale. Comments are returned as stored (untrusted
text: every shell escapes them).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Literal

import sqlalchemy as sa

from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.surveys.links import SOURCE

__all__ = ["Comment", "Period", "comments", "headline", "over_time"]

Grain = Literal["day", "week", "month"]
A = schema.survey_responses


@dataclass(frozen=True)
class Period:
    start: dt.date
    answers: int
    value: float | None  # NPS points, CSAT %, or CES mean

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat()}


@dataclass(frozen=True)
class Comment:
    response_id: str
    responded_at: dt.datetime
    score: float | None
    customer_id: str | None
    comment: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "responded_at": self.responded_at.isoformat()}


def headline(kind: str, scale: tuple[int, int], scores: dict[float, int]) -> float | None:
    """The kind's figure over ``scores`` (score -> count); None without answers."""
    n = sum(scores.values())
    if not n:
        return None
    if kind == "nps":
        promoters = sum(c for s, c in scores.items() if s >= 9)
        detractors = sum(c for s, c in scores.items() if s <= 6)
        return round(100 * (promoters - detractors) / n, 1)
    if kind == "csat":
        points = scale[1] - scale[0] + 1
        top = scale[1] - 1 if points >= 5 else scale[1]
        return round(100 * sum(c for s, c in scores.items() if s >= top) / n, 1)
    return round(sum(s * c for s, c in scores.items()) / n, 2)


def over_time(store: Store, survey_id: str, *, grain: Grain = "week") -> tuple[str, list[Period]]:
    """(kind, periods oldest first) of the survey's main question, answered through any channel."""
    if grain not in ("day", "week", "month"):
        raise ValueError("grain must be day, week or month")
    period = sa.func.date_trunc(grain, A.c.responded_at).label("period")
    query = (
        sa.select(period, A.c.kind, A.c.scale_min, A.c.scale_max, A.c.score, sa.func.count().label("n"))
        .where(
            A.c.source == SOURCE,
            A.c.survey_id == survey_id,
            A.c.question_id == "main",
            A.c.score.is_not(None),
        )
        .group_by(period, A.c.kind, A.c.scale_min, A.c.scale_max, A.c.score)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    kind, scale = "nps", (0, 10)
    buckets: dict[dt.date, dict[float, int]] = defaultdict(dict)
    for row in rows:
        kind, scale = row.kind, (row.scale_min, row.scale_max)
        start = row.period.date() if isinstance(row.period, dt.datetime) else row.period
        scores = buckets[start]
        scores[float(row.score)] = scores.get(float(row.score), 0) + int(row.n)
    return kind, [Period(d, sum(s.values()), headline(kind, scale, s)) for d, s in sorted(buckets.items())]


def comments(store: Store, survey_id: str, *, limit: int = 50, offset: int = 0) -> list[Comment]:
    """The newest comments of the main question (the follow-up's answers)."""
    query = (
        sa.select(A.c.response_id, A.c.responded_at, A.c.score, A.c.customer_id, A.c.comment)
        .where(
            A.c.source == SOURCE,
            A.c.survey_id == survey_id,
            A.c.question_id == "main",
            A.c.comment.is_not(None),
        )
        .order_by(A.c.responded_at.desc(), A.c.response_id)
        .limit(limit)
        .offset(offset)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Comment(
            r.response_id,
            r.responded_at,
            float(r.score) if r.score is not None else None,
            r.customer_id,
            r.comment,
        )
        for r in rows
    ]
