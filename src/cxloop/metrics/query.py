"""A KPI query (grain, breakdown, filters, range, as-of) and the fact tables KPIs are built from.

A *fact* is one kind of event with a time: a purchase line, a survey answer, a ticket, a review.
:class:`Context` hands a KPI builder its fact as an Ibis table already limited to the query's
range, with a ``period`` column and one column per requested dimension, so a builder only says
what to aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import ibis
import ibis.expr.types as ir

from cxloop.errors import ConfigError
from cxloop.metrics.grains import Grain, truncate
from cxloop.metrics.source import Source


@dataclass(frozen=True)
class Options:
    """The knobs behind some definitions (documented in docs/metrics.md)."""

    active_days: int = 90  # a customer is active with a purchase in the last N days
    sla_hours: float = 24.0  # a ticket resolved within N hours of opening meets the SLA
    min_n: int = 30  # fewer observations than this put a warning on a sampled value
    confidence: float = 0.95
    top_share: float = 0.2  # "share of revenue from the top 20% of customers"


@dataclass(frozen=True)
class Query:
    grain: Grain = Grain.MONTH
    by: tuple[str, ...] = ()
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None  # exclusive; defaults to as_of
    as_of: datetime = datetime(2100, 1, 1)
    options: Options = Options()

    @property
    def until(self) -> datetime:
        """The end of the range: ``end``, but never beyond ``as_of``."""
        return min(self.end, self.as_of) if self.end else self.as_of


# Dimensions every fact with a customer gets through the customers table.
CUSTOMER_DIMENSIONS = {
    "segment": "segment",
    "region": "region",
    "country": "country",
    "acquisition_channel": "acquisition_channel",
}
COHORT = "cohort"  # the month of the customer's first purchase


@dataclass(frozen=True)
class Fact:
    """An event table: where its rows come from, its time column and its own dimensions."""

    name: str
    time: str
    dimensions: Mapping[str, str]  # dimension name -> column of the fact
    has_customer: bool = True

    def all_dimensions(self) -> list[str]:
        extra = [*CUSTOMER_DIMENSIONS, COHORT] if self.has_customer else []
        return [*self.dimensions, *(d for d in extra if d not in self.dimensions)]


FACTS = {
    "purchases": Fact(
        "purchases",
        "ordered_at",
        {"category": "category", "product": "product_id", "channel": "channel", "order_channel": "channel"},
    ),
    "orders": Fact("orders", "ordered_at", {"channel": "channel", "order_channel": "channel"}),
    "responses": Fact(
        "responses",
        "responded_at",
        {
            "touchpoint": "touchpoint",
            "survey": "survey_id",
            "channel": "channel",
            "response_channel": "channel",
        },
    ),
    "tickets": Fact(
        "tickets",
        "opened_at",
        {
            "channel": "channel",
            "ticket_channel": "channel",
            "category": "category",
            "ticket_category": "category",
            "agent": "agent_id",
            "priority": "priority",
        },
    ),
    "reviews": Fact(
        "reviews",
        "posted_at",
        {"source": "source", "review_source": "source", "brand": "brand", "review_kind": "kind"},
    ),
    "invitations": Fact(
        "invitations",
        "sent_at",
        {"survey": "survey_id", "channel": "channel", "response_channel": "channel"},
    ),
    # Subscription KPIs are states at period boundaries, like the customer-state ones.
    "subscriptions": Fact("subscriptions", "started_at", {"plan": "plan"}),
    # Customer-state KPIs (active, new, lost, retention) break down by the customer's own fields.
    "customers": Fact("customers", "ordered_at", {"channel": "acquisition_channel"}),
}


#: The columns of :meth:`Context.purchase_lines`, in order.
PURCHASE_LINE_COLUMNS = (
    "order_id",
    "customer_id",
    "ordered_at",
    "channel",
    "category",
    "product_id",
    "quantity",
    "amount",
)

#: Facts whose table has another name.
TABLE_OF_FACT = {"responses": "survey_responses", "invitations": "survey_invitations"}


class Context:
    """What a KPI builder gets: the source, the query, and its facts ready to aggregate."""

    def __init__(self, source: Source, query: Query, fact: Fact) -> None:
        self.source = source
        self.query = query
        self.fact = fact
        self._shared: dict[str, ir.Table] = {}
        unknown = [d for d in (*query.by, *query.where) if d not in fact.all_dimensions()]
        if unknown:
            raise ConfigError(
                f"dimension {unknown[0]!r} does not apply here; "
                f"choose from {', '.join(fact.all_dimensions())}"
            )

    @property
    def keys(self) -> list[str]:
        """The grouping columns of a result: period, then the breakdown."""
        return ["period", *self.query.by]

    @property
    def options(self) -> Options:
        return self.query.options

    # -- raw tables, cut at as_of ------------------------------------------------------------

    def table(self, name: str) -> ir.Table:
        return self.source.table(name)

    def purchase_lines(self, columns: Sequence[str] = PURCHASE_LINE_COLUMNS) -> ir.Table:
        """Order lines with their order's customer, time and channel; money as float64.

        ``columns`` narrows the result to what a builder reads: an engine that materialises the
        join (DuckDB and PostgreSQL do when it is used twice in one query) then keeps fewer and
        narrower rows (no text columns but the ones asked for)."""
        lines = self.table("order_lines")
        orders = self.table("orders")
        wanted = set(columns) | {"ordered_at"}
        fields = {
            "order_id": lines.order_id,
            "customer_id": orders.customer_id,
            "ordered_at": orders.ordered_at,
            "channel": orders.channel,
            "category": lines.category,
            "product_id": lines.product_id,
            "quantity": lines.quantity.cast("float64"),
            "amount": lines.amount.cast("float64"),
        }
        joined = lines.join(orders, lines.order_id == orders.order_id).select(
            **{name: value for name, value in fields.items() if name in wanted}
        )
        return joined.filter(joined.ordered_at < self.query.as_of)

    @cached_property
    def first_purchases(self) -> ir.Table:
        """customer_id, first_purchase_at: each customer's first purchase (quantity > 0) ever."""
        lines = self.purchase_lines(("customer_id", "ordered_at", "quantity"))
        bought = lines.filter((lines.quantity > 0) & lines.customer_id.notnull())
        return bought.group_by("customer_id").aggregate(first_purchase_at=bought.ordered_at.min())

    def shared(self, name: str, build: Callable[[Context], ir.Table]) -> ir.Table:
        """``build(self)``, built once per context: KPIs computed together on one context (see
        :func:`cxloop.metrics.compute.compute_queries`) then share the very same expression, which
        the engine computes once (a CTE). Per-context memtables make rebuilt ones differ."""
        if name not in self._shared:
            self._shared[name] = build(self)
        return self._shared[name]

    def raw(self, fact: str) -> ir.Table:
        if fact == "purchases":
            return self.purchase_lines()
        table = self.table(TABLE_OF_FACT.get(fact, fact))
        if fact == "customers":
            return table
        return table.filter(table[FACTS[fact].time] < self.query.as_of)

    # -- facts ready for a KPI --------------------------------------------------------------

    def events(self, fact: str | None = None, *, history: bool = False) -> ir.Table:
        """The fact's rows in the query's range (all rows before as_of with ``history``), with
        ``ts``, ``period`` and the requested dimension columns, filtered by ``where``."""
        spec = FACTS[fact] if fact else self.fact
        table = self.raw(spec.name)
        table = table.mutate(ts=table[spec.time])
        if not history:
            if self.query.start is not None:
                table = table.filter(table.ts >= self.query.start)
            table = table.filter(table.ts < self.query.until)
        table = self.with_dimensions(table, spec)
        return table.mutate(period=self.period_of(table.ts))

    def period_of(self, ts: ir.TimestampValue) -> ir.TimestampValue:
        if self.query.grain is Grain.ALL:
            return ibis.literal(self.range_start, type="timestamp")
        return truncate(ts, self.query.grain)

    def with_dimensions(self, table: ir.Table, spec: Fact | None = None) -> ir.Table:
        """Add the requested dimensions (by and where) as columns and apply ``where``."""
        spec = spec or self.fact
        wanted = list(dict.fromkeys([*self.query.by, *self.query.where]))
        on_customer = {**CUSTOMER_DIMENSIONS, **spec.dimensions} if spec.name == "customers" else {}
        if not on_customer:
            on_customer = {d: c for d, c in CUSTOMER_DIMENSIONS.items() if d not in spec.dimensions}
        own = {d: table[spec.dimensions[d]] for d in wanted if d in spec.dimensions and d not in on_customer}
        table = table.mutate(**own) if own else table
        customer_dims = [d for d in wanted if d in on_customer]
        if customer_dims:
            # One column per dimension, even when two dimensions name the same customer field
            # (`channel` and `acquisition_channel` on customer-state KPIs).
            customers = self.table("customers")
            customers = customers.select(
                _c_customer_id=customers.customer_id,
                **{f"_c_{d}": customers[on_customer[d]] for d in customer_dims},
            )
            table = table.left_join(customers, table.customer_id == customers._c_customer_id)
            table = table.mutate(**{d: table[f"_c_{d}"] for d in customer_dims}).drop(
                "_c_customer_id", *(f"_c_{d}" for d in customer_dims)
            )
        if COHORT in wanted and COHORT not in spec.dimensions:
            firsts = self.first_purchases.select(
                _f_customer_id="customer_id", _f_cohort=self.first_purchases.first_purchase_at.truncate("M")
            )
            table = table.left_join(firsts, table.customer_id == firsts._f_customer_id)
            table = table.mutate(cohort=table._f_cohort).drop("_f_customer_id", "_f_cohort")
        for name, values in self.query.where.items():
            column = table[name]
            if name == COHORT:
                table = table.filter(column.cast("string").substr(0, 7).isin(list(values)))
            else:
                table = table.filter(column.isin(list(values)))
        return table

    @cached_property
    def range_start(self) -> datetime:
        """The start of the range: the query's, else the first event of the fact."""
        if self.query.start is not None:
            return self.query.start
        spec = self.fact if self.fact.name != "customers" else FACTS["purchases"]
        table = self.raw(spec.name)
        first = table[spec.time].min().to_pyarrow().as_py()
        return first if first is not None else self.query.until
