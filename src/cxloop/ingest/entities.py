"""What each importable entity is: its table, natural key and fields with their rules.

These specs are the single source of truth for validation, the import guide and `--help`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from cxloop.store import schema

Kind = Literal["text", "int", "decimal", "timestamp", "bool"]


@dataclass(frozen=True)
class Field:
    """One canonical field: its type and the rules a value must satisfy."""

    name: str
    kind: Kind = "text"
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Entity:
    """An importable kind of record (the CLI's ``cxloop import ENTITY``)."""

    name: str
    table: sa.Table
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    doc: str
    keep_extra_columns_in: str | None = None

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _text(name: str, doc: str = "", *, required: bool = False) -> Field:
    return Field(name, "text", required=required, doc=doc)


def _time(name: str, doc: str = "", *, required: bool = False) -> Field:
    return Field(name, "timestamp", required=required, doc=doc)


CUSTOMERS = Entity(
    "customers",
    schema.customers,
    key=("customer_id",),
    fields=(
        _text("customer_id", "the business's customer id", required=True),
        _text("alias", "another id the customer is known by in other exports (optional)"),
        _text("name"),
        _text("email"),
        _text("segment"),
        _text("region"),
        _text("country"),
        _text("acquisition_channel"),
        _time("first_seen_at", "when the customer was acquired"),
        _text("attributes", "a JSON object of free attributes; other unmapped columns join it"),
    ),
    doc="One row per customer. Columns without a field are kept in `attributes` (JSON).",
    keep_extra_columns_in="attributes",
)

ORDERS = Entity(
    "orders",
    schema.orders,
    key=("order_id",),
    fields=(
        _text("order_id", required=True),
        _text("customer_id", "empty for guest orders"),
        _time("ordered_at", required=True),
        _text("status"),
        _text("channel"),
        _text("currency"),
        _text("country"),
        Field("total_amount", "decimal"),
    ),
    doc="One row per order (header level).",
)

ORDER_LINES = Entity(
    "order-lines",
    schema.order_lines,
    key=("order_id", "line_no"),
    fields=(
        _text("order_id", required=True),
        Field("line_no", "int", minimum=1, doc="position in the order; numbered in file order if absent"),
        _text("product_id"),
        _text("product_name"),
        _text("category"),
        Field("quantity", "decimal", doc="negative for a return; 1 if absent"),
        Field("unit_price", "decimal", doc="amount / quantity if absent"),
        Field("amount", "decimal", doc="quantity * unit_price if absent"),
        # Order-level fields: when `ordered_at` is mapped, the orders are made from the lines.
        _text("customer_id", "order level: makes orders from lines"),
        _time("ordered_at", "order level: when mapped, orders are made from the lines"),
        _text("status", "order level"),
        _text("channel", "order level"),
        _text("currency", "order level"),
        _text("country", "order level"),
    ),
    doc=(
        "One row per order line. Lines must belong to an order in the store, or carry the order's "
        "`ordered_at` (and customer) so that orders are made from them, as in line-level invoices."
    ),
)

SURVEY_KINDS = ("nps", "csat", "ces", "custom")
# The scale each kind has unless the mapping says otherwise (CSAT may be 3-, 5- or 7-point).
DEFAULT_SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}

RESPONSES = Entity(
    "responses",
    schema.survey_responses,
    key=("source", "response_id", "question_id"),
    fields=(
        _text("response_id", required=True),
        _text("question_id", "defaults to the kind"),
        _text("survey_id", "defaults to the source"),
        Field("kind", "text", required=True, choices=SURVEY_KINDS),
        Field("scale_min", "int", doc="defaults by kind: nps 0, csat 1, ces 1"),
        Field("scale_max", "int", doc="defaults by kind: nps 10, csat 5, ces 7"),
        Field("score", "decimal", doc="must lie on the scale; empty for a partial answer"),
        _text("comment", "what the customer wrote"),
        _text("choices", "a choice question's answer: the chosen choices' ids, comma-separated"),
        _text("channel"),
        _text("touchpoint"),
        _text("customer_id"),
        _time("responded_at", required=True),
    ),
    doc="One row per answer to a scored question (NPS, CSAT, CES or custom) with its comment.",
)

TICKETS = Entity(
    "tickets",
    schema.tickets,
    key=("source", "ticket_id"),
    fields=(
        _text("ticket_id", required=True),
        _text("customer_id"),
        _time("opened_at", required=True),
        _time("first_response_at", "not before opened_at"),
        _time("resolved_at", "not before opened_at"),
        _text("channel"),
        _text("category"),
        _text("priority"),
        _text("status"),
        _text("agent_id"),
        Field("is_complaint", "bool"),
        Field("reopens", "int", minimum=0),
        _text("subject"),
        _text("body"),
    ),
    doc="One row per support ticket or complaint.",
)

REVIEWS = Entity(
    "reviews",
    schema.reviews,
    key=("source", "review_id"),
    fields=(
        _text("review_id", required=True),
        Field("kind", "text", choices=("review", "post"), doc="review (default) or post"),
        _text("url"),
        _text("author"),
        Field("rating", "decimal", minimum=1, maximum=5, doc="1-5 stars; empty for posts"),
        _text("title"),
        _text("text"),
        _time("posted_at", required=True),
        _text("brand", "whose brand the text is about; defaults to 'own'"),
        Field("is_competitor", "bool", doc="true when brand is a competitor's; default false"),
        _text("language"),
        _text("customer_id"),
        _text("order_id"),
    ),
    doc="One row per online review or social media post, about us or a competitor.",
)

SUBSCRIPTIONS = Entity(
    "subscriptions",
    schema.subscriptions,
    key=("source", "subscription_id"),
    fields=(
        _text("subscription_id", required=True),
        _text("customer_id", required=True),
        _text("plan"),
        Field("mrr", "decimal", required=True, minimum=0, doc="monthly recurring revenue while it runs"),
        _time("started_at", required=True),
        _time("ended_at", "empty while it runs; not before started_at"),
    ),
    doc="One row per subscription (contract); a plan change ends one and starts another.",
)

INVITATIONS = Entity(
    "invitations",
    schema.survey_invitations,
    key=("source", "invitation_id"),
    fields=(
        _text("invitation_id", required=True),
        _text("survey_id", required=True),
        _text("customer_id", required=True),
        _text("channel", "email, sms, link, in-app, …"),
        _time("sent_at", required=True),
    ),
    doc="One row per survey invitation sent: the denominator of the response rate.",
)

EMPLOYEES = Entity(
    "employees",
    schema.employees,
    key=("employee_id",),
    fields=(
        _text("employee_id", required=True),
        _text("name"),
        _text("email"),
        _text("team"),
        _text("role"),
    ),
    doc="One row per employee or support agent.",
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        CUSTOMERS,
        ORDERS,
        ORDER_LINES,
        RESPONSES,
        TICKETS,
        REVIEWS,
        EMPLOYEES,
        SUBSCRIPTIONS,
        INVITATIONS,
    )
}


def get_entity(name: str) -> Entity:
    try:
        return ENTITIES[name]
    except KeyError:
        from cxloop.errors import ConfigError

        raise ConfigError(f"unknown entity {name!r}; choose one of: {', '.join(ENTITIES)}") from None
