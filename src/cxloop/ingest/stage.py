"""Type, check and shape a raw file into the rows each store table will receive.

The work happens in DuckDB, set-based, in a few passes over the staged file:

1. ``cx_typed``: every canonical field parsed from its source, and per row a list of errors
   (presence, type, range, choices, size) plus the entity's own rules (a score on its scale, a
   ticket not resolved before it was opened, an order line's amount).
2. ``cx_errors``: those errors, one per row and field, plus duplicate keys inside the file and
   references to rows that exist neither in the file nor in the store.
3. One staged relation per table to write (``cx_out_<table>``), made from the good rows only,
   with each row's content hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import sqlalchemy as sa

from cxloop.ingest import sqlgen
from cxloop.ingest.entities import DEFAULT_SCALES, Entity
from cxloop.ingest.mapping import Column, Constant, EntityMapping, Source
from cxloop.ingest.readers import RawTable
from cxloop.store import schema
from cxloop.store.sql import ident, idents, literal

# (table name, key columns, value columns, SQL of the keys wanted) -> SQL of a relation
Lookup = Callable[[str, tuple[str, ...], tuple[str, ...], str], str]

_DUCK_TYPES = {
    "text": "VARCHAR",
    "int": "INTEGER",
    "decimal": "DECIMAL(18, 4)",
    "timestamp": "TIMESTAMP",
    "bool": "BOOLEAN",
}
ERROR_TYPE = "STRUCT(field VARCHAR, value VARCHAR, reason VARCHAR)[]"


@dataclass(frozen=True)
class Output:
    """A staged relation bound for one store table."""

    table: sa.Table
    relation: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # content columns, source and row_hash included


@dataclass(frozen=True)
class StageContext:
    source: str
    max_field_bytes: int
    lookup: Lookup
    timezone: str = "UTC"  # the business time zone naive times are in


def content_columns(table: sa.Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name not in ("row_hash", "import_id"))


# ---------------------------------------------------------------- pass 1: typed rows + errors


def build_typed(
    conn: duckdb.DuckDBPyConnection,
    raw: RawTable,
    entity: Entity,
    mapping: EntityMapping,
    ctx: StageContext,
) -> None:
    """``cx_typed``: every field parsed, and ``__bad`` for rows that fail a check.

    Each row gets only a cheap flag here; the list of reasons is built later, by
    :func:`collect_errors`, for the flagged rows alone — most files have few or none.
    """
    conn.execute(f"CREATE OR REPLACE TEMP TABLE cx_typed AS {typed_sql(raw, entity, mapping, ctx)}")


def typed_sql(raw: RawTable, entity: Entity, mapping: EntityMapping, ctx: StageContext) -> str:
    """The query behind ``cx_typed``: ``__row``, every field typed, and the ``__bad`` flag."""
    plan = _typed_plan(raw, entity, mapping, ctx)
    replace = ", ".join(f"{sql} AS {ident(c)}" for c, sql in plan.replacements.items())
    # t1 parses every value once; the checks then refer to the parsed and raw values by name.
    return (
        f"WITH t1 AS (SELECT {', '.join(plan.selects)} FROM {raw.table}), "
        f"t2 AS (SELECT *, {sqlgen.any_failed(plan.field_checks)} AS __bad1 FROM t1) "
        f"SELECT * EXCLUDE ({', '.join(plan.hidden)}){f' REPLACE ({replace})' if replace else ''}, "
        f"__bad1 OR {sqlgen.any_failed(plan.rules)} AS __bad FROM t2"
    )


@dataclass(frozen=True)
class _TypedPlan:
    selects: list[str]  # over the raw file: __row, each field's raw text and typed value
    field_checks: list[sqlgen.Check]  # over those, per field
    rules: list[sqlgen.Check]  # over the typed values (and __bad1), per entity
    replacements: dict[str, str]  # derived values and defaults, over the typed values
    hidden: tuple[str, ...]  # helper columns not kept


def _typed_plan(raw: RawTable, entity: Entity, mapping: EntityMapping, ctx: StageContext) -> _TypedPlan:
    fields = _with_defaults(entity, mapping)
    required = _required(entity, mapping)
    selects = ["__row"]
    hidden = ["__bad1"]
    checks: list[sqlgen.Check] = []
    for f in entity.fields:
        src = fields.get(f.name)
        if src is None:
            selects.append(f"CAST(NULL AS {_DUCK_TYPES[f.kind]}) AS {ident(f.name)}")
            continue
        raw_sql = sqlgen.raw_text(src, raw.types)
        formats = _formats(src, mapping)
        typed = sqlgen.typed_value(
            f, raw_sql, sqlgen.native_column(src, raw.types), formats, utc=ctx.timezone == "UTC"
        )
        raw_name = f"__raw_{f.name}"
        selects += [f"{raw_sql} AS {ident(raw_name)}", f"{typed} AS {ident(f.name)}"]
        hidden.append(raw_name)
        native = sqlgen.native_column(src, raw.types)
        checks += sqlgen.field_checks(
            f,
            ident(raw_name),
            ident(f.name),
            required=f.name in required,
            formats=formats,
            max_bytes=ctx.max_field_bytes,
            text_checks=not (native and sqlgen.is_scalar(native[1])),
            nul_check=not (raw.nul_free and isinstance(src, Column)),
        )
    replacements, rules = ENTITY_RULES.get(entity.name, _no_rules)(entity, mapping, ctx)
    if entity.keep_extra_columns_in:
        column = ident(entity.keep_extra_columns_in)
        selects.append(f"{_extra_columns_json(raw, mapping)} AS __extra")
        hidden.append("__extra")
        replacements[entity.keep_extra_columns_in] = _merged_attributes(entity.keep_extra_columns_in)
        rules.append(
            sqlgen.error(
                entity.keep_extra_columns_in,
                column,
                literal("not a JSON object"),
                f"{column} IS NOT NULL AND coalesce(json_type(TRY_CAST({column} AS JSON)), '') <> 'OBJECT'",
            )
        )
    return _TypedPlan(selects, checks, rules, replacements, tuple(hidden))


def _with_defaults(entity: Entity, mapping: EntityMapping) -> dict[str, Source]:
    fields = dict(mapping.fields)
    if entity.name == "order-lines" and "quantity" not in fields:
        fields["quantity"] = Constant("1")
    return fields


def _required(entity: Entity, mapping: EntityMapping) -> set[str]:
    required = {f.name for f in entity.fields if f.required}
    if entity.name == "order-lines" and "ordered_at" in mapping.fields:
        required.add("ordered_at")  # the order is made from its lines
    return required


def _formats(src: object, mapping: EntityMapping) -> tuple[str, ...]:
    if isinstance(src, Column) and src.formats:
        return src.formats
    return mapping.date_formats


def _merged_attributes(column: str) -> str:
    """A mapped JSON object, with the file's unmapped columns added to it."""
    c = ident(column)
    valid = f"coalesce(json_type(TRY_CAST({c} AS JSON)), '') = 'OBJECT'"
    return (
        f"CASE WHEN {c} IS NULL THEN __extra WHEN NOT {valid} THEN NULL WHEN __extra IS NULL THEN {c} "
        f"ELSE CAST(json_merge_patch({c}, __extra) AS VARCHAR) END"
    )


