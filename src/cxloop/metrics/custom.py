"""Custom KPIs as code: a TOML file of filtered aggregates and their ratios, compiled to Ibis.

A user's KPI is data, like a built-in one: a fact (purchases, orders, responses, tickets, reviews,
invitations), an aggregate of one of its columns, the rows it keeps, or a ratio of two such
aggregates. The file is validated against the store's schema before anything runs: every column is
a column of the fact, every value has the column's type, every key is known (a typo is an error,
never silently ignored). Each definition compiles to an Ibis builder over ``Context.events``, so
grain, breakdown, ``where``, start, end and as-of work exactly as for the built-in KPIs, on every
engine. Identifiers come only from the schema and values become Ibis literals: there is no SQL
in the file and none is pasted anywhere.

Every error is an :class:`~cxloop.errors.InputError` naming the file, the TOML line when it can be
found, the field path (``kpi[2].filter[0].column``; indices count from 0) and the KPI's id.
See docs/metrics.md, "Custom KPIs as code", and docs/examples/kpis.toml.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

import ibis
import ibis.expr.types as ir
import sqlalchemy as sa

from cxloop.errors import InputError
from cxloop.metrics.catalogue.common import aggregate as group_aggregate
from cxloop.metrics.grains import Grain
from cxloop.metrics.kpi import Direction, Kpi
from cxloop.metrics.query import FACTS, Context
from cxloop.metrics.stats import Kind
from cxloop.store import schema

# -- what a file may refer to ----------------------------------------------------------------

#: The facts a custom KPI may aggregate, with the tables they read.
FACT_TABLES: dict[str, tuple[str, ...]] = {
    "purchases": ("orders", "order_lines"),
    "orders": ("orders",),
    "responses": ("survey_responses",),
    "tickets": ("tickets",),
    "reviews": ("reviews",),
    "invitations": ("survey_invitations",),
}

#: The columns of a purchase (``Context.purchase_lines``): an order line with its order's fields.
PURCHASE_COLUMNS: dict[str, sa.Table] = {
    "order_id": schema.orders,
    "customer_id": schema.orders,
    "ordered_at": schema.orders,
    "channel": schema.orders,
    "category": schema.order_lines,
    "product_id": schema.order_lines,
    "quantity": schema.order_lines,
    "amount": schema.order_lines,
}

_HIDDEN = {"row_hash", "import_id"}  # provenance, not business data

TEXT, NUMBER, BOOLEAN, TIMESTAMP = "text", "number", "boolean", "timestamp"


def _type_of(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return BOOLEAN
    if isinstance(kind, sa.Integer | sa.Numeric):
        return NUMBER
    if isinstance(kind, sa.DateTime):
        return TIMESTAMP
    return TEXT


def fact_columns(fact: str) -> dict[str, str]:
    """The columns a custom KPI on ``fact`` may use, each with its type (text, number, boolean,
    timestamp), taken from the store's schema."""
    if fact == "purchases":
        return {name: _type_of(table.c[name]) for name, table in PURCHASE_COLUMNS.items()}
    table = schema.metadata.tables[FACT_TABLES[fact][0]]
    return {c.name: _type_of(c) for c in table.columns if c.name not in _HIDDEN}


AGGREGATES = ("count", "count_distinct", "sum", "mean")
OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null")
_ORDERING = {"<", "<=", ">", ">="}
_LISTS = {"in", "not_in"}
_NO_VALUE = {"is_null", "not_null"}

KPI_KEYS = (
    "id",
    "name",
    "formula",
    "fact",
    "unit",
    "direction",
    "grain",
    "group",
    "aggregate",
    "column",
    "filter",
    "ratio",
)
RATIO_KEYS = ("numerator", "denominator", "percent")
MEASURE_KEYS = ("aggregate", "column", "filter")
CONDITION_KEYS = ("column", "op", "value", "values")

