"""Answering: open a link, give the score (saved at once), then the rest (follow-up comment and
custom questions), edit within the survey's window; and answers collected elsewhere, sent by API.

Every answer goes to ``survey_responses`` (source ``cxloop``, the reply's id as ``response_id``):
the main question as ``question_id`` ``main`` (its follow-up comment in the same row), each custom
question as its own row (a choice question's ids in ``choices``: ``comment`` is only ever what the
customer wrote). So the KPIs count them like imported answers. ``survey_replies`` keeps
each reply's progress and version; its ``revision`` grows with each write, and the metrics cache's
data fingerprint includes it (``cxloop.metrics.cache.store_fingerprint``), so an answer moves the
KPIs at once.

Each POST is one short transaction (``transact``: its own, or a group commit on DuckDB, see
:mod:`cxloop.surveys.writer`). The answer page's own checks come first: a link that is
unknown (forged), expired, of a survey that is not live, a form token that does not match, an
answer that can no longer be edited, a score off the scale, text over :data:`TEXT_MAX` characters;
each raises :class:`AnswerError` with the HTTP status, the field and a sentence for the respondent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import sqlalchemy as sa

from cxloop.errors import CxloopError
from cxloop.store import schema
from cxloop.store.store import Store
from cxloop.surveys.definitions import Definition, Question
from cxloop.surveys.links import SOURCE, token_hash
from cxloop.surveys.versions import DefinitionCache

__all__ = [
    "TEXT_MAX",
    "AnswerError",
    "PublicLimits",
    "Saved",
    "Transact",
    "Visit",
    "in_transaction",
    "open_link",
    "parse_score",
    "save_details",
    "save_score",
    "submit_answer",
]

TEXT_MAX = 5000
L, S, R, A = schema.survey_links, schema.surveys, schema.survey_replies, schema.survey_responses
T = TypeVar("T")


class AnswerError(CxloopError):
    """An answer refused: ``status`` for the web, ``field`` at fault (if any), and why."""

    def __init__(self, status: int, reason: str, *, field: str | None = None) -> None:
        self.status = status
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


@dataclass(frozen=True)
class PublicLimits:
    """How many new answers one address may give through one public link within ``window``."""

    per_ip: int = 20
    window: dt.timedelta = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Visit:
    """A link as opened: its survey's definition (the reply's version, else the current one) and
    the reply so far, if any."""

    link_id: str
    survey_id: str
    kind: str
    customer_id: str | None
    channel: str | None
    form_token: str
    version: int
    definition: Definition
    reply_id: str | None
    completed: bool
    editable: bool
    answers: dict[str, Any] = field(default_factory=dict)  # question id -> score / text / choices
    current_version: int = 0  # the survey's current version (what it allows now: embed_origins)

    @property
    def score(self) -> float | None:
        value = self.answers.get("main")
        return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class Saved:
    reply_id: str
    created: bool
    public: bool = False  # through a public link: the browser keeps reply_id to edit it later


# The answer path's statements are plain SQL, the same on DuckDB and PostgreSQL: compiled once by
# the driver rather than per call by SQLAlchemy (whose statement cache DuckDB's dialect turns off),
# and every look-up is by primary key.
_LINK = sa.text(
    "SELECT link_id, token_hash, survey_id, kind, customer_id, channel, form_token, expires_at, opened_at"
    " FROM survey_links WHERE link_id = :lid"
)
_SURVEY = sa.text("SELECT state, version FROM surveys WHERE survey_id = :sid")
_REPLY = sa.text(
    "SELECT reply_id, version AS reply_version, completed_at, editable_until, started_at"
    " FROM survey_replies WHERE reply_id = :rid AND link_id = :lid"
)
_LINK_SURVEY_REPLY = sa.text(
    "SELECT l.link_id, l.token_hash, l.survey_id, l.kind, l.customer_id, l.channel, l.form_token,"
    " l.expires_at, l.opened_at, s.state, s.version, r.reply_id, r.version AS reply_version,"
    " r.completed_at, r.editable_until, r.started_at"
    " FROM survey_links l JOIN surveys s ON s.survey_id = l.survey_id"
    " LEFT JOIN survey_replies r ON r.link_id = l.link_id"
    " AND r.reply_id = CASE WHEN l.kind = 'public' THEN :rid ELSE l.link_id END"
    " WHERE l.link_id = :lid"
)
_OPENED = sa.text("UPDATE survey_links SET opened_at = :now WHERE link_id = :lid AND opened_at IS NULL")
_NEW_REPLY = sa.text(
    "INSERT INTO survey_replies (reply_id, survey_id, version, link_id, customer_id, channel, language,"
    " started_at, completed_at, updated_at, editable_until, revision)"
    " VALUES (:reply_id, :survey_id, :version, :link_id, :customer_id, :channel, :language,"
    " :now, NULL, :now, :editable_until, 1)"
)
_TOUCH_REPLY = sa.text(
    "UPDATE survey_replies SET updated_at = :now, revision = revision + 1 WHERE reply_id = :reply_id"
)
_COMPLETE_REPLY = sa.text(
    "UPDATE survey_replies SET completed_at = COALESCE(completed_at, :now), updated_at = :now,"
    " revision = revision + 1 WHERE reply_id = :reply_id"
)
_NEW_ROW = sa.text(
    "INSERT INTO survey_responses (source, response_id, question_id, survey_id, kind, scale_min, scale_max,"
    " score, comment, choices, channel, touchpoint, customer_id, responded_at, row_hash, import_id)"
    " VALUES (:source, :response_id, :question_id, :survey_id, :kind, :scale_min, :scale_max, :score,"
    " :comment, :choices, :channel, :touchpoint, :customer_id, :responded_at, :row_hash, :import_id)"
)
_MAIN = " WHERE source = 'cxloop' AND response_id = :reply_id AND question_id = 'main'"
_SET_SCORE = sa.text("UPDATE survey_responses SET score = :score, row_hash = :row_hash" + _MAIN)
_SET_COMMENT = sa.text("UPDATE survey_responses SET comment = :comment" + _MAIN)


@dataclass(frozen=True)
class _Found:
    """A link, its survey's state and current version, and its reply (if any)."""

    link_id: str
    survey_id: str
    kind: str
    customer_id: str | None
    channel: str | None
    form_token: str
    opened_at: dt.datetime | None
    state: str
    current_version: int
    reply_id: str | None = None
    reply_version: int | None = None
    completed_at: dt.datetime | None = None
    editable_until: dt.datetime | None = None
    started_at: dt.datetime | None = None


