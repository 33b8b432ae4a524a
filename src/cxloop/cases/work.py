"""Cases: opened from unhappy answers (once per response), listed, worked, closed.

* :func:`open_cases` — finds the answers that call for a follow-up (:mod:`cxloop.cases.detect`)
  and opens one case per response, assigned by rule with its SLA (:mod:`cxloop.cases.rules`).
  Idempotent: a response that has a case never gets another, however often it runs.
* :func:`list_cases`, :func:`get_case` — the inbox and one case, with the overdue flag
  (open, no follow-up yet, past due) and the customer's history.
* :func:`record_contact`, :func:`close_case` — the agent's work: contacts, outcome, root cause.

Every function takes ``now`` (naive UTC); nothing reads the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from cxloop.cases.detect import CommentJudge, keyword_judge, score_reasons
from cxloop.cases.errors import CaseClosed, CaseError, UnknownCase
from cxloop.cases.rules import Assigner
from cxloop.customers import CustomerDetail, customer_detail
from cxloop.store import schema
from cxloop.store.schema import case_notes, cases
from cxloop.store.store import Store

R = schema.survey_responses
STATUSES: Final = ("open", "closed")
MAX_TEXT: Final = 4000
DEFAULT_LOOKBACK: Final = dt.timedelta(days=30)
OPEN_LOCK: Final = 0x63784F50  # "cxOP": open_cases runs one at a time per schema (PostgreSQL)
ATTEMPTS: Final = 3

Resurvey = Callable[[dict[str, Any]], str | None]
"""Sends a short re-survey for a case being closed; returns the delivery id (None: not sent)."""


def advisory_key(lock: int) -> tuple[sa.ColumnElement[int], sa.ColumnElement[int]]:
    """The two keys of a PostgreSQL advisory lock: ``lock`` and the current schema's hash (so
    stores in different schemas of one database never wait for each other)."""
    return sa.literal(lock, sa.Integer), sa.func.hashtext(sa.func.current_schema())


def case_id_for(source: str, response_id: str) -> str:
    """The case id of a response: stable, so the same response always names the same case."""
    digest = hashlib.sha256(f"{source}\x1f{response_id}".encode()).hexdigest()
    return "K" + digest[:12].upper()


@dataclass(frozen=True)
class Candidate:
    """A response that calls for a follow-up, before it is assigned."""

    source: str
    response_id: str
    survey_id: str
    customer_id: str | None
    responded_at: dt.datetime
    reasons: list[str]
    kind: str | None = None
    score: Any = None
    scale_min: int | None = None
    scale_max: int | None = None
    comment: str | None = None


def candidates(
    conn: sa.Connection,
    *,
    since: dt.datetime,
    until: dt.datetime,
    judge: CommentJudge = keyword_judge,
) -> list[Candidate]:
    """Responses answered in [since, until] without a case that give a reason to open one."""
    low = sa.or_(
        sa.and_(R.c.kind == "nps", R.c.score <= 6),
        sa.and_(R.c.kind == "csat", R.c.score <= R.c.scale_min + 1),
        sa.and_(R.c.comment.is_not(None), R.c.comment != ""),
    )
    has_case = sa.exists().where(
        cases.c.response_source == R.c.source, cases.c.response_id == R.c.response_id
    )
    rows = conn.execute(
        sa.select(R)
        .where(R.c.responded_at >= since, R.c.responded_at <= until, low, ~has_case)
        .order_by(R.c.responded_at, R.c.source, R.c.response_id, R.c.question_id)
    ).all()
    by_response: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        by_response[(row.source, row.response_id)].append(row)
    comments = [(key, r.comment) for key, group in by_response.items() for r in group if r.comment]
    verdicts = judge([text for _, text in comments]) if comments else []
    negative = {key for (key, _), bad in zip(comments, verdicts, strict=True) if bad}
    found = []
    for key, group in by_response.items():
        reasons: list[str] = []
        scored = None
        for r in group:
            why = score_reasons(r.kind, r.score, r.scale_min, r.scale_max)
            if why and scored is None:
                scored = r
            reasons += [w for w in why if w not in reasons]
        if key in negative:
            reasons.append("negative_comment")
        if not reasons:
            continue
        first = scored or next((r for r in group if r.score is not None), group[0])
        text = "\n".join(r.comment for r in group if r.comment) or None
        found.append(
            Candidate(
                source=key[0],
                response_id=key[1],
                survey_id=first.survey_id,
                customer_id=first.customer_id,
                responded_at=first.responded_at,
                reasons=reasons,
                kind=first.kind,
                score=first.score,
                scale_min=first.scale_min,
                scale_max=first.scale_max,
                comment=text,
            )
        )
    return found


def open_cases(
    store: Store,
    *,
    now: dt.datetime,
    since: dt.datetime | None = None,
    judge: CommentJudge = keyword_judge,
) -> list[str]:
    """Open a case for every response answered since ``since`` (default: the last 30 days) up to
    ``now`` that calls for one and has none yet; return the new case ids (oldest answer first).

    Idempotent and safe to run concurrently (the server's background sweep, ``cxloop cases open``
    from cron, the API): on PostgreSQL the runs take turns (an advisory lock per schema); a run
    that still meets a case opened meanwhile (DuckDB: a write conflict in the same process) looks
    again, and a response never gets two cases (the case id is derived from it, and unique)."""
    start = since if since is not None else now - DEFAULT_LOOKBACK
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _open(store, now=now, since=start, judge=judge)
        except sa.exc.DBAPIError:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _open(store: Store, *, now: dt.datetime, since: dt.datetime, judge: CommentJudge) -> list[str]:
    start = since
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(*advisory_key(OPEN_LOCK))))
        found = candidates(conn, since=start, until=now, judge=judge)
        if not found:
            return []
        customers = _customers(conn, {c.customer_id for c in found if c.customer_id})
        assigner = Assigner(conn, cases)
        rows = []
        for c in found:
            rule, assignee = assigner.assign(customers.get(c.customer_id or "", {}))
            rows.append(
                {
                    "case_id": case_id_for(c.source, c.response_id),
                    "response_source": c.source,
                    "response_id": c.response_id,
                    "survey_id": c.survey_id,
                    "customer_id": c.customer_id,
                    "reasons": ",".join(c.reasons),
                    "kind": c.kind,
                    "score": c.score,
                    "scale_min": c.scale_min,
                    "scale_max": c.scale_max,
                    "comment": c.comment,
                    "responded_at": c.responded_at,
                    "opened_at": now,
                    "rule": rule.name,
                    "assignee": assignee,
                    "sla_hours": rule.sla_hours,
                    "due_at": now + dt.timedelta(hours=rule.sla_hours),
                    "status": "open",
                }
            )
        _insert(store, conn, rows)
    return [r["case_id"] for r in rows]


def _insert(store: Store, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """The new cases; on DuckDB many at once go as one Arrow table (row by row costs ~0.5 ms each:
    a sweep after a busy half minute opens thousands)."""
    if store.dialect != "duckdb" or len(rows) <= 200:
        conn.execute(cases.insert(), rows)
        return
    import pyarrow as pa

    names = list(rows[0])
    arrow = pa.table({n: [r[n] for r in rows] for n in names})
    duck: Any = conn.connection.driver_connection
    raw = duck._ConnectionWrapper__c
    raw.register("cx_new_cases", arrow)
    try:
        columns = ", ".join(names)
        raw.execute(f"INSERT INTO cases ({columns}) SELECT {columns} FROM cx_new_cases")
    finally:
        raw.unregister("cx_new_cases")


def _customers(conn: sa.Connection, ids: set[str]) -> dict[str, dict[str, Any]]:
    C = schema.customers
    out: dict[str, dict[str, Any]] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        for r in conn.execute(
            sa.select(C.c.customer_id, C.c.segment, C.c.region).where(C.c.customer_id.in_(chunk))
        ):
            out[r.customer_id] = {"segment": r.segment, "region": r.region}
    return out


# -- reading -------------------------------------------------------------------------------------


def _view(row: Any, now: dt.datetime) -> dict[str, Any]:
    case = dict(row._mapping)
    case["score"] = None if case["score"] is None else float(case["score"])
    case["reasons"] = case["reasons"].split(",") if case["reasons"] else []
    waiting = case["first_contact_at"] is None
    case["overdue"] = case["status"] == "open" and waiting and now > case["due_at"]
    contact = case["first_contact_at"]
    case["breached"] = (contact is not None and contact > case["due_at"]) or (
        waiting and now > case["due_at"]
    )
    return case


def _overdue(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(cases.c.status == "open", cases.c.first_contact_at.is_(None), cases.c.due_at < now)


@dataclass(frozen=True)
class CasePage:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def list_cases(
    store: Store,
    *,
    now: dt.datetime,
    status: str | None = None,
    overdue: bool = False,
    assignee: str | None = None,
    customer_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> CasePage:
    """Cases, the most urgent first (open before closed, then by due time), filtered by
    ``status`` (open | closed), ``overdue`` (open, not followed up, past due), ``assignee``
    (an email) and ``customer_id``. Each item carries ``overdue`` and ``breached`` flags."""
    if status is not None and status not in STATUSES:
        raise CaseError(f"status: must be one of {', '.join(STATUSES)}", field="status")
    if not 1 <= limit <= 1000 or offset < 0:
        raise CaseError("limit must be 1-1000 and offset 0 or more", field="limit")
    where: list[sa.ColumnElement[bool]] = []
    if status:
        where.append(cases.c.status == status)
    if overdue:
        where.append(_overdue(now))
    if assignee is not None:
        where.append(cases.c.assignee == assignee.strip().lower())
    if customer_id is not None:
        where.append(cases.c.customer_id == customer_id)
    order = [sa.case((cases.c.status == "open", 0), else_=1), cases.c.due_at, cases.c.case_id]
    with store.engine.connect() as conn:
        items = [
            _view(r, now)
            for r in conn.execute(sa.select(cases).where(*where).order_by(*order).limit(limit).offset(offset))
        ]
        total = int(conn.execute(sa.select(sa.func.count()).select_from(cases).where(*where)).scalar_one())
    return CasePage(items=items, total=total, limit=limit, offset=offset)


@dataclass(frozen=True)
class CaseView:
    """One case, what was done on it, and the customer's history (None: customer unknown)."""

    case: dict[str, Any]
    notes: list[dict[str, Any]]
    history: CustomerDetail | None
    previous_cases: list[dict[str, Any]] = field(default_factory=list)