_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# -- the parsed definition ---------------------------------------------------------------------

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Condition:
    column: str
    type: str = field(compare=False)  # text, number, boolean or timestamp: follows from the column
    op: str
    values: tuple[Any, ...]  # one value for a comparison, several for in / not_in, none for nulls

    def words(self) -> str:
        shown = [_show(v) for v in self.values]
        if self.op == "is_null":
            return f"{self.column} is empty"
        if self.op == "not_null":
            return f"{self.column} is not empty"
        if self.op in _LISTS:
            text = f"{self.column} {'in' if self.op == 'in' else 'not in'} ({', '.join(shown)})"
        else:
            text = f"{self.column} {self.op} {shown[0]}"
        return f"{text} or empty" if self.op in ("!=", "not_in") else text


@dataclass(frozen=True)
class Measure:
    aggregate: str
    column: str | None
    filter: tuple[Condition, ...]

    def rows(self) -> set[Condition]:
        """The conditions on the rows it counts (a count of a column counts its non-empty rows)."""
        extra = (
            {Condition(self.column, "", "not_null", ())}
            if self.aggregate == "count" and self.column
            else set()
        )
        return {*self.filter, *extra}

    def words(self, fact: str | None = None) -> str:
        """In words; without ``fact`` (inside a ratio, whose rows are named once) the fact is left out."""
        of = f" of {fact}" if fact else ""
        if self.aggregate == "count":
            text = f"count{of}" + (f" with a {self.column}" if self.column else "")
        elif self.aggregate == "count_distinct":
            text = f"distinct {self.column}{of}"
        else:
            text = f"{self.aggregate} of {self.column}" + (f" over {fact}" if fact else "")
        return text + _where(self.filter)


@dataclass(frozen=True)
class Definition:
    id: str
    fact: str
    filter: tuple[Condition, ...]  # the base rows: every aggregate of the KPI sees only these
    measure: Measure | None = None
    numerator: Measure | None = None
    denominator: Measure | None = None
    percent: bool = False

    @property
    def is_proportion(self) -> bool:
        """A ratio of two counts where every row (or value) the numerator counts is one the
        denominator counts: k successes in n trials, with a Wilson interval.

        That holds when both count rows (``count``; a column counts its non-empty rows) or both
        count distinct values of the same column, and every condition of the denominator is one of
        the numerator's, or is "X is not empty" where the numerator compares X with a value.
        """
        num, den = self.numerator, self.denominator
        if num is None or den is None:
            return False
        if num.aggregate == den.aggregate == "count_distinct":
            if num.column != den.column:
                return False
        elif not num.aggregate == den.aggregate == "count":
            return False
        num_rows, den_rows = num.rows(), den.rows()
        return all(d in num_rows or _implied(d, num_rows) for d in den_rows)

    @property
    def kind(self) -> Kind:
        if self.measure is not None:
            return {"count": Kind.COUNT, "count_distinct": Kind.COUNT, "sum": Kind.SUM}.get(
                self.measure.aggregate, Kind.MEAN
            )
        if self.is_proportion and self.percent:
            return Kind.PROPORTION
        return Kind.SHARE if self.percent else Kind.RATIO

    def formula(self) -> str:
        if self.measure is not None:
            return self.measure.words(self.fact) + _where(self.filter)
        assert self.numerator is not None and self.denominator is not None
        text = f"({self.numerator.words()}) / ({self.denominator.words()}) of {self.fact}"
        return text + _where(self.filter) + (", in %" if self.percent else "")

    def build(self, ctx: Context) -> ir.Table:
        t = ctx.events(self.fact)
        if self.filter:
            t = t.filter(*(_predicate(t, c) for c in self.filter))
        if self.measure is not None:
            m = self.measure
            if m.aggregate == "sum":
                x = _number(t, m.column)
                return group_aggregate(ctx, t, value=x.sum(), n=x.count())
            if m.aggregate == "mean":
                x = _number(t, m.column)
                return group_aggregate(ctx, t, n=x.count(), total=x.sum(), total_sq=(x * x).sum())
            return group_aggregate(ctx, t, value=_aggregate(t, m))
        assert self.numerator is not None and self.denominator is not None
        num, den = _aggregate(t, self.numerator), _aggregate(t, self.denominator)
        if self.kind is Kind.PROPORTION:
            return group_aggregate(ctx, t, k=num, n=den)
        return group_aggregate(ctx, t, num=num, den=den, n=t.count())


