"""Customers: find them, and see one whole — orders, answers, tickets and reviews on one timeline.

The functions the REST API (``/api/v1/customers``) and the customer pages share:

* :func:`search_customers` — text search over id, name and email, filters, sort, and a page with
  the total, each customer with their order count and last purchase (and revenue, on request);
* :func:`customer_detail` — one customer, their headline figures and their timeline, newest first.

Revenue is net of returns: the sum of the customer's order line amounts, as the revenue KPIs count
it. Everything is plain SQLAlchemy Core, the same statements on DuckDB and PostgreSQL. On DuckDB
the data tables carry no index (docs/architecture.md): a customer's rows are found by scans, which
DuckDB runs in parallel and prunes with its min/max zone maps; the figures at 1M customers are in
docs/web.md.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from cxloop.store import schema
from cxloop.store.store import Store

__all__ = [
    "EVENT_TYPES",
    "SORTS",
    "CustomerDetail",
    "CustomerPage",
    "customer_detail",
    "search_customers",
]

C = schema.customers
O = schema.orders  # noqa: E741 - the table's name
L = schema.order_lines
R = schema.survey_responses
T = schema.tickets
V = schema.reviews

LIST_COLUMNS = (
    "customer_id",
    "name",
    "email",
    "segment",
    "region",
    "country",
    "acquisition_channel",
    "first_seen_at",
)
SORTS = ("customer_id", "name", "email", "segment", "region", "country", "first_seen_at")
"""Columns a search may sort by; ``-name`` sorts descending. Ties are broken by customer id."""
EVENT_TYPES = ("order", "answer", "ticket", "review")
MAX_LIMIT = 1000
IN_CHUNK = 1000


@dataclass(frozen=True)
class CustomerPage:
    """One page of a search: ``items`` (dicts, see :func:`search_customers`) and the ``total``."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, or None on the last."""
        following = self.offset + self.limit
        return following if following < self.total else None


@dataclass(frozen=True)
class CustomerDetail:
    """One customer: their row, aliases, headline figures, and their timeline (newest first)."""

    customer: dict[str, Any]
    aliases: list[str]
    figures: dict[str, Any]
    timeline: list[dict[str, Any]]
    more: bool = False
    """Older events exist beyond ``timeline``: ask again with ``before`` = the last event's ``at``."""
    counts: dict[str, int] = field(default_factory=dict)


