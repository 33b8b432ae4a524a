"""The customers API (``/api/v1/customers``): search, and one customer with their timeline.

Thin shells over :mod:`cxloop.customers`; customer-level rows need ``data.read``. Text (names,
comments, ticket bodies, reviews) is returned as JSON strings exactly as stored: whoever renders it
escapes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cxloop.customers import EVENT_TYPES, SORTS, customer_detail, search_customers
from cxloop.web.api_metrics import invalid, naive_utc
from cxloop.web.auth import require
from cxloop.web.deps import StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.roles import Capability
from cxloop.web.strict import no_unknown_query

router = APIRouter(
    prefix="/api/v1/customers",
    tags=["customers"],
    dependencies=[Depends(require(Capability.DATA_READ)), Depends(no_unknown_query)],
)


class CustomerItem(BaseModel):
    """A customer in a search result, with their order figures."""

    customer_id: str = Field(examples=["C000042"])
    name: str | None = Field(examples=["Ana Lima"])
    email: str | None = Field(examples=["ana@example.com"])
    segment: str | None = Field(examples=["consumer"])
    region: str | None = Field(examples=["West"])
    country: str | None = Field(examples=["US"])
    acquisition_channel: str | None = Field(examples=["organic"])
    first_seen_at: dt.datetime | None = Field(examples=["2024-03-02T10:15:00"])
    orders: int = Field(examples=[7])
    revenue: float | None = Field(
        default=None, description="Net of returns (with with_revenue=true; else null)", examples=[912.4]
    )
    last_order_at: dt.datetime | None = Field(examples=["2025-12-01T18:02:00"])


class CustomerList(BaseModel):
    """One page of customers. ``next`` is the URL of the following page (null on the last)."""

    items: list[CustomerItem]
    total: int = Field(description="Customers matching, whatever the page", examples=[1204])
    limit: int = Field(examples=[50])
    offset: int = Field(examples=[0])
    next: str | None = Field(examples=["/api/v1/customers?q=lima&limit=50&offset=50"])


class Customer(BaseModel):
    """A customer's stored row; ``attributes`` holds the export's columns without a field."""

    customer_id: str = Field(examples=["C000042"])
    name: str | None = Field(examples=["Ana Lima"])
    email: str | None = Field(examples=["ana@example.com"])
    segment: str | None = Field(examples=["consumer"])
    region: str | None = Field(examples=["West"])
    country: str | None = Field(examples=["US"])
    acquisition_channel: str | None = Field(examples=["organic"])
    first_seen_at: dt.datetime | None = Field(examples=["2024-03-02T10:15:00"])
    attributes: dict[str, Any] = Field(examples=[{"loyalty_tier": "gold"}])
    source: str = Field(examples=["shop"])


class LastNps(BaseModel):
    score: float | None = Field(examples=[9])
    at: dt.datetime = Field(examples=["2025-11-20T08:00:00"])


class Figures(BaseModel):
    """Headline figures over the customer's whole history."""

    orders: int = Field(examples=[7])
    revenue: float = Field(description="Net of returns", examples=[912.4])
    first_purchase_at: dt.datetime | None = Field(examples=["2024-03-02T10:15:00"])
    last_purchase_at: dt.datetime | None = Field(examples=["2025-12-01T18:02:00"])
    answers: int = Field(examples=[3])
    last_nps: LastNps | None
    tickets: int = Field(examples=[2])
    open_tickets: int = Field(examples=[0])
    complaints: int = Field(examples=[1])
    reviews: int = Field(examples=[1])


class OrderLine(BaseModel):
    line_no: int = Field(examples=[1])
    product_id: str | None = Field(examples=["P0042"])
    product_name: str | None = Field(examples=["Kettle"])
    category: str | None = Field(examples=["kitchen"])
    quantity: float | None = Field(examples=[2])
    unit_price: float | None = Field(examples=[24.5])
    amount: float | None = Field(examples=[49.0])


class Event(BaseModel):
    at: dt.datetime = Field(description="When it happened, UTC", examples=["2025-12-01T18:02:00"])
    id: str = Field(examples=["O0012345"])
    source: str = Field(examples=["shop"])


class OrderEvent(Event):
    type: Literal["order"] = "order"
    status: str | None = Field(examples=["complete"])
    channel: str | None = Field(examples=["web"])
    currency: str | None = Field(examples=["EUR"])
    country: str | None = Field(examples=["PT"])
    total_amount: float | None = Field(description="As exported", examples=[49.0])
    amount: float = Field(description="Sum of the lines", examples=[49.0])
    lines: list[OrderLine]