def _implied(condition: Condition, conditions: set[Condition]) -> bool:
    """Whether ``condition`` is "X is not empty" and one of ``conditions`` needs X to have a value."""
    return condition.op == "not_null" and any(
        c.column == condition.column and c.op in ("=", "<", "<=", ">", ">=", "in", "not_null")
        for c in conditions
    )


def _where(conditions: Sequence[Condition]) -> str:
    return " where " + " and ".join(c.words() for c in conditions) if conditions else ""


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


# -- compiling to Ibis ----------------------------------------------------------------------


def _number(t: ir.Table, column: str | None) -> ir.FloatingColumn:
    assert column is not None
    return t[column].cast("float64")


def _column(t: ir.Table, c: Condition) -> ir.Column:
    # Numbers compare as float64 on every engine (money is an exact decimal in the store).
    return t[c.column].cast("float64") if c.type == NUMBER else t[c.column]


def _literal(c: Condition, value: Any) -> ir.Scalar:
    ibis_type = {TEXT: "string", NUMBER: "float64", BOOLEAN: "boolean", TIMESTAMP: "timestamp"}[c.type]
    return ibis.literal(float(value) if c.type == NUMBER else value, type=ibis_type)


def _predicate(t: ir.Table, c: Condition) -> ir.BooleanValue:
    column = _column(t, c)
    if c.op == "is_null":
        return column.isnull()
    if c.op == "not_null":
        return column.notnull()
    if c.op in _LISTS:
        values = [_literal(c, v) for v in c.values]
        if c.op == "in":
            return column.isin(values)
        return column.notin(values) | column.isnull()
    value = _literal(c, c.values[0])
    compare: dict[str, Callable[[ir.Value, ir.Value], ir.BooleanValue]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: (a != b) | a.isnull(),
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return compare[c.op](column, value)


def _aggregate(t: ir.Table, m: Measure) -> ir.Scalar:
    where = None
    if m.filter:
        where = _predicate(t, m.filter[0])
        for c in m.filter[1:]:
            where = where & _predicate(t, c)
    if m.aggregate == "count":
        return t[m.column].count(where=where) if m.column else t.count(where=where)
    if m.aggregate == "count_distinct":
        return t[m.column].nunique(where=where)
    x = _number(t, m.column)
    return x.sum(where=where) if m.aggregate == "sum" else x.mean(where=where)


# -- reading and checking a file ------------------------------------------------------------


def load_custom_kpis(path: str | Path) -> list[Kpi]:
    """The KPIs defined in the TOML file at ``path``, validated and compiled (see module doc)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file (a TOML file of [[kpi]] tables)", file=file) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=file) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror}", file=file) from None
    return parse_custom_kpis(text, file=file)


def parse_custom_kpis(text: str, *, file: str = "<kpis>") -> list[Kpi]:
    """The KPIs defined in TOML ``text``; errors name ``file``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message) or "a syntax error"
        raise InputError(
            f"not valid TOML: {reason}", file=file, line=int(found[1]) if found else None
        ) from None
    return _Checker(text, file).kpis(data)