def _extra_columns_json(raw: RawTable, mapping: EntityMapping) -> str:
    used = {
        name
        for src in mapping.fields.values()
        for name in ((src.name,) if isinstance(src, Column) else getattr(src, "columns", ()))
    }
    extra = [c for c in raw.columns if c not in used]
    if not extra:
        return "CAST(NULL AS VARCHAR)"
    pairs = ", ".join(f"{literal(c)}, {ident(c)}" for c in extra)
    return f"CAST(json_object({pairs}) AS VARCHAR)"


# ---------------------------------------------------------------- entity rules

Rules = tuple[dict[str, str], list[sqlgen.Check]]


def _no_rules(entity: Entity, mapping: EntityMapping, ctx: StageContext) -> Rules:
    return {}, []


def _order_line_rules(entity: Entity, mapping: EntityMapping, ctx: StageContext) -> Rules:
    amount = "coalesce(amount, round(quantity * unit_price, 4))"
    replacements = {
        "amount": amount,
        "unit_price": "coalesce(unit_price, CASE WHEN quantity <> 0 THEN round(amount / quantity, 4) END)",
    }
    if "line_no" not in mapping.fields:
        # Numbered over every row in file order, rejected ones too, so that re-importing the
        # corrected file gives each line the same number.
        replacements["line_no"] = "CAST(row_number() OVER (PARTITION BY order_id ORDER BY __row) AS INTEGER)"
    rules = [
        sqlgen.error(
            "amount",
            "CAST(NULL AS VARCHAR)",
            literal("no amount: map amount, or unit_price (with quantity)"),
            # Only when nothing else explains it (an unparseable price is reported on its own field).
            f"{amount} IS NULL AND quantity IS NOT NULL AND NOT __bad1",
        )
    ]
    return replacements, rules