def search_customers(
    store: Store,
    *,
    q: str | None = None,
    segment: Sequence[str] = (),
    region: Sequence[str] = (),
    sort: str = "customer_id",
    limit: int = 50,
    offset: int = 0,
    with_revenue: bool = False,
) -> CustomerPage:
    """Customers whose id, name or email contains ``q`` (ignoring case), in ``segment`` and
    ``region`` (any of the values given), sorted by ``sort`` (a column of :data:`SORTS`, ``-``
    first for descending; NULLs last), ``limit`` from ``offset``, with the ``total`` matching.

    Each item holds the customer's columns (:data:`LIST_COLUMNS`), ``orders`` and ``last_order_at``,
    and with ``with_revenue`` their net ``revenue`` — which reads the order lines of the page's
    orders: on DuckDB, without an index, a scan of the lines table (about 0.5 s at 10M lines).
    Raises ``ValueError`` for an unknown sort or a limit outside 1-1000.
    """
    descending = sort.startswith("-")
    column = sort.removeprefix("-")
    if column not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; sort by {', '.join(SORTS)} (- first for descending)")
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise ValueError(f"limit must be 1-{MAX_LIMIT} and offset 0 or more")
    conditions: list[sa.ColumnElement[bool]] = []
    if q and q.strip():
        # strpos, not LIKE: no wildcard to escape, and DuckDB runs it twice as fast over 1M rows.
        text = sa.func.lower(sa.literal(q.strip(), sa.Text))
        conditions.append(
            sa.or_(
                *(sa.func.strpos(sa.func.lower(C.c[n]), text) > 0 for n in ("customer_id", "name", "email"))
            )
        )
    if segment:
        conditions.append(C.c.segment.in_(list(segment)))
    if region:
        conditions.append(C.c.region.in_(list(region)))
    sort_key = _search_order(store, C.c[column]) if q and q.strip() else C.c[column]
    key = sort_key.desc() if descending else sort_key.asc()
    order = [key.nulls_last()] if column != "customer_id" else [key]
    if column != "customer_id":
        order.append(C.c.customer_id.asc())
    page = (
        sa.select(*(C.c[name] for name in LIST_COLUMNS))
        .where(*conditions)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    count = sa.select(sa.func.count()).select_from(C).where(*conditions)
    with store.engine.connect() as conn:
        items = [dict(row._mapping) for row in conn.execute(page)]
        if (items and len(items) < limit) or (not items and offset == 0):
            total = offset + len(items)  # the last page: no second pass over the matches to count them
        else:
            total = int(conn.execute(count).scalar_one())
        figures = _order_figures(conn, [item["customer_id"] for item in items], with_revenue)
    for item in items:
        item.update(figures.get(item["customer_id"]) or _no_orders(with_revenue))
    return CustomerPage(items=items, total=total, limit=limit, offset=offset)


def _search_order(store: Store, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """The sort key of a text search: on PostgreSQL, one its primary key's index cannot serve.

    To find a few matches in id order PostgreSQL walks the index over every row (2.8 s at 1M
    customers); a parallel scan and a top-N sort of the matches take 1 s. DuckDB has no index to
    avoid, and computing the expression would cost it (80 -> 380 ms): the column as it is.
    """
    if store.dialect == "postgresql" and column.primary_key:
        return column.concat("")
    return column


def _order_figures(conn: sa.Connection, ids: list[str], with_revenue: bool) -> dict[str, dict[str, Any]]:
    """Order count, last order time (and net revenue) of each of ``ids``."""
    if not ids:
        return {}
    # A join with the ids as VALUES: on DuckDB 2.4x faster than IN (...) with 50 parameters.
    wanted = sa.values(sa.column("id", sa.Text), name="wanted").data([(i,) for i in ids])
    found = conn.execute(
        sa.select(O.c.customer_id, O.c.order_id, O.c.ordered_at).where(
            O.c.customer_id.in_(sa.select(wanted.c.id))
        )
    ).all()
    amounts = _order_amounts(conn, [r.order_id for r in found]) if with_revenue else {}
    out: dict[str, dict[str, Any]] = {}
    for r in found:
        figures = out.setdefault(r.customer_id, _no_orders(with_revenue))
        figures["orders"] += 1
        if with_revenue:
            figures["revenue"] += amounts.get(r.order_id, 0.0)
        if figures["last_order_at"] is None or r.ordered_at > figures["last_order_at"]:
            figures["last_order_at"] = r.ordered_at
    return out


def _no_orders(with_revenue: bool) -> dict[str, Any]:
    return {"orders": 0, "last_order_at": None, **({"revenue": 0.0} if with_revenue else {})}


def _order_amounts(conn: sa.Connection, order_ids: list[str]) -> dict[str, float]:
    """Each order's net amount (the sum of its lines), in chunks of literal ids: DuckDB prunes the
    10M-row lines table by their range, where a join with orders would scan it."""
    amounts: dict[str, float] = {}
    for start in range(0, len(order_ids), IN_CHUNK):
        chunk = order_ids[start : start + IN_CHUNK]
        query = (
            sa.select(L.c.order_id, sa.func.sum(L.c.amount))
            .where(L.c.order_id.in_(chunk))
            .group_by(L.c.order_id)
        )
        amounts.update({order_id: float(total or 0) for order_id, total in conn.execute(query)})
    return amounts


def customer_detail(
    store: Store,
    customer_id: str,
    *,
    limit: int = 200,
    before: dt.datetime | None = None,
    types: Sequence[str] = EVENT_TYPES,
) -> CustomerDetail | None:
    """The customer ``customer_id`` (or the customer an alias names), or None when unknown.

    ``figures``: ``orders``, ``revenue`` (net of returns), ``first_purchase_at``,
    ``last_purchase_at``, ``answers``, ``last_nps`` (score and time of the latest NPS answer),
    ``tickets``, ``open_tickets``, ``complaints``, ``reviews``. ``timeline``: at most ``limit``
    events of ``types``, newest first, each ``{"type", "at", "id", "source", ...}`` — an order with
    its ``lines``, an answer with its score and comment, a ticket, a review. ``before`` (exclusive)
    pages back in time. Text is returned as stored: the caller escapes it where it renders it.
    """
    unknown = set(types) - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown event type(s) {sorted(unknown)}; use {', '.join(EVENT_TYPES)}")
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(C).where(C.c.customer_id == customer_id)).first()
        if row is None:
            alias = schema.customer_aliases
            owner = conn.execute(sa.select(alias.c.customer_id).where(alias.c.alias == customer_id)).scalar()
            if owner is None:
                return None
            row = conn.execute(sa.select(C).where(C.c.customer_id == owner)).first()
            if row is None:
                return None
        customer = _customer(row._mapping)
        cid = customer["customer_id"]
        aliases = list(
            conn.execute(
                sa.select(schema.customer_aliases.c.alias)
                .where(schema.customer_aliases.c.customer_id == cid)
                .order_by(schema.customer_aliases.c.alias)
            ).scalars()
        )
        fetch = limit + 1  # one more than asked says whether older events exist
        orders, order_events = _orders(conn, cid, before, fetch if "order" in types else 0)
        figures, counts = _figures(conn, cid, orders)
        events: list[dict[str, Any]] = list(order_events)
        if "answer" in types:
            events += _answers(conn, cid, before, fetch)
        if "ticket" in types:
            events += _tickets(conn, cid, before, fetch)
        if "review" in types:
            events += _reviews(conn, cid, before, fetch)
    events.sort(key=lambda e: (e["at"], e["type"], e["id"]), reverse=True)
    return CustomerDetail(
        customer=customer,
        aliases=aliases,
        figures=figures,
        timeline=events[:limit],
        more=len(events) > limit,
        counts=counts,
    )


def _customer(row: Any) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("row_hash", "import_id")}
    out["attributes"] = _attributes(out.get("attributes"))
    return out