def get_case(store: Store, case_id: str, *, now: dt.datetime, history: int = 50) -> CaseView:
    """The case ``case_id`` with its notes and the customer's timeline (``history`` events at
    most: orders, tickets, previous answers), or :class:`UnknownCase`."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.case_id == case_id)).first()
        if row is None:
            raise UnknownCase(case_id)
        notes = [
            dict(n._mapping)
            for n in conn.execute(
                sa.select(case_notes).where(case_notes.c.case_id == case_id).order_by(case_notes.c.note_no)
            )
        ]
        others = []
        if row.customer_id is not None:
            others = [
                _view(r, now)
                for r in conn.execute(
                    sa.select(cases)
                    .where(cases.c.customer_id == row.customer_id, cases.c.case_id != case_id)
                    .order_by(cases.c.opened_at.desc(), cases.c.case_id)
                )
            ]
    detail = customer_detail(store, row.customer_id, limit=history) if row.customer_id else None
    return CaseView(case=_view(row, now), notes=notes, history=detail, previous_cases=others)


# -- working -------------------------------------------------------------------------------------


def _text(value: str | None, name: str, *, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise CaseError(f"{name}: required", field=name)
        return None
    if len(text) > MAX_TEXT:
        raise CaseError(f"{name}: at most {MAX_TEXT} characters (got {len(text)})", field=name)
    return text


def _open_row(conn: sa.Connection, case_id: str) -> Any:
    row = conn.execute(sa.select(cases).where(cases.c.case_id == case_id)).first()
    if row is None:
        raise UnknownCase(case_id)
    if row.status == "closed":
        raise CaseClosed(case_id)
    return row


def _add_note(
    conn: sa.Connection, case_id: str, *, at: dt.datetime, author: str | None, kind: str, text: str
) -> None:
    last = conn.execute(
        sa.select(sa.func.max(case_notes.c.note_no)).where(case_notes.c.case_id == case_id)
    ).scalar()
    conn.execute(
        case_notes.insert().values(
            case_id=case_id, note_no=(last or 0) + 1, noted_at=at, author=author, kind=kind, text=text
        )
    )


def record_contact(store: Store, case_id: str, *, text: str, author: str | None, now: dt.datetime) -> None:
    """Record a contact with the customer (how, what was said); the first one ends the SLA clock."""
    note = _text(text, "contact", required=True)
    assert note is not None
    with store.engine.begin() as conn:
        row = _open_row(conn, case_id)
        _add_note(conn, case_id, at=now, author=author, kind="contact", text=note)
        if row.first_contact_at is None:
            conn.execute(cases.update().where(cases.c.case_id == case_id).values(first_contact_at=now))


def close_case(
    store: Store,
    case_id: str,
    *,
    outcome: str,
    root_cause: str,
    author: str | None,
    now: dt.datetime,
    contact: str | None = None,
    resurvey: Resurvey | None = None,
) -> dict[str, Any]:
    """Close an open case with its ``outcome`` and ``root_cause`` (both required); ``contact``
    records the follow-up too. A case closed without any recorded contact counts as followed up
    when closed. ``resurvey``, when given, sends the customer a short re-survey (its delivery id
    is kept on the case). Raises :class:`UnknownCase` or :class:`CaseClosed`."""
    outcome_text = _text(outcome, "outcome", required=True)
    cause_text = _text(root_cause, "root_cause", required=True)
    contact_text = _text(contact, "contact", required=False)
    with store.engine.begin() as conn:
        row = _open_row(conn, case_id)
        if contact_text:
            _add_note(conn, case_id, at=now, author=author, kind="contact", text=contact_text)
        _add_note(
            conn, case_id, at=now, author=author, kind="closed",
            text=f"outcome: {outcome_text}\nroot cause: {cause_text}",
        )  # fmt: skip
        conn.execute(
            cases.update()
            .where(cases.c.case_id == case_id, cases.c.status == "open")
            .values(
                status="closed",
                closed_at=now,
                closed_by=author,
                outcome=outcome_text,
                root_cause=cause_text,
                first_contact_at=row.first_contact_at or now,
            )
        )
    closed = dict(_view_by_id(store, case_id, now))
    if resurvey is not None and closed["customer_id"]:
        delivery = resurvey(closed)
        if delivery is not None:
            with store.engine.begin() as conn:
                conn.execute(
                    cases.update().where(cases.c.case_id == case_id).values(resurvey_delivery_id=delivery)
                )
            closed["resurvey_delivery_id"] = delivery
    return closed


def _view_by_id(store: Store, case_id: str, now: dt.datetime) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.case_id == case_id)).first()
    if row is None:
        raise UnknownCase(case_id)
    return _view(row, now)