class AnswerEvent(Event):
    type: Literal["answer"] = "answer"
    survey_id: str = Field(examples=["relationship-2025"])
    question_id: str = Field(examples=["nps"])
    kind: str = Field(examples=["nps"])
    score: float | None = Field(examples=[9])
    scale_min: int = Field(examples=[0])
    scale_max: int = Field(examples=[10])
    comment: str | None = Field(examples=["Fast delivery <3"])
    choices: str | None = Field(
        default=None, description="A choice question's answer: the ids chosen, comma-separated"
    )
    channel: str | None = Field(examples=["email"])
    touchpoint: str | None = Field(examples=["delivery"])


class TicketEvent(Event):
    type: Literal["ticket"] = "ticket"
    subject: str | None = Field(examples=["Where is my order?"])
    body: str | None = Field(examples=["It has been two weeks."])
    channel: str | None = Field(examples=["email"])
    category: str | None = Field(examples=["delivery"])
    priority: str | None = Field(examples=["high"])
    status: str | None = Field(examples=["solved"])
    is_complaint: bool | None = Field(examples=[True])
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    reopens: int | None = Field(examples=[0])
    agent_id: str | None = Field(examples=["E007"])


class ReviewEvent(Event):
    type: Literal["review"] = "review"
    kind: str = Field(examples=["review"])
    rating: float | None = Field(examples=[4])
    title: str | None = Field(examples=["Good value"])
    text: str | None = Field(examples=["Would buy again."])
    url: str | None
    author: str | None
    brand: str = Field(examples=["own"])
    language: str | None = Field(examples=["en"])
    order_id: str | None


TimelineEvent = Annotated[OrderEvent | AnswerEvent | TicketEvent | ReviewEvent, Field(discriminator="type")]


class CustomerView(BaseModel):
    """A customer, their figures, and their timeline, newest first."""

    customer: Customer
    aliases: list[str] = Field(description="Other ids exports use for this customer", examples=[[]])
    figures: Figures
    timeline: list[TimelineEvent]
    more: bool = Field(description="Older events exist: ask again with before=<the last event's at>")


@router.get("", summary="Search customers", responses=problem_responses(401, 403, 422))
def list_customers(
    request: Request,
    store: StoreDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200, description="Text in the customer id, name or email (any case)", examples=["lima"]
        ),
    ] = None,
    segment: Annotated[list[str], Query(description="Only these segments (repeatable)")] = [],  # noqa: B006
    region: Annotated[list[str], Query(description="Only these regions (repeatable)")] = [],  # noqa: B006
    sort: Annotated[
        str,
        Query(description=f"One of {', '.join(SORTS)}; prefix - for descending", examples=["-first_seen_at"]),
    ] = "customer_id",
    limit: Annotated[int, Query(ge=1, le=1000, description="Customers per page")] = 50,
    offset: Annotated[int, Query(ge=0, description="Customers to skip")] = 0,
    with_revenue: Annotated[
        bool,
        Query(description="Add each customer's net revenue (reads the order lines: slower on big stores)"),
    ] = False,
) -> CustomerList:
    """Search customers by text in their id, name or email, filter by segment and region, sort, and
    page with `limit` and `offset`; `total` counts every match and `next` links the next page."""
    if sort.removeprefix("-") not in SORTS:
        raise invalid("sort", f"unknown sort {sort!r}; sort by {', '.join(SORTS)} (- first for descending)")
    page = search_customers(
        store,
        q=q,
        segment=segment,
        region=region,
        sort=sort,
        limit=limit,
        offset=offset,
        with_revenue=with_revenue,
    )
    following = page.next_offset
    next_url = None
    if following is not None:
        url = request.url.include_query_params(offset=following, limit=limit)
        next_url = f"{url.path}?{url.query}"
    return CustomerList(
        items=[CustomerItem(**item) for item in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next=next_url,
    )


@router.get(
    "/{customer_id}",
    summary="One customer: figures and timeline",
    responses=problem_responses(401, 403, 404, 422),
)
def customer(
    customer_id: str,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Timeline events at most")] = 200,
    before: Annotated[
        dt.datetime | None, Query(description="Only events before this moment (ISO 8601, UTC): the next page")
    ] = None,
    type: Annotated[
        list[Literal["order", "answer", "ticket", "review"]],
        Query(description="Only these event types (repeatable; default all)"),
    ] = [],  # noqa: B006
) -> CustomerView:
    """One customer (by id, or by an alias an export used): the stored row, headline figures (orders,
    net revenue, first and last purchase, last NPS, tickets, reviews) and the timeline of orders
    with their lines, survey answers, tickets and reviews, newest first."""
    found = customer_detail(
        store, customer_id, limit=limit, before=naive_utc(before), types=type or EVENT_TYPES
    )
    if found is None:
        raise Problem(404, detail=f"no customer with the id {customer_id!r}", customer_id=customer_id)
    return CustomerView(
        customer=Customer(**found.customer),
        aliases=found.aliases,
        figures=Figures(**found.figures),
        timeline=found.timeline,  # type: ignore[arg-type]  # validated into the event models
        more=found.more,
    )