def _attributes(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": value}


def _number(value: Decimal | float | int | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class _Orders:
    """Figures over all of a customer's orders."""

    count: int
    revenue: float
    first: dt.datetime | None
    last: dt.datetime | None


def _figures(conn: sa.Connection, cid: str, orders: _Orders) -> tuple[dict[str, Any], dict[str, int]]:
    answers = conn.execute(sa.select(sa.func.count()).where(R.c.customer_id == cid)).scalar_one()
    nps = conn.execute(
        sa.select(R.c.score, R.c.responded_at)
        .where(R.c.customer_id == cid, R.c.kind == "nps", R.c.score.is_not(None))
        .order_by(R.c.responded_at.desc(), R.c.response_id.desc())
        .limit(1)
    ).first()
    tickets = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.count(sa.case((T.c.resolved_at.is_(None), 1))),
            sa.func.count(sa.case((T.c.is_complaint.is_(True), 1))),
        ).where(T.c.customer_id == cid)
    ).one()
    reviews = conn.execute(sa.select(sa.func.count()).where(V.c.customer_id == cid)).scalar_one()
    figures: dict[str, Any] = {
        "orders": orders.count,
        "revenue": orders.revenue,
        "first_purchase_at": orders.first,
        "last_purchase_at": orders.last,
        "answers": int(answers),
        "last_nps": None if nps is None else {"score": _number(nps.score), "at": nps.responded_at},
        "tickets": int(tickets[0]),
        "open_tickets": int(tickets[1]),
        "complaints": int(tickets[2]),
        "reviews": int(reviews),
    }
    counts = {
        "order": figures["orders"],
        "answer": figures["answers"],
        "ticket": figures["tickets"],
        "review": figures["reviews"],
    }
    return figures, counts


def _before(column: sa.ColumnElement[Any], before: dt.datetime | None) -> list[sa.ColumnElement[bool]]:
    return [] if before is None else [column < before]