def _response_rules(entity: Entity, mapping: EntityMapping, ctx: StageContext) -> Rules:
    lo = "coalesce(scale_min, " + _by_kind(0) + ")"
    hi = "coalesce(scale_max, " + _by_kind(1) + ")"
    replacements = {
        "scale_min": lo,
        "scale_max": hi,
        "question_id": "coalesce(question_id, kind)",
        "survey_id": f"coalesce(survey_id, {literal(ctx.source)})",
    }
    scale = "CAST(" + lo + " AS VARCHAR) || '-' || CAST(" + hi + " AS VARCHAR)"
    rules = [
        sqlgen.error(
            "scale_max",
            "CAST(NULL AS VARCHAR)",
            literal("custom questions need scale_min and scale_max"),
            f"kind IS NOT NULL AND ({lo} IS NULL OR {hi} IS NULL)",
        ),
        sqlgen.error(
            "scale_max",
            f"{scale}",
            literal("an NPS question is on the 0-10 scale"),
            f"kind = 'nps' AND ({lo} <> 0 OR {hi} <> 10)",
        ),
        sqlgen.error(
            "score",
            "CAST(score AS VARCHAR)",
            "'score ' || CAST(CAST(score AS DOUBLE) AS VARCHAR) || ' is outside the ' || kind "
            f"|| ' scale ' || {scale}",
            f"score IS NOT NULL AND (score < {lo} OR score > {hi})",
        ),
    ]
    return replacements, rules


def _by_kind(index: int) -> str:
    cases = " ".join(f"WHEN {literal(k)} THEN {v[index]}" for k, v in DEFAULT_SCALES.items())
    return f"CASE kind {cases} END"


def _ticket_rules(entity: Entity, mapping: EntityMapping, ctx: StageContext) -> Rules:
    rules = [
        sqlgen.error(
            column,
            f"CAST({column} AS VARCHAR)",
            literal(f"{label} before the ticket was opened"),
            f"{column} < opened_at",
        )
        for column, label in (("first_response_at", "first response"), ("resolved_at", "resolved"))
    ]
    return {}, rules


def _subscription_rules(entity: Entity, mapping: EntityMapping, ctx: StageContext) -> Rules:
    rule = sqlgen.error(
        "ended_at",
        "CAST(ended_at AS VARCHAR)",
        literal("the subscription ended before it started"),
        "ended_at < started_at",
    )
    return {}, [rule]


def _review_rules(entity: Entity, mapping: EntityMapping, ctx: StageContext) -> Rules:
    return {
        "kind": "coalesce(kind, 'review')",
        "brand": "coalesce(brand, 'own')",
        "is_competitor": "coalesce(is_competitor, false)",
    }, []


ENTITY_RULES: dict[str, Callable[[Entity, EntityMapping, StageContext], Rules]] = {
    "order-lines": _order_line_rules,
    "responses": _response_rules,
    "tickets": _ticket_rules,
    "reviews": _review_rules,
    "subscriptions": _subscription_rules,
}


# ---------------------------------------------------------------- pass 2: all errors


