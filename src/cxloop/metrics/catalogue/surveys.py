"""Survey KPIs: NPS, CSAT, CES and answer counts.

Scores are compared on their own scale (``scale_min``..``scale_max`` of each answer), so answers
collected on 5- and 7-point scales can be pooled honestly; see docs/metrics.md.
"""

from __future__ import annotations

import ibis.expr.types as ir

from cxloop.metrics.catalogue.common import aggregate, count_if, mean_stats
from cxloop.metrics.kpi import Direction, Kpi, family
from cxloop.metrics.query import Context
from cxloop.metrics.stats import Kind

TABLES = ("survey_responses",)


def _answers(ctx: Context, kind: str) -> ir.Table:
    t = ctx.events("responses")
    return t.filter((t.kind == kind) & t.score.notnull()).mutate(score=t.score.cast("float64"))


def nps(ctx: Context) -> ir.Table:
    t = _answers(ctx, "nps")
    t = t.filter((t.scale_min == 0) & (t.scale_max == 10))
    return aggregate(ctx, t, n=t.count(), promoters=count_if(t.score >= 9), detractors=count_if(t.score <= 6))


def csat_satisfied(t: ir.Table) -> ir.BooleanValue:
    """Top-two-box on scales of 5 points or more (4-5 of 5, 6-7 of 7, 9-10 of 10); the top box
    alone on shorter scales (3 of 1-3), where two boxes would be two thirds of the scale."""
    points = t.scale_max - t.scale_min + 1
    return (points >= 5).ifelse(t.score >= t.scale_max - 1, t.score >= t.scale_max)


def csat(ctx: Context) -> ir.Table:
    t = _answers(ctx, "csat")
    return aggregate(ctx, t, k=count_if(csat_satisfied(t)), n=t.count())


def rescaled(t: ir.Table, low: int, high: int) -> ir.FloatingValue:
    """The score moved linearly from its own scale onto low..high."""
    span = (t.scale_max - t.scale_min).cast("float64")
    return low + (high - low) * (t.score - t.scale_min) / span


def csat_mean(ctx: Context) -> ir.Table:
    t = _answers(ctx, "csat")
    t = t.filter(t.scale_max > t.scale_min)
    return aggregate(ctx, t, **mean_stats(rescaled(t, 1, 5)))


def ces(ctx: Context) -> ir.Table:
    t = _answers(ctx, "ces")
    t = t.filter(t.scale_max > t.scale_min)
    return aggregate(ctx, t, **mean_stats(rescaled(t, 1, 7)))


def ces_agree(ctx: Context) -> ir.Table:
    t = _answers(ctx, "ces")
    midpoint = (t.scale_min + t.scale_max).cast("float64") / 2
    return aggregate(ctx, t, k=count_if(t.score > midpoint), n=t.count())


def responses(ctx: Context) -> ir.Table:
    t = ctx.events("responses")
    one_per_response = t.select(*ctx.keys, "source", "response_id").distinct()
    return aggregate(ctx, one_per_response, value=one_per_response.count())


def response_rate(ctx: Context) -> ir.Table:
    """Invitations sent in the period that got an answer to their survey from their customer at or
    after sending (before as_of) / invitations sent in the period."""
    invited = ctx.events("invitations")
    answers = (
        ctx.raw("responses")
        .select(_r_survey="survey_id", _r_customer="customer_id", _r_at="responded_at")
        .distinct()
    )
    joined = invited.left_join(
        answers,
        (invited.survey_id == answers._r_survey)
        & (invited.customer_id == answers._r_customer)
        & (answers._r_at >= invited.sent_at),
    )
    per_invitation = joined.group_by([*ctx.keys, "source", "invitation_id"]).aggregate(
        answered=joined._r_at.notnull().ifelse(1, 0).max()
    )
    return aggregate(ctx, per_invitation, k=per_invitation.answered.sum(), n=per_invitation.count())


_kpi = family(TABLES, "responses", "surveys")


KPIS = [
    _kpi(
        "nps",
        "Net Promoter Score",
        "% promoters (9-10) minus % detractors (0-6), over answers to 0-10 NPS questions",
        "points",
        Direction.UP,
        Kind.NPS,
        nps,
    ),
    _kpi(
        "csat",
        "CSAT (% satisfied)",
        "% of CSAT answers in the top two boxes of their scale on scales of 5 points or more "
        "(4-5 of 5); the top box alone on shorter scales (3 of 1-3, 4 of 1-4)",
        "%",
        Direction.UP,
        Kind.PROPORTION,
        csat,
    ),
    _kpi(
        "csat_mean",
        "CSAT mean",
        "mean CSAT score, each answer moved linearly from its own scale onto 1-5",
        "score (1-5)",
        Direction.UP,
        Kind.MEAN,
        csat_mean,
    ),
    _kpi(
        "ces",
        "Customer Effort Score",
        "mean CES score, each answer moved linearly from its own scale onto 1-7 (7: easiest)",
        "score (1-7)",
        Direction.UP,
        Kind.MEAN,
        ces,
    ),
    _kpi(
        "ces_agree",
        "CES (% agree)",
        "% of CES answers above the middle of their scale (5-7 on 1-7: it was easy)",
        "%",
        Direction.UP,
        Kind.PROPORTION,
        ces_agree,
    ),
    _kpi(
        "responses",
        "Survey responses",
        "distinct survey responses (one respondent's answers to one survey)",
        "responses",
        Direction.NEUTRAL,
        Kind.COUNT,
        responses,
    ),
    Kpi(
        "response_rate",
        "Survey response rate",
        "invitations sent in the period answered (same survey and customer, at or after sending) "
        "/ invitations sent in the period",
        "%",
        Direction.UP,
        ("survey_invitations", "survey_responses"),
        "invitations",
        Kind.PROPORTION,
        response_rate,
        group="surveys",
    ),
]