class _Checker:
    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.locate = _Locator(text)
        self.label = ""  # "KPI 'x': " once the KPI's id is known

    def fail(self, path: Path_, reason: str, *, value: Any = None, missing: bool = False) -> NoReturn:
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        line = self.locate(path, value, missing=missing)
        raise InputError(f"{self.label}{reason}", file=self.file, line=line, field=dotted or None)

    # -- the document ----------------------------------------------------------------------

    def kpis(self, data: dict[str, Any]) -> list[Kpi]:
        for key in data:
            if key != "kpi":
                self.fail((key,), f"unknown key {key!r}; the file holds [[kpi]] tables", value=key)
        tables = data.get("kpi", [])
        if not isinstance(tables, list):
            self.fail(("kpi",), "write each KPI as a [[kpi]] table (an array of tables)")
        from cxloop.metrics.registry import builtin_kpis

        builtin = {k.id for k in builtin_kpis()}
        seen: dict[str, int] = {}
        out = []
        for i, table in enumerate(tables):
            self.label = ""
            if not isinstance(table, dict):
                self.fail(("kpi", i), "expected a table of KPI fields")
            kpi = self.kpi(("kpi", i), table)
            if kpi.id in builtin:
                self.fail(("kpi", i, "id"), f"{kpi.id!r} is a built-in KPI; choose another id", value=kpi.id)
            if kpi.id in seen:
                self.fail(
                    ("kpi", i, "id"), f"id {kpi.id!r} is already used by kpi[{seen[kpi.id]}]", value=kpi.id
                )
            seen[kpi.id] = i
            out.append(kpi)
        return out

    # -- one KPI ---------------------------------------------------------------------------

    def kpi(self, path: Path_, table: dict[str, Any]) -> Kpi:
        raw_id = table.get("id")
        if isinstance(raw_id, str) and raw_id:
            self.label = f"KPI {raw_id!r}: "
        self.keys(path, table, KPI_KEYS, what="a KPI")
        kpi_id = self.string(path, table, "id")
        if not _ID.match(kpi_id):
            self.fail(
                (*path, "id"),
                f"{kpi_id!r} is not a valid id: lower-case letters, digits and _, starting with a letter",
                value=kpi_id,
            )
        name = self.string(path, table, "name")
        fact = self.choice(path, table, "fact", tuple(FACT_TABLES))
        columns = fact_columns(fact)
        base = self.conditions((*path, "filter"), table.get("filter"), fact, columns)

        if "ratio" in table:
            for key in ("aggregate", "column"):
                if key in table:
                    self.fail(
                        (*path, key),
                        "a KPI is an aggregate or a ratio, not both: move it into ratio.numerator "
                        "or ratio.denominator",
                        value=key,
                    )
            ratio = table["ratio"]
            rpath = (*path, "ratio")
            if not isinstance(ratio, dict):
                self.fail(rpath, "expected a table with numerator and denominator")
            self.keys(rpath, ratio, RATIO_KEYS, what="a ratio")
            numerator = self.measure((*rpath, "numerator"), ratio, fact, columns)
            denominator = self.measure((*rpath, "denominator"), ratio, fact, columns)
            draft = Definition(kpi_id, fact, base, numerator=numerator, denominator=denominator)
            percent = ratio.get("percent", draft.is_proportion)
            if not isinstance(percent, bool):
                self.fail((*rpath, "percent"), f"expected true or false, got {percent!r}", value=percent)
            definition = Definition(
                kpi_id, fact, base, numerator=numerator, denominator=denominator, percent=percent
            )
        else:
            measure = self.measure(path, table, fact, columns, own_filter=False)
            definition = Definition(kpi_id, fact, base, measure=measure)

        percent_valued = definition.kind in (Kind.PROPORTION, Kind.SHARE)
        unit = self.string(path, table, "unit", default="%" if percent_valued else "")
        formula = self.string(path, table, "formula", default=definition.formula())
        group = self.string(path, table, "group", default="custom")
        direction = Direction(
            self.choice(
                path, table, "direction", tuple(d.value for d in Direction), default=Direction.NEUTRAL.value
            )
        )
        grain = Grain(
            self.choice(path, table, "grain", tuple(g.value for g in Grain), default=Grain.MONTH.value)
        )
        return Kpi(
            id=kpi_id,
            name=name,
            formula=formula,
            unit=unit,
            direction=direction,
            tables=FACT_TABLES[fact],
            fact=fact,
            kind=definition.kind,
            build=definition.build,
            group=group,
            default_grain=grain,
            custom=True,
        )

    def measure(
        self,
        path: Path_,
        parent: dict[str, Any],
        fact: str,
        columns: Mapping[str, str],
        *,
        own_filter: bool = True,
    ) -> Measure:
        """An aggregate: at ``path`` (a ratio's numerator or denominator), or the KPI's own keys."""
        if own_filter:
            role = str(path[-1])
            table = parent.get(role)
            if table is None:
                self.fail(
                    path, f'missing: the {role} of the ratio, e.g. {{ aggregate = "count" }}', missing=True
                )
            if not isinstance(table, dict):
                self.fail(path, 'expected a table like { aggregate = "count" }', value=role)
            self.keys(path, table, MEASURE_KEYS, what=f"a {role}")
            where = path
        else:
            table, where = parent, path
        if "aggregate" not in table and not own_filter:
            self.fail(
                (*where, "aggregate"),
                f"missing: choose one of {', '.join(AGGREGATES)} (or give a ratio)",
                missing=True,
            )
        aggregate = self.choice(where, table, "aggregate", AGGREGATES)
        column = None
        if "column" in table or aggregate != "count":
            if "column" not in table:
                self.fail(
                    (*where, "column"),
                    f"missing: {aggregate} needs the column it aggregates; "
                    f"columns of {fact}: {', '.join(columns)}",
                    missing=True,
                )
            column = self.column((*where, "column"), table["column"], fact, columns)
            if aggregate in ("sum", "mean") and columns[column] != NUMBER:
                self.fail(
                    (*where, "column"),
                    f"{aggregate} needs a number column; {column!r} is {columns[column]}; "
                    f"number columns of {fact}: {', '.join(c for c, t in columns.items() if t == NUMBER)}",
                    value=column,
                )
        conditions = (
            self.conditions((*where, "filter"), table.get("filter"), fact, columns) if own_filter else ()
        )
        return Measure(aggregate, column, conditions)

    def conditions(
        self, path: Path_, raw: Any, fact: str, columns: Mapping[str, str]
    ) -> tuple[Condition, ...]:
        if raw is None:
            return ()
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list):
            self.fail(
                path,
                'expected a list of conditions like [{ column = "category", op = "=", value = "books" }]',
                value="filter",
            )
        return tuple(self.condition((*path, i), item, fact, columns) for i, item in enumerate(raw))

    def condition(self, path: Path_, raw: Any, fact: str, columns: Mapping[str, str]) -> Condition:
        if not isinstance(raw, dict):
            self.fail(
                path,
                f'expected a condition like {{ column = "category", op = "=", value = "books" }}, '
                f"got {raw!r}",
                value=raw,
            )
        self.keys(path, raw, CONDITION_KEYS, what="a condition")
        if "column" not in raw:
            self.fail(
                (*path, "column"),
                f"missing: the column to test; columns of {fact}: {', '.join(columns)}",
                missing=True,
            )
        column = self.column((*path, "column"), raw["column"], fact, columns)
        kind = columns[column]
        default_op = "in" if "values" in raw else "=" if "value" in raw else None
        op = self.choice(path, raw, "op", OPS, default=default_op)
        if op in _ORDERING and kind not in (NUMBER, TIMESTAMP):
            self.fail(
                (*path, "op"),
                f"{op!r} compares numbers and times; {column!r} is {kind}, which takes "
                "= != in not_in is_null not_null",
                value=op,
            )
        if op in _NO_VALUE:
            for key in ("value", "values"):
                if key in raw:
                    self.fail((*path, key), f"{op} takes no value", value=key)
            return Condition(column, kind, op, ())
        if op in _LISTS:
            if "value" in raw:
                self.fail((*path, "value"), f"{op} takes a list: values = [...]", value="value")
            if "values" not in raw:
                self.fail((*path, "values"), f"missing: {op} needs values = [...]", missing=True)
            values = raw["values"]
            if not isinstance(values, list) or not values:
                self.fail((*path, "values"), "expected a non-empty list of values", value="values")
            typed = tuple(self.value((*path, "values", j), v, column, kind) for j, v in enumerate(values))
            return Condition(column, kind, op, typed)
        if "values" in raw:
            self.fail(
                (*path, "values"),
                f'{op} compares with one value: value = ...; for a list use op = "in"',
                value="values",
            )
        if "value" not in raw:
            self.fail((*path, "value"), f"missing: {op} needs a value", missing=True)
        return Condition(column, kind, op, (self.value((*path, "value"), raw["value"], column, kind),))

    def value(self, path: Path_, value: Any, column: str, kind: str) -> Any:
        def wrong(expected: str) -> NoReturn:
            self.fail(
                path,
                f"{column!r} is a {kind} column: expected {expected}, got {_describe(value)}",
                value=value,
            )

        if kind == TEXT:
            if not isinstance(value, str):
                wrong('a string in quotes, like "books"')
            return value
        if kind == NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                wrong("a number, like 10 or 2.5 (no quotes)")
            return value
        if kind == BOOLEAN:
            if not isinstance(value, bool):
                wrong("true or false (no quotes)")
            return value
        # TIMESTAMP: a TOML date-time (with an offset: converted to UTC) or a date (midnight UTC)
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                return value.astimezone(UTC).replace(tzinfo=None)
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        wrong("a TOML date or date-time, like 2024-01-31 or 2024-01-31T12:00:00Z (no quotes)")

    # -- small checks ----------------------------------------------------------------------

    def keys(self, path: Path_, table: dict[str, Any], allowed: Sequence[str], *, what: str) -> None:
        for key in table:
            if key not in allowed:
                self.fail(
                    (*path, key),
                    f"unknown key {key!r} in {what}{_did_you_mean(key, allowed)}; keys: {', '.join(allowed)}",
                    value=key,
                )

    def string(self, path: Path_, table: dict[str, Any], key: str, *, default: str | None = None) -> str:
        if key not in table:
            if default is not None:
                return default
            self.fail((*path, key), f"missing: {_NEEDED.get(key, 'a string')}", missing=True)
        value = table[key]
        if not isinstance(value, str) or (default is None and not value.strip()):
            self.fail((*path, key), f"expected a non-empty string, got {_describe(value)}", value=value)
        return value

    def choice(
        self,
        path: Path_,
        table: dict[str, Any],
        key: str,
        choices: Sequence[str],
        *,
        default: str | None = None,
    ) -> str:
        sep = " " if key == "op" else ", "
        if key not in table:
            if default is not None:
                return default
            self.fail((*path, key), f"missing: choose one of {sep.join(choices)}", missing=True)
        value = table[key]
        if value not in choices:
            what = "operator" if key == "op" else key
            shown = repr(value) if isinstance(value, str) else _describe(value)
            self.fail(
                (*path, key),
                f"unknown {what} {shown}{_did_you_mean(value, choices)}; choose one of {sep.join(choices)}",
                value=value,
            )
        return str(value)

    def column(self, path: Path_, value: Any, fact: str, columns: Mapping[str, str]) -> str:
        if not isinstance(value, str) or value not in columns:
            shown = repr(value) if isinstance(value, str) else _describe(value)
            self.fail(
                path,
                f"no column {shown} in {fact}{_did_you_mean(value, columns)}; columns: {', '.join(columns)}",
                value=value,
            )
        return value