def _link(conn: sa.Connection, token: str, reply_hint: str | None, now: dt.datetime) -> _Found:
    digest = token_hash(token)
    lid = digest[:24]
    # A personal link has one reply, named after the link: a hint (cookie, form) counts only for a
    # public link, whose replies are one per browser (the joined query below says the same in SQL).
    rid = reply_hint or lid
    if conn.dialect.name == "duckdb":
        # Three look-ups by primary key: on DuckDB they cost less than one join of the three tables.
        link = conn.execute(_LINK, {"lid": lid}).first()
        survey = reply = None
        if link is not None:
            survey = conn.execute(_SURVEY, {"sid": link.survey_id}).one()
            own = rid if link.kind == "public" else lid
            reply = conn.execute(_REPLY, {"rid": own, "lid": lid}).first()
    else:
        # One round trip on PostgreSQL, where each statement is mostly the trip to the server.
        link = survey = reply = conn.execute(_LINK_SURVEY_REPLY, {"lid": lid, "rid": rid}).first()
        if reply is not None and reply.reply_id is None:
            reply = None
    if link is None or not secrets.compare_digest(link.token_hash, digest):
        raise AnswerError(404, "this survey link is not valid: check that it was copied whole")
    assert survey is not None
    if link.expires_at is not None and link.expires_at <= now:
        raise AnswerError(410, "this survey link has expired")
    if survey.state != "live":
        raise AnswerError(
            409 if survey.state == "closed" else 404,
            "this survey is closed" if survey.state == "closed" else "this survey is not open yet",
        )
    found = _Found(
        link.link_id,
        link.survey_id,
        link.kind,
        link.customer_id,
        link.channel,
        link.form_token,
        link.opened_at,
        survey.state,
        survey.version,
    )
    if reply is None:
        return found
    return replace(
        found,
        reply_id=reply.reply_id,
        reply_version=reply.reply_version,
        completed_at=reply.completed_at,
        editable_until=reply.editable_until,
        started_at=reply.started_at,
    )