def _orders(
    conn: sa.Connection, cid: str, before: dt.datetime | None, fetch: int
) -> tuple[_Orders, list[dict[str, Any]]]:
    """The figures over all the customer's orders, and the ``fetch`` newest before ``before`` as
    events with their lines: one scan of orders, and of the lines only the orders' own."""
    found = conn.execute(
        sa.select(O).where(O.c.customer_id == cid).order_by(O.c.ordered_at.desc(), O.c.order_id.desc())
    ).all()
    page = [r for r in found if before is None or r.ordered_at < before][:fetch]
    lines: dict[str, list[dict[str, Any]]] = {r.order_id: [] for r in page}
    for start in range(0, len(page), IN_CHUNK):
        chunk = list(lines)[start : start + IN_CHUNK]
        for line in conn.execute(
            sa.select(L).where(L.c.order_id.in_(chunk)).order_by(L.c.order_id, L.c.line_no)
        ):
            lines[line.order_id].append(
                {
                    "line_no": line.line_no,
                    "product_id": line.product_id,
                    "product_name": line.product_name,
                    "category": line.category,
                    "quantity": _number(line.quantity),
                    "unit_price": _number(line.unit_price),
                    "amount": _number(line.amount),
                }
            )
    amounts = {order_id: sum((x["amount"] or 0.0) for x in items) for order_id, items in lines.items()}
    amounts.update(_order_amounts(conn, [r.order_id for r in found if r.order_id not in amounts]))
    figures = _Orders(
        count=len(found),
        revenue=sum(amounts.values()),
        first=min((r.ordered_at for r in found), default=None),
        last=max((r.ordered_at for r in found), default=None),
    )
    events = [
        {
            "type": "order",
            "at": r.ordered_at,
            "id": r.order_id,
            "source": r.source,
            "status": r.status,
            "channel": r.channel,
            "currency": r.currency,
            "country": r.country,
            "total_amount": _number(r.total_amount),
            "amount": amounts[r.order_id],
            "lines": lines[r.order_id],
        }
        for r in page
    ]
    return figures, events


def _answers(conn: sa.Connection, cid: str, before: dt.datetime | None, fetch: int) -> list[dict[str, Any]]:
    found = conn.execute(
        sa.select(R)
        .where(R.c.customer_id == cid, *_before(R.c.responded_at, before))
        .order_by(R.c.responded_at.desc(), R.c.response_id.desc(), R.c.question_id.desc())
        .limit(fetch)
    )
    return [
        {
            "type": "answer",
            "at": r.responded_at,
            "id": r.response_id,
            "source": r.source,
            "survey_id": r.survey_id,
            "question_id": r.question_id,
            "kind": r.kind,
            "score": _number(r.score),
            "scale_min": r.scale_min,
            "scale_max": r.scale_max,
            "comment": r.comment,
            "choices": r.choices,
            "channel": r.channel,
            "touchpoint": r.touchpoint,
        }
        for r in found
    ]


def _tickets(conn: sa.Connection, cid: str, before: dt.datetime | None, fetch: int) -> list[dict[str, Any]]:
    found = conn.execute(
        sa.select(T)
        .where(T.c.customer_id == cid, *_before(T.c.opened_at, before))
        .order_by(T.c.opened_at.desc(), T.c.ticket_id.desc())
        .limit(fetch)
    )
    return [
        {
            "type": "ticket",
            "at": r.opened_at,
            "id": r.ticket_id,
            "source": r.source,
            "subject": r.subject,
            "body": r.body,
            "channel": r.channel,
            "category": r.category,
            "priority": r.priority,
            "status": r.status,
            "is_complaint": r.is_complaint,
            "first_response_at": r.first_response_at,
            "resolved_at": r.resolved_at,
            "reopens": r.reopens,
            "agent_id": r.agent_id,
        }
        for r in found
    ]


def _reviews(conn: sa.Connection, cid: str, before: dt.datetime | None, fetch: int) -> list[dict[str, Any]]:
    found = conn.execute(
        sa.select(V)
        .where(V.c.customer_id == cid, *_before(V.c.posted_at, before))
        .order_by(V.c.posted_at.desc(), V.c.review_id.desc())
        .limit(fetch)
    )
    return [
        {
            "type": "review",
            "at": r.posted_at,
            "id": r.review_id,
            "source": r.source,
            "kind": r.kind,
            "rating": _number(r.rating),
            "title": r.title,
            "text": r.text,
            "url": r.url,
            "author": r.author,
            "brand": r.brand,
            "language": r.language,
            "order_id": r.order_id,
        }
        for r in found
    ]