_NEEDED = {
    "id": 'the KPI\'s id, in snake_case (e.g. id = "electronics_revenue")',
    "name": 'the KPI\'s name for people (e.g. name = "Electronics revenue")',
}


def _did_you_mean(value: Any, choices: Sequence[str] | Mapping[str, str]) -> str:
    if not isinstance(value, str):
        return ""

    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return repr(value) if not isinstance(value, datetime | date) else value.isoformat()


# -- where in the file --------------------------------------------------------------------


class _Locator:
    """Find the TOML line of a field path (best effort: tomllib keeps no positions).

    The ``[[kpi]]`` header of the KPI bounds the search; a ``[kpi.ratio.numerator]`` header (or the
    n-th ``[[kpi.filter]]``) or a ``numerator = {`` line narrows it; the key's line is then the
    first that assigns it, preferring one that also shows the offending value. No line is better
    than a wrong one, so ``None`` when it cannot be found.
    """

    _HEADER = re.compile(r"^\s*\[")
    _KPI = re.compile(r"^\s*\[\[\s*kpi\s*\]\]")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def __call__(self, path: Path_, value: Any, *, missing: bool = False) -> int | None:
        if len(path) < 2 or path[0] != "kpi" or not isinstance(path[1], int):
            key = str(path[0]) if path else ""
            header = re.compile(rf"^\s*\[\[?\s*{re.escape(key)}\s*[\].]")
            found = [n for n, line in enumerate(self.lines) if header.match(line)]
            anywhere = found[0] if found else self._find(0, len(self.lines), key, value)
            return None if anywhere is None else anywhere + 1
        headers = [n for n, line in enumerate(self.lines) if self._KPI.match(line)]
        if path[1] >= len(headers):
            return None  # KPIs written another way (kpi = [{...}])
        lo = headers[path[1]]
        hi = headers[path[1] + 1] if path[1] + 1 < len(headers) else len(self.lines)
        rest = path[2:]
        strings = [k for k, p in enumerate(rest) if isinstance(p, str)]
        last = strings[-1] if strings else -1
        dotted = "kpi"
        for k, part in enumerate(rest[:last] if last >= 0 else rest):
            if not isinstance(part, str):
                continue
            dotted += f".{part}"
            header = re.compile(rf"^\s*\[\[?\s*{re.escape(dotted)}\s*\]")
            found = [n for n in range(lo, hi) if header.match(self.lines[n])]
            index = rest[k + 1] if k + 1 < len(rest) and isinstance(rest[k + 1], int) else 0
            if found and isinstance(index, int) and index < len(found):
                lo = found[index]
                hi = next((n for n in range(lo + 1, hi) if self._HEADER.match(self.lines[n])), hi)
                continue
            assigned = self._find(lo, hi, part, None)
            if assigned is None:
                continue
            lo = assigned
            if isinstance(rest[k + 1] if k + 1 < len(rest) else None, int):
                span = self._element(lo, hi, part, int(rest[k + 1]))
                if span is not None:
                    lo, hi = span
        if missing or last < 0:
            return lo + 1
        key = str(rest[last])
        line = self._find(lo, hi, key, value)
        if line is not None and last + 1 < len(rest) and isinstance(rest[last + 1], int):
            span = self._element(line, hi, key, int(rest[last + 1]))  # values[1]: the element's line
            line = span[0] if span else line
        return None if line is None else line + 1

    def _element(self, lo: int, hi: int, key: str, index: int) -> tuple[int, int] | None:
        """The lines [first, last + 1) of element ``index`` of the inline array assigned to ``key``
        at or after line ``lo``, skipping strings and comments; None when it cannot be told."""
        text = "\n".join(self.lines[lo:hi])
        start = re.search(rf"(^|[\s{{,.]){re.escape(key)}\s*=\s*\[", text)
        if start is None:
            return None

        def span(first: int, last: int) -> tuple[int, int]:
            return lo + text.count("\n", 0, first), lo + text.count("\n", 0, last) + 1

        depth, count, quote, first = 1, -1, "", 0
        i = start.end()
        while i < len(text):
            ch = text[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 1
                elif ch == quote:
                    quote = ""
                    if depth == 1 and count == index:
                        return span(first, i)
            elif ch == "#":
                i = text.find("\n", i)
                if i < 0:
                    break
            elif depth == 1 and ch not in " \t\r\n,]":  # an element starts here
                count, first = count + 1, i if count + 1 == index else first
                if ch in "[{":
                    depth += 1
                elif ch in "\"'":
                    quote = ch
                else:  # a bare value: a number, true or false, a date
                    end = re.compile(r"[,\]\s#]").search(text, i)
                    if count == index:
                        return span(i, i)
                    i = len(text) if end is None else end.start()
                    continue
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    return None
                if depth == 1 and count == index:
                    return span(first, i)
            elif ch in "\"'":
                quote = ch
            i += 1
        return None

    def _find(self, lo: int, hi: int, key: str | int | None, value: Any) -> int | None:
        """The first line in [lo, hi) that assigns ``key`` (0-based), preferring one showing ``value``."""
        if not isinstance(key, str):
            return None
        pattern = re.compile(rf"(^|[\s{{,.]){re.escape(key)}\s*=")
        hits = [n for n in range(lo, hi) if pattern.search(self.lines[n])]
        if isinstance(value, str) and value:
            hits = [n for n in hits if value in self.lines[n]] or hits
        return hits[0] if hits else None


assert set(FACT_TABLES) <= set(FACTS)