def _editable(row: _Found, now: dt.datetime) -> bool:
    return row.editable_until is None or row.editable_until > now


def open_link(
    store: Store,
    definitions: DefinitionCache,
    token: str,
    *,
    now: dt.datetime,
    reply_hint: str | None = None,
    with_answers: bool = False,
    mark_opened: bool = True,
    transact: Transact[Any] | None = None,
) -> Visit:
    """The link behind ``token`` as its answer page shows it; records the first opening."""
    def read(conn: sa.Connection) -> tuple[_Found, dict[str, Any], bool]:
        row = _link(conn, token, reply_hint, now)
        answers = _answers_of(conn, row.reply_id) if with_answers and row.reply_id else {}
        first_view = mark_opened and row.opened_at is None
        if first_view and transact is None:  # in this transaction: one trip to the pool, one commit
            conn.execute(_OPENED, {"now": now, "lid": row.link_id})
        return row, answers, first_view

    row, answers, first_view = in_transaction(store)(read)
    if first_view and transact is not None:  # the server's group commit (DuckDB) shares the sync
        transact(lambda c: c.execute(_OPENED, {"now": now, "lid": row.link_id}))
    version = row.reply_version or row.current_version
    return Visit(
        link_id=row.link_id,
        survey_id=row.survey_id,
        kind=row.kind,
        customer_id=row.customer_id,
        channel=row.channel,
        form_token=row.form_token,
        version=version,
        current_version=row.current_version,
        definition=definitions.get(row.survey_id, version),
        reply_id=row.reply_id,
        completed=row.completed_at is not None,
        editable=_editable(row, now),
        answers=answers,
    )


def _answers_of(conn: sa.Connection, reply_id: str) -> dict[str, Any]:
    rows = conn.execute(
        sa.select(A.c.question_id, A.c.score, A.c.comment, A.c.choices).where(
            A.c.source == SOURCE, A.c.response_id == reply_id
        )
    ).all()
    found: dict[str, Any] = {}
    for row in rows:
        if row.question_id == "main":
            found["main"] = float(row.score) if row.score is not None else None
            found["comment"] = row.comment
        elif row.score is not None:
            found[row.question_id] = float(row.score)
        else:
            found[row.question_id] = row.choices if row.choices is not None else row.comment
    return found


def _check_form(row: _Found, form_token: str | None) -> None:
    if not form_token or not secrets.compare_digest(form_token.encode(), row.form_token.encode()):
        raise AnswerError(403, "the form has expired or came from another site: open the link again")


def parse_score(definition: Definition, value: str | None) -> int:
    low, high = definition.main.scale
    try:
        score = int((value or "").strip())
    except ValueError:
        score = None
    if score is None or not low <= score <= high:
        raise AnswerError(422, f"choose a score from {low} to {high}", field="score")
    return score