def collect_errors(
    conn: duckdb.DuckDBPyConnection,
    raw: RawTable,
    entity: Entity,
    mapping: EntityMapping,
    ctx: StageContext,
) -> None:
    """``cx_errors`` (one row per row and problem) and ``cx_good`` (the rows without any)."""
    plan = _typed_plan(raw, entity, mapping, ctx)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE cx_flagged AS WITH t1 AS ("
        f"SELECT {', '.join(plan.selects)} FROM {raw.table} "
        "SEMI JOIN (SELECT __row FROM cx_typed WHERE __bad) b USING (__row)), "
        f"t2 AS (SELECT *, {sqlgen.error_list(plan.field_checks)} AS __errors FROM t1) "
        f"SELECT __row, list_concat(__errors, {sqlgen.error_list(plan.rules)}) AS __errors "
        "FROM (SELECT *, len(__errors) > 0 AS __bad1 FROM t2)"
    )
    parts = [
        "SELECT __row, e.field, e.value, e.reason FROM (SELECT __row, unnest(__errors) AS e FROM cx_flagged)",
        _duplicate_errors(entity, mapping),
    ]
    if entity.name == "order-lines" and "ordered_at" not in mapping.fields:
        parts.append(_missing_order_errors(conn, ctx))
    conn.execute("CREATE OR REPLACE TEMP TABLE cx_errors AS " + " UNION ALL ".join(parts))
    conn.execute(
        "CREATE OR REPLACE TEMP VIEW cx_good AS SELECT * EXCLUDE (__bad) FROM cx_typed "
        "ANTI JOIN (SELECT DISTINCT __row FROM cx_errors) e USING (__row) WHERE NOT __bad"
    )


def _file_key(entity: Entity, mapping: EntityMapping) -> tuple[str, ...]:
    if entity.name == "customers" and "alias" in mapping.fields:
        return ("alias",)  # one row per alias; the customer may repeat
    return tuple(k for k in entity.key if k != "source")


def _duplicate_errors(entity: Entity, mapping: EntityMapping) -> str:
    key = _file_key(entity, mapping)
    not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in key)
    shown = " || ', ' || ".join(f"'{k}=' || CAST({ident(k)} AS VARCHAR)" for k in key)
    return (
        f"SELECT __row, {literal(key[0])} AS field, CAST({ident(key[0])} AS VARCHAR) AS value, "
        f"'duplicate key ' || {shown} || ': ' || n || ' rows in this file have it' AS reason "
        f"FROM (SELECT __row, {idents(key)}, count(*) OVER (PARTITION BY {idents(key)}) AS n "
        f"FROM cx_typed WHERE {not_null}) WHERE n > 1"
    )


def _missing_order_errors(conn: duckdb.DuckDBPyConnection, ctx: StageContext) -> str:
    known = ctx.lookup("orders", ("order_id",), (), "SELECT DISTINCT order_id FROM cx_typed")
    conn.execute(f"CREATE OR REPLACE TEMP TABLE cx_known_orders AS SELECT order_id FROM {known}")
    return (
        "SELECT t.__row, 'order_id' AS field, t.order_id AS value, "
        "'order ' || t.order_id || ' is not in the store: import the orders first, or map "
        "ordered_at so that orders are made from the lines' AS reason "
        "FROM cx_typed t ANTI JOIN cx_known_orders k ON t.order_id = k.order_id "
        "WHERE t.order_id IS NOT NULL"
    )


# ---------------------------------------------------------------- pass 3: outputs


def build_outputs(
    conn: duckdb.DuckDBPyConnection, entity: Entity, mapping: EntityMapping, ctx: StageContext
) -> list[Output]:
    customer_join = _alias_join(conn, ctx) if "customer_id" in entity.field_names else None
    outputs = []
    if entity.name == "customers" and "alias" in mapping.fields:
        outputs.append(_output(conn, schema.customer_aliases, ("alias",), ctx, "cx_good"))
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE cx_good_customers AS SELECT * FROM cx_good "
            "QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY __row) = 1"
        )
        outputs.append(_output(conn, schema.customers, ("customer_id",), ctx, "cx_good_customers"))
        return outputs
    base = "cx_good"
    if customer_join:
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE cx_good_resolved AS SELECT g.* REPLACE "
            "(coalesce(a.customer_id, g.customer_id) AS customer_id) FROM cx_good g "
            f"LEFT JOIN {customer_join} a ON a.alias = g.customer_id"
        )
        base = "cx_good_resolved"
    if entity.name == "order-lines" and "ordered_at" in mapping.fields:
        outputs.append(_orders_from_lines(conn, ctx, base))
    outputs.append(_output(conn, entity.table, entity.key, ctx, base))
    return outputs


def _alias_join(conn: duckdb.DuckDBPyConnection, ctx: StageContext) -> str | None:
    found = ctx.lookup(
        "customer_aliases",
        ("alias",),
        ("customer_id",),
        "SELECT DISTINCT customer_id AS alias FROM cx_good WHERE customer_id IS NOT NULL",
    )
    conn.execute(f"CREATE OR REPLACE TEMP TABLE cx_aliases AS SELECT alias, customer_id FROM {found}")
    row = conn.execute("SELECT count(*) FROM cx_aliases").fetchone()
    return "cx_aliases" if row and row[0] else None


