"""One text corpus over every place customers write: tickets, reviews, social posts and survey
comments, each text with where it came from, who wrote it, when, about which brand, and its score.

Everything downstream (sentiment, themes, trends, drivers, competitors) reads texts through
:func:`corpus`, so a new text source is added here once. The corpus is an Ibis expression: it is
filtered in the database and only the texts asked for are fetched.

Columns:

* ``text_id``: unique across sources, ``"<kind>:<source>:<id>"`` (a survey comment adds its
  question id: one response can comment on several questions);
* ``kind``: ``ticket`` | ``review`` | ``post`` | ``survey``;
* ``customer_id``, ``at`` (when written), ``brand`` and ``is_competitor`` (tickets and survey
  comments are about our own brand: ``brand`` NULL, ``is_competitor`` false);
* ``score`` on its own scale ``scale_min``..``scale_max`` and ``score_kind`` (``rating`` for
  reviews, the survey kind ``nps|csat|ces|custom`` for surveys; NULL for tickets and posts);
* ``language`` as exported (reviews only; NULL elsewhere);
* ``text``: what the customer wrote, title/subject and body joined by a blank line.

Empty texts (NULL or only white space) are left out: there is nothing to read in them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.metrics.source import Source, to_pandas

KINDS: Final = ("ticket", "review", "post", "survey")

_SCHEMA: Final = ibis.schema(
    {
        "text_id": "string",
        "kind": "string",
        "customer_id": "string",
        "at": "timestamp",
        "brand": "string",
        "is_competitor": "boolean",
        "score": "float64",
        "scale_min": "int64",
        "scale_max": "int64",
        "score_kind": "string",
        "language": "string",
        "text": "string",
    }
)


def _joined(first: ir.StringValue, second: ir.StringValue) -> ir.StringValue:
    """``first`` and ``second`` separated by a blank line, either of them possibly missing."""
    a = first.strip().nullif("")
    b = second.strip().nullif("")
    return ibis.cases(
        (a.notnull() & b.notnull(), a.concat("\n\n", b)),
        (a.notnull(), a),
        else_=b,
    )


def _typed(table: ir.Table) -> ir.Table:
    return table.select(*[table[name].cast(dtype).name(name) for name, dtype in _SCHEMA.items()])


def _tickets(source: Source) -> ir.Table:
    t = source.table("tickets")
    null = ibis.null()
    return _typed(
        t.select(
            text_id=ibis.literal("ticket:").concat(t.source, ":", t.ticket_id),
            kind=ibis.literal("ticket"),
            customer_id=t.customer_id,
            at=t.opened_at,
            brand=null,
            is_competitor=ibis.literal(False),
            score=null,
            scale_min=null,
            scale_max=null,
            score_kind=null,
            language=null,
            text=_joined(t.subject, t.body),
        )
    )


def _reviews(source: Source) -> ir.Table:
    r = source.table("reviews")
    null = ibis.null()
    is_review = r.kind == "review"
    return _typed(
        r.select(
            text_id=r.kind.concat(":", r.source, ":", r.review_id),
            kind=r.kind,
            customer_id=r.customer_id,
            at=r.posted_at,
            brand=r.brand,
            is_competitor=r.is_competitor,
            score=r.rating,
            scale_min=is_review.ifelse(1, null),
            scale_max=is_review.ifelse(5, null),
            score_kind=(is_review & r.rating.notnull()).ifelse("rating", null),
            language=r.language,
            text=_joined(r.title, r.text),
        )
    )


def _surveys(source: Source) -> ir.Table:
    s = source.table("survey_responses")
    null = ibis.null()
    return _typed(
        s.select(
            text_id=ibis.literal("survey:").concat(s.source, ":", s.response_id, ":", s.question_id),
            kind=ibis.literal("survey"),
            customer_id=s.customer_id,
            at=s.responded_at,
            brand=null,
            is_competitor=ibis.literal(False),
            score=s.score,
            scale_min=s.scale_min,
            scale_max=s.scale_max,
            score_kind=s.kind,
            language=null,
            text=s.comment.strip().nullif(""),
        )
    )


_BUILDERS: Final = {"ticket": _tickets, "review": _reviews, "post": _reviews, "survey": _surveys}


def corpus(
    source: Source,
    *,
    kinds: Iterable[str] = KINDS,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    competitors: bool | None = None,
) -> ir.Table:
    """Every text of the given ``kinds`` written in ``[start, end)``, as an Ibis table.

    ``competitors``: ``None`` for all brands, ``False`` for our own brand only, ``True`` for
    competitors only.
    """
    wanted = list(dict.fromkeys(kinds))
    unknown = [k for k in wanted if k not in KINDS]
    if unknown or not wanted:
        raise ConfigError(f"unknown text kind(s) {unknown or wanted!r}; the kinds are {', '.join(KINDS)}")
    builders = list(dict.fromkeys(_BUILDERS[k] for k in wanted))
    parts = [builder(source) for builder in builders]
    table = parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
    table = table.filter(table.text.notnull(), table.kind.isin(wanted))
    if start is not None:
        table = table.filter(table.at >= start)
    if end is not None:
        table = table.filter(table.at < end)
    if competitors is not None:
        table = table.filter(table.is_competitor == competitors)
    return table


def corpus_frame(source: Source, **filters: object) -> pd.DataFrame:
    """:func:`corpus` fetched as a pandas frame, ordered by time then id (a stable order)."""
    table = corpus(source, **filters)  # type: ignore[arg-type]
    return to_pandas(table.order_by(["at", "text_id"]))