def _row(
    reply_id: str,
    question_id: str,
    *,
    survey_id: str,
    kind: str,
    scale: tuple[int, int],
    score: float | None,
    comment: str | None,
    visit: Any,
    customer_id: str | None,
    touchpoint: str | None,
    at: dt.datetime,
    choices: str | None = None,
) -> dict[str, Any]:
    content = [survey_id, kind, scale, score, comment, customer_id, at.isoformat()]
    if choices is not None:
        content.append(choices)
    return {
        "source": SOURCE,
        "response_id": reply_id,
        "question_id": question_id,
        "survey_id": survey_id,
        "kind": kind,
        "scale_min": scale[0],
        "scale_max": scale[1],
        "score": score,
        "comment": comment,
        "choices": choices,
        "channel": visit,
        "touchpoint": touchpoint,
        "customer_id": customer_id,
        "responded_at": at,
        "row_hash": hashlib.md5(json.dumps(content).encode()).hexdigest(),
        "import_id": None,
    }


Transact = Callable[[Callable[[sa.Connection], T]], T]
"""Runs ``work(conn)`` in a transaction and returns what it returns (or raises what it raised)."""


def in_transaction(store: Store) -> Callable[[Callable[[sa.Connection], T]], T]:
    """A transaction of its own per call, run again once if a concurrent write conflicted."""

    def run(work: Callable[[sa.Connection], T]) -> T:
        def once() -> T:
            with store.engine.begin() as conn:
                return work(conn)

        return _retrying(once)

    return run


def _retrying(work: Callable[[], T]) -> T:
    """Run ``work`` again once if a concurrent write to the same rows made it fail (a double
    submit racing itself: PostgreSQL's unique violation, DuckDB's write conflict)."""
    try:
        return work()
    except sa.exc.DBAPIError:
        return work()


def _write_rows(conn: sa.Connection, reply_id: str, rows: Sequence[dict[str, Any]]) -> None:
    ids = [r["question_id"] for r in rows]
    conn.execute(
        A.delete().where(A.c.source == SOURCE, A.c.response_id == reply_id, A.c.question_id.in_(ids))
    )
    conn.execute(A.insert(), list(rows))


def _check_public_limit(
    conn: sa.Connection, link_id: str, ip: str | None, now: dt.datetime, limits: PublicLimits
) -> None:
    if not ip:
        return
    key = f"{link_id}:ip:{ip}"
    since = now - limits.window
    count = conn.execute(
        sa.select(sa.func.count())
        .select_from(schema.survey_limits)
        .where(schema.survey_limits.c.key == key, schema.survey_limits.c.answered_at > since)
    ).scalar_one()
    if count >= limits.per_ip:
        raise AnswerError(429, "too many answers from your network through this link: try again later")
    conn.execute(
        schema.survey_limits.delete().where(
            schema.survey_limits.c.answered_at <= since, schema.survey_limits.c.key == key
        )
    )
    conn.execute(schema.survey_limits.insert().values(key=key, answered_at=now))


def save_score(
    store: Store,
    definitions: DefinitionCache,
    token: str,
    *,
    form_token: str | None,
    score: str | None,
    now: dt.datetime,
    language: str | None = None,
    reply_hint: str | None = None,
    ip: str | None = None,
    limits: PublicLimits = PublicLimits(),
    transact: Transact[Saved] | None = None,
) -> Saved:
    """Save the main score (a new reply, or an edit of this link's reply within its window)."""

    def work(conn: sa.Connection) -> Saved:
        row = _link(conn, token, reply_hint, now)
        _check_form(row, form_token)
        if not _editable(row, now):
            raise AnswerError(409, "your answer was recorded and can no longer be changed")
        version = row.reply_version or row.current_version
        definition = definitions.get(row.survey_id, version)
        value = parse_score(definition, score)

        def main_row(reply_id: str, at: dt.datetime) -> dict[str, Any]:
            return _row(
                reply_id,
                "main",
                survey_id=row.survey_id,
                kind=definition.main.kind,
                scale=definition.main.scale,
                score=value,
                comment=None,
                visit=row.channel,
                customer_id=row.customer_id,
                touchpoint=definition.touchpoint,
                at=at,
            )

        if row.reply_id is not None:  # an edit: the new score, the comment kept
            main = main_row(row.reply_id, row.started_at or now)
            conn.execute(_SET_SCORE, {"score": value, "row_hash": main["row_hash"], "reply_id": row.reply_id})
            conn.execute(_TOUCH_REPLY, {"now": now, "reply_id": row.reply_id})
            return Saved(row.reply_id, False, public=row.kind == "public")
        if row.kind == "public":
            _check_public_limit(conn, row.link_id, ip, now, limits)
        reply_id = row.link_id if row.kind == "personal" else secrets.token_urlsafe(18)
        window = dt.timedelta(hours=definition.edit_window_hours)
        conn.execute(
            _NEW_REPLY,
            {
                "reply_id": reply_id,
                "survey_id": row.survey_id,
                "version": version,
                "link_id": row.link_id,
                "customer_id": row.customer_id,
                "channel": row.channel,
                "language": language,
                "now": now,
                "editable_until": now + window,
            },
        )
        conn.execute(_NEW_ROW, main_row(reply_id, now))
        return Saved(reply_id, True, public=row.kind == "public")

    return (transact or in_transaction(store))(work)