def _output(
    conn: duckdb.DuckDBPyConnection,
    table: sa.Table,
    key: tuple[str, ...],
    ctx: StageContext,
    base: str,
    kind: str = "TABLE",
) -> Output:
    columns = content_columns(table)
    late = [c.name for c in table.columns if c.info.get("hashed_when_set")]
    hashed = [c for c in columns if c != "source" and c not in late]
    selects = [literal(ctx.source) + " AS source" if c == "source" else ident(c) for c in columns]
    # Views (the fast path's) and tables (the full path's) are named apart: both may exist.
    relation = f"cx_{'out' if kind == 'TABLE' else 'fast'}_{table.name}"
    conn.execute(
        f"CREATE OR REPLACE TEMP {kind} {relation} AS SELECT {', '.join(selects)}, "
        f"{sqlgen.row_hash(hashed, when_set=late)} AS row_hash FROM {base}"
    )
    return Output(table, relation, key, (*columns, "row_hash"))


def _orders_from_lines(
    conn: duckdb.DuckDBPyConnection, ctx: StageContext, base: str, kind: str = "TABLE"
) -> Output:
    """Line-level invoices carry their order: one order per order_id, from its first line."""
    order_fields = ("customer_id", "ordered_at", "status", "channel", "currency", "country")
    firsts = ", ".join(f"arg_min_null({ident(c)}, __row) AS {ident(c)}" for c in order_fields)
    derived = "cx_derived_orders" if kind == "TABLE" else "cx_fast_derived_orders"
    conn.execute(
        f"CREATE OR REPLACE TEMP {kind} {derived} AS SELECT order_id, {firsts}, "
        "CAST(NULL AS DECIMAL(18, 4)) AS total_amount "
        f"FROM {base} GROUP BY order_id"
    )
    return _output(conn, schema.orders, ("order_id",), ctx, derived, kind)


# ---------------------------------------------------------------- first loads: one typed pass


def fast_path_applies(entity: Entity, mapping: EntityMapping) -> bool:
    """Whether a first load may take :func:`build_fast_outputs`: no reference to check, one
    row per key (customers with aliases may repeat a customer, so they take the full path)."""
    if entity.name == "customers" and "alias" in mapping.fields:
        return False
    return not (entity.name == "order-lines" and "ordered_at" not in mapping.fields)


def fast_path_tables(entity: Entity, mapping: EntityMapping) -> tuple[str, ...]:
    """The tables that must be empty for the fast path (what it writes, and the aliases it
    would otherwise resolve customers through)."""
    tables = [entity.table.name]
    if entity.name == "order-lines":
        tables.append("orders")
    if "customer_id" in entity.field_names:
        tables.append("customer_aliases")
    return tuple(tables)


def build_fast_outputs(
    conn: duckdb.DuckDBPyConnection,
    raw: RawTable,
    entity: Entity,
    mapping: EntityMapping,
    ctx: StageContext,
) -> list[Output]:
    """Views over the raw rows that parse, check and hash on the fly; the entity's own table last.

    The optimistic first load: the entity's view keeps only rows that pass every check, so when
    inserting it writes as many rows as the file has, and the keys are unique, every row was
    good and the result is exactly the full path's; otherwise the caller rolls back and takes
    the full path. The same SQL types and hashes the values as :func:`build_typed` and
    :func:`build_outputs` do. Derived tables read every row: they are written only once the
    entity's rows proved good.
    """
    conn.execute(f"CREATE OR REPLACE TEMP VIEW cx_fast_typed AS {typed_sql(raw, entity, mapping, ctx)}")
    conn.execute("CREATE OR REPLACE TEMP VIEW cx_fast_good AS SELECT * FROM cx_fast_typed WHERE NOT __bad")
    outputs = []
    if entity.name == "order-lines":
        outputs.append(_orders_from_lines(conn, ctx, "cx_fast_typed", "VIEW"))
    outputs.append(_output(conn, entity.table, entity.key, ctx, "cx_fast_good", "VIEW"))
    return outputs