def _text(value: str | None, field: str) -> str | None:
    text = (value or "").strip()
    if len(text) > TEXT_MAX:
        raise AnswerError(
            422, f"at most {TEXT_MAX:,} characters, please (this one has {len(text):,})", field=field
        )
    return text or None


@dataclass(frozen=True)
class _Custom:
    """A custom question's answer as stored: a rating or yes/no as a score, a choice question's
    ids in ``choices`` (never in ``comment``: that is for what the customer wrote)."""

    scale: tuple[int, int]
    score: float | None = None
    comment: str | None = None
    choices: str | None = None


def _custom_row(q: Question, values: Sequence[str]) -> _Custom | None:
    """A custom question's answer, or None when unanswered."""
    given = [v.strip() for v in values if v and v.strip()]
    if not given:
        if q.required:
            raise AnswerError(422, "this question needs an answer", field=q.id)
        return None
    if q.type == "rating":
        try:
            score = int(given[0])
        except ValueError:
            score = 0
        if not 1 <= score <= q.points:
            raise AnswerError(422, f"choose from 1 to {q.points}", field=q.id)
        return _Custom((1, q.points), score=float(score))
    if q.type == "yes_no":
        if given[0] not in ("yes", "no"):
            raise AnswerError(422, "answer yes or no", field=q.id)
        return _Custom((0, 1), score=1.0 if given[0] == "yes" else 0.0)
    if q.type in ("single", "multiple"):
        ids = {c.id for c in q.choices}
        if (q.type == "single" and len(given) > 1) or any(v not in ids for v in given):
            raise AnswerError(422, "choose among the choices shown", field=q.id)
        return _Custom((0, 0), choices=",".join(c.id for c in q.choices if c.id in given))
    return _Custom((0, 0), comment=_text(given[0], q.id))


def save_details(
    store: Store,
    definitions: DefinitionCache,
    token: str,
    *,
    form_token: str | None,
    comment: str | None,
    answers: Mapping[str, Sequence[str]],
    now: dt.datetime,
    reply_hint: str | None = None,
    transact: Transact[Saved] | None = None,
) -> Saved:
    """Save the follow-up comment and the custom questions, completing the reply."""
    comment = _text(comment, "comment")

    def work(conn: sa.Connection) -> Saved:
        row = _link(conn, token, reply_hint, now)
        _check_form(row, form_token)
        if row.reply_id is None:
            raise AnswerError(409, "give your score first", field="score")
        if not _editable(row, now):
            raise AnswerError(409, "your answer was recorded and can no longer be changed")
        definition = definitions.get(row.survey_id, row.reply_version or row.current_version)
        rows = []
        for q in definition.questions:
            found = _custom_row(q, answers.get(q.id, ()))
            if found is not None:
                rows.append(
                    _row(
                        row.reply_id,
                        q.id,
                        survey_id=row.survey_id,
                        kind="custom",
                        scale=found.scale,
                        score=found.score,
                        comment=found.comment,
                        choices=found.choices,
                        visit=row.channel,
                        customer_id=row.customer_id,
                        touchpoint=definition.touchpoint,
                        at=row.started_at or now,
                    )
                )
        conn.execute(_SET_COMMENT, {"comment": comment, "reply_id": row.reply_id})
        if definition.questions:
            conn.execute(
                A.delete().where(
                    A.c.source == SOURCE,
                    A.c.response_id == row.reply_id,
                    A.c.question_id.in_([q.id for q in definition.questions]),
                )
            )
        if rows:
            conn.execute(_NEW_ROW, rows)
        conn.execute(_COMPLETE_REPLY, {"now": now, "reply_id": row.reply_id})
        return Saved(row.reply_id, False)

    return (transact or in_transaction(store))(work)


def submit_answer(
    store: Store,
    definitions: DefinitionCache,
    survey_id: str,
    *,
    score: str | int,
    comment: str | None = None,
    answers: Mapping[str, Sequence[str]] | None = None,
    customer_id: str | None = None,
    channel: str | None = "api",
    answered_at: dt.datetime,
    now: dt.datetime,
    reply_id: str | None = None,
    transact: Transact[Saved] | None = None,
) -> Saved:
    """An answer collected elsewhere (a kiosk, a call): saved complete, against the current version.
    ``reply_id`` makes a resend idempotent (the same id updates the same answer)."""
    comment = _text(comment, "comment")
    with store.engine.connect() as conn:
        survey = conn.execute(sa.select(S.c.state, S.c.version).where(S.c.survey_id == survey_id)).first()
    if survey is None:
        raise AnswerError(404, f"no survey {survey_id!r}")
    if survey.state == "closed":
        raise AnswerError(409, f"survey {survey_id!r} is closed")
    if answered_at > now:
        raise AnswerError(422, "must not be in the future", field="answered_at")
    definition = definitions.get(survey_id, survey.version)
    value = parse_score(definition, str(score))
    rid = reply_id or "api-" + secrets.token_urlsafe(15)
    rows = [
        _row(
            rid,
            "main",
            survey_id=survey_id,
            kind=definition.main.kind,
            scale=definition.main.scale,
            score=value,
            comment=comment,
            visit=channel,
            customer_id=customer_id,
            touchpoint=definition.touchpoint,
            at=answered_at,
        )
    ]
    for q in definition.questions:
        found = _custom_row(q, (answers or {}).get(q.id, ()))
        if found is not None:
            rows.append(
                _row(
                    rid,
                    q.id,
                    survey_id=survey_id,
                    kind="custom",
                    scale=found.scale,
                    score=found.score,
                    comment=found.comment,
                    choices=found.choices,
                    visit=channel,
                    customer_id=customer_id,
                    touchpoint=definition.touchpoint,
                    at=answered_at,
                )
            )

    def work(conn: sa.Connection) -> Saved:
        existing = conn.execute(sa.select(R.c.survey_id).where(R.c.reply_id == rid)).first()
        if existing is not None and existing.survey_id != survey_id:
            raise AnswerError(409, f"reply {rid!r} answers another survey", field="reply_id")
        conn.execute(A.delete().where(A.c.source == SOURCE, A.c.response_id == rid))
        conn.execute(A.insert(), rows)
        if existing is None:
            conn.execute(
                R.insert().values(
                    reply_id=rid,
                    survey_id=survey_id,
                    version=survey.version,
                    link_id=None,
                    customer_id=customer_id,
                    channel=channel,
                    language=None,
                    started_at=answered_at,
                    completed_at=answered_at,
                    updated_at=now,
                    editable_until=now,
                    revision=1,
                )
            )
        else:
            conn.execute(
                R.update().where(R.c.reply_id == rid).values(updated_at=now, revision=R.c.revision + 1)
            )
        return Saved(rid, existing is None)

    return (transact or in_transaction(store))(work)
