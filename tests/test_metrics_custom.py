"""Custom KPIs as code: a TOML file of filtered aggregates and their ratios, validated against the
schema and compiled through Ibis (cxloop.metrics.custom).

The small shop below is checked by hand on DuckDB and PostgreSQL; every bad input names the file,
the line, the field path and the KPI; the example file in docs/examples loads and computes on the
demo business.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from textwrap import dedent
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from conftest import rows, write
from cxloop import Store
from cxloop.errors import InputError
from cxloop.metrics import Kind, compute, kpis
from cxloop.metrics.custom import FACT_TABLES, PURCHASE_COLUMNS, fact_columns, load_custom_kpis
from cxloop.metrics.query import FACTS, Context, Query
from cxloop.metrics.registry import Registry
from cxloop.metrics.source import store_source
from cxloop.metrics.stats import wilson

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "kpis.toml"
AS_OF = dt.datetime(2024, 6, 1)

CUSTOMERS = """\
customer_id,segment,region
c1,smb,north
c2,smb,south
c3,enterprise,north
"""

# Jan: O1 (c1, web: 2 x electronics 20, 1 x books 30), O2 (c2, store: electronics 100).
# Feb: O3 (c3, web: 3 x electronics 300), O4 (c1, web: a return of electronics, -100),
#      O5 (c2, store: 2 x books 60).
LINES = """\
order_id,line_no,customer_id,ordered_at,channel,product_id,category,quantity,unit_price,amount
O1,1,c1,2024-01-05 10:00:00,web,A,electronics,2,10,20
O1,2,c1,2024-01-05 10:00:00,web,B,books,1,30,30
O2,1,c2,2024-01-10 12:00:00,store,C,electronics,1,100,100
O3,1,c3,2024-02-03 09:00:00,web,C,electronics,3,100,300
O4,1,c1,2024-02-20 09:00:00,web,C,electronics,-1,100,-100
O5,1,c2,2024-02-25 09:00:00,store,B,books,2,30,60
"""

# March: T1..T4 (two about delivery); April: T5 (delivery). T4 has no complaint flag.
TICKETS = """\
ticket_id,customer_id,opened_at,channel,category,priority,is_complaint,reopens
T1,c1,2024-03-01 08:00:00,email,delivery,high,true,0
T2,c2,2024-03-02 08:00:00,phone,delivery,low,false,1
T3,c3,2024-03-05 08:00:00,email,billing,high,true,0
T4,c1,2024-03-10 08:00:00,phone,billing,low,,2
T5,c3,2024-04-01 08:00:00,email,delivery,urgent,true,0
"""

SHOP_KPIS = """\
[[kpi]]
id = "electronics_revenue"
name = "Electronics revenue"
fact = "purchases"
unit = "currency"
direction = "up"
aggregate = "sum"
column = "amount"
filter = [
  { column = "category", op = "in", values = ["electronics"] },
  { column = "quantity", op = ">", value = 0 },
]

[[kpi]]
id = "buyers"
name = "Buyers"
fact = "purchases"
aggregate = "count_distinct"
column = "customer_id"
filter = [{ column = "quantity", op = ">", value = 0 }]

[[kpi]]
id = "book_lines"
name = "Book lines"
fact = "purchases"
aggregate = "count"
filter = [{ column = "category", value = "books" }]

[[kpi]]
id = "mean_line_value"
name = "Mean line value"
fact = "purchases"
unit = "currency"
aggregate = "mean"
column = "amount"
filter = [{ column = "quantity", op = ">", value = 0 }]

[[kpi]]
id = "delivery_share"
name = "Delivery tickets"
fact = "tickets"
direction = "down"
ratio = { numerator = { aggregate = "count", filter = [{ column = "category", op = "=", value = "delivery" }] }, denominator = { aggregate = "count" } }

[[kpi]]
id = "revenue_per_unit"
name = "Revenue per unit"
fact = "purchases"
unit = "currency"
filter = [{ column = "quantity", op = ">", value = 0 }]

[kpi.ratio]
numerator = { aggregate = "sum", column = "amount" }
denominator = { aggregate = "sum", column = "quantity" }

[[kpi]]
id = "electronics_sales_share"
name = "Electronics share of sales"
fact = "purchases"
filter = [{ column = "quantity", op = ">", value = 0 }]

[kpi.ratio]
percent = true
numerator = { aggregate = "sum", column = "amount", filter = [{ column = "category", value = "electronics" }] }
denominator = { aggregate = "sum", column = "amount" }

[[kpi]]
id = "not_complaints"
name = "Tickets not marked as complaints"
fact = "tickets"
aggregate = "count"
filter = [{ column = "is_complaint", op = "!=", value = true }]

[[kpi]]
id = "february_on"
name = "Purchase lines from February"
fact = "purchases"
aggregate = "count"
filter = [{ column = "ordered_at", op = ">=", value = 2024-02-01 }]

[[kpi]]
id = "no_injection"
name = "Lines in a category that is SQL"
fact = "purchases"
aggregate = "count"
filter = [{ column = "category", value = "books' OR '1'='1" }]
"""


@pytest.fixture
def shop(store: Store, load: Any, tmp_path: Path) -> Store:
    load(store, "customers", write(tmp_path / "customers.csv", CUSTOMERS))
    load(store, "order-lines", write(tmp_path / "lines.csv", LINES))
    load(store, "tickets", write(tmp_path / "tickets.csv", TICKETS))
    return store


@pytest.fixture
def kpi_file(tmp_path: Path) -> Path:
    return write(tmp_path / "kpis.toml", SHOP_KPIS)


def table(store: Store, kpi: str, kpi_file: Path, **query: Any) -> list[tuple[Any, ...]]:
    """The result as (period, *by, value, n) rows, rounded to 9 digits."""
    query.setdefault("as_of", AS_OF)
    frame = compute(store, kpi, custom_file=kpi_file, **query)
    columns = ["period", *query.get("by", ()), "value", "n"]
    return [
        (str(r[0]), *r[1:-2], round(float(r[-2]), 9), float(r[-1]))
        for r in frame[columns].itertuples(index=False)
    ]


# -- a valid file compiles to KPIs that compute like the built-in ones -----------------------------


def test_a_filtered_sum_is_an_exact_total_with_breakdown_and_where(shop: Store, kpi_file: Path) -> None:
    assert table(shop, "electronics_revenue", kpi_file) == [
        ("2024-01-01", 120.0, 2.0),  # O1 line 1 (20) + O2 (100)
        ("2024-02-01", 300.0, 1.0),  # O3; the return O4 has quantity < 0
    ]
    assert table(shop, "electronics_revenue", kpi_file, by=["segment"]) == [
        ("2024-01-01", "smb", 120.0, 2.0),
        ("2024-02-01", "enterprise", 300.0, 1.0),
    ]
    assert table(shop, "electronics_revenue", kpi_file, where={"channel": "store"}) == [
        ("2024-01-01", 100.0, 1.0)
    ]
    frame = compute(shop, "electronics_revenue", custom_file=kpi_file, as_of=AS_OF)
    assert frame["ci_low"].isna().all() and frame["warning"].isna().all()


def test_counts_and_distinct_counts(shop: Store, kpi_file: Path) -> None:
    assert table(shop, "buyers", kpi_file) == [("2024-01-01", 2.0, 2.0), ("2024-02-01", 2.0, 2.0)]
    assert table(shop, "book_lines", kpi_file, grain="all", start=dt.datetime(2024, 1, 1)) == [
        ("2024-01-01", 2.0, 2.0)
    ]
    assert table(shop, "february_on", kpi_file, grain="all", start=dt.datetime(2024, 1, 1)) == [
        ("2024-01-01", 3.0, 3.0)
    ]


def test_a_mean_has_the_student_t_interval(shop: Store, kpi_file: Path) -> None:
    frame = compute(shop, "mean_line_value", custom_file=kpi_file, as_of=AS_OF)
    january = frame.iloc[0]
    values = np.array([20.0, 30.0, 100.0])
    low, high = st.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=st.sem(values))
    assert (january["value"], january["n"]) == (50.0, 3.0)
    assert january["ci_low"] == pytest.approx(low, abs=1e-9)
    assert january["ci_high"] == pytest.approx(high, abs=1e-9)
    assert frame.iloc[1][["value", "n"]].tolist() == [180.0, 2.0]  # (300 + 60) / 2


def test_a_ratio_of_counts_over_the_same_rows_is_a_proportion_with_a_wilson_interval(
    shop: Store, kpi_file: Path
) -> None:
    assert kpis(kpi_file).get("delivery_share").kind is Kind.PROPORTION
    assert table(shop, "delivery_share", kpi_file) == [
        ("2024-03-01", 50.0, 4.0),  # T1, T2 of T1..T4
        ("2024-04-01", 100.0, 1.0),
    ]
    assert table(shop, "delivery_share", kpi_file, by=["segment"], where={"channel": "email"}) == [
        ("2024-03-01", "enterprise", 0.0, 1.0),  # T3
        ("2024-03-01", "smb", 100.0, 1.0),  # T1
        ("2024-04-01", "enterprise", 100.0, 1.0),  # T5
    ]
    frame = compute(shop, "delivery_share", custom_file=kpi_file, as_of=AS_OF)
    low, high = wilson(np.array([2.0]), np.array([4.0]), st.norm.ppf(0.975))
    assert frame.loc[0, "ci_low"] == pytest.approx(100 * low[0])
    assert frame.loc[0, "ci_high"] == pytest.approx(100 * high[0])
    assert frame.loc[0, "warning"] == "only 4 observations (fewer than 30)"


def test_a_ratio_of_sums_is_a_ratio_and_in_percent_a_share_without_interval(
    shop: Store, kpi_file: Path
) -> None:
    registry = kpis(kpi_file)
    assert registry.get("revenue_per_unit").kind is Kind.RATIO
    assert registry.get("electronics_sales_share").kind is Kind.SHARE
    assert registry.get("electronics_sales_share").unit == "%"
    # Jan: (20 + 30 + 100) / (2 + 1 + 1); Feb: (300 + 60) / (3 + 2). n: the lines it is over.
    assert table(shop, "revenue_per_unit", kpi_file) == [("2024-01-01", 37.5, 3.0), ("2024-02-01", 72.0, 2.0)]
    assert table(shop, "electronics_sales_share", kpi_file) == [
        ("2024-01-01", 80.0, 3.0),  # 120 / 150
        ("2024-02-01", round(100 * 300 / 360, 9), 2.0),
    ]
    frame = compute(shop, "revenue_per_unit", custom_file=kpi_file, as_of=AS_OF)
    assert frame["ci_low"].isna().all()


def test_not_equal_keeps_rows_without_a_value(shop: Store, kpi_file: Path) -> None:
    # T2 (false) and T4 (no flag) in March; T5 is a complaint.
    assert table(shop, "not_complaints", kpi_file) == [("2024-03-01", 2.0, 2.0)]


def test_values_are_values_never_sql(shop: Store, kpi_file: Path) -> None:
    assert table(shop, "no_injection", kpi_file) == []
    assert rows(shop, "SELECT count(*) FROM order_lines") == [(6,)]


def test_custom_kpis_join_the_registry_as_data(kpi_file: Path) -> None:
    registry = Registry.load(kpi_file)
    kpi = registry.get("electronics_revenue")
    assert len(registry) == len(Registry.load()) + SHOP_KPIS.count("[[kpi]]")
    assert kpi.describe() == {
        "id": "electronics_revenue",
        "name": "Electronics revenue",
        "group": "custom",
        "formula": "sum of amount over purchases where category in (electronics) and quantity > 0",
        "unit": "currency",
        "direction": "up",
        "tables": ["orders", "order_lines"],
        "default_grain": "month",
        "kind": "sum",
        "ci_method": "none (an exact total)",
        "dimensions": FACTS["purchases"].all_dimensions(),
        "custom": True,
    }
    assert registry.get("delivery_share").formula == (
        "(count where category = delivery) / (count) of tickets, in %"
    )


@pytest.mark.parametrize(
    ("numerator", "denominator", "kind"),
    [
        (
            '{ aggregate = "count", filter = [{ column = "priority", value = "high" }] }',
            '{ aggregate = "count" }',
            "proportion",
        ),
        # a count of a column counts its rows with a value; rating >= 4 has one
        (
            '{ aggregate = "count", filter = [{ column = "reopens", op = ">", value = 0 }] }',
            '{ aggregate = "count", column = "reopens" }',
            "proportion",
        ),
        (
            '{ aggregate = "count_distinct", column = "customer_id", filter = [{ column = "priority", value = "high" }] }',
            '{ aggregate = "count_distinct", column = "customer_id" }',
            "proportion",
        ),
        # the numerator's rows are not among the denominator's: a share
        (
            '{ aggregate = "count", filter = [{ column = "priority", value = "high" }] }',
            '{ aggregate = "count", filter = [{ column = "channel", value = "email" }] }',
            "share",
        ),
        ('{ aggregate = "count_distinct", column = "customer_id" }', '{ aggregate = "count" }', "share"),
    ],
)
def test_which_ratios_are_proportions(tmp_path: Path, numerator: str, denominator: str, kind: str) -> None:
    path = write(
        tmp_path / "kpis.toml",
        f'[[kpi]]\nid = "x"\nname = "X"\nfact = "tickets"\n[kpi.ratio]\npercent = true\n'
        f"numerator = {numerator}\ndenominator = {denominator}\n",
    )
    assert load_custom_kpis(path)[0].kind == kind


def test_the_columns_of_purchases_are_those_of_the_purchase_lines(duck_store: Store) -> None:
    with store_source(duck_store) as source:
        ctx = Context(source, Query(), FACTS["purchases"])
        assert list(ctx.purchase_lines().columns) == list(PURCHASE_COLUMNS)
    assert fact_columns("purchases")["amount"] == "number"
    assert "row_hash" not in fact_columns("tickets")
    assert fact_columns("tickets")["is_complaint"] == "boolean"


def test_an_empty_file_defines_no_kpis(tmp_path: Path) -> None:
    assert load_custom_kpis(write(tmp_path / "kpis.toml", "# nothing yet\n")) == []


# -- every bad input names the file, the line, the field and the KPI -------------------------------

GOOD = dedent(
    """\
    [[kpi]]
    id = "first"
    name = "First"
    fact = "tickets"
    aggregate = "count"

    [[kpi]]
    id = "electronics_revenue"
    name = "Electronics revenue"
    fact = "purchases"
    aggregate = "sum"
    column = "amount"
    filter = [
      { column = "quantity", op = ">", value = 0 },
      { column = "category", op = "in", values = ["electronics"] },
    ]
    """
)


def error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path / "kpis.toml", text)
    with pytest.raises(InputError) as caught:
        load_custom_kpis(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


PURCHASE_COLUMN_LIST = "order_id, customer_id, ordered_at, channel, category, product_id, quantity, amount"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '"category", op = "in"',
            '"catgory", op = "in"',
            "line 15: field 'kpi[1].filter[1].column': KPI 'electronics_revenue': no column 'catgory' in "
            f"purchases (did you mean 'category'?); columns: {PURCHASE_COLUMN_LIST}",
        ),
        (
            'fact = "purchases"',
            'fact = "purchase"',
            "line 10: field 'kpi[1].fact': KPI 'electronics_revenue': unknown fact 'purchase' (did you mean "
            "'purchases'?); choose one of purchases, orders, responses, tickets, reviews, invitations",
        ),
        (
            'op = ">"',
            'op = "=>"',
            "line 14: field 'kpi[1].filter[0].op': KPI 'electronics_revenue': unknown operator '=>'; "
            "choose one of = != < <= > >= in not_in is_null not_null",
        ),
        (
            "value = 0",
            'value = "0"',
            "line 14: field 'kpi[1].filter[0].value': KPI 'electronics_revenue': 'quantity' is a number "
            "column: expected a number, like 10 or 2.5 (no quotes), got the string '0'",
        ),
        (
            'values = ["electronics"]',
            "values = [7]",
            "line 15: field 'kpi[1].filter[1].values[0]': KPI 'electronics_revenue': 'category' is a text "
            'column: expected a string in quotes, like "books", got 7',
        ),
        (
            'column = "amount"',
            'colum = "amount"',
            "line 12: field 'kpi[1].colum': KPI 'electronics_revenue': unknown key 'colum' in a KPI (did you "
            "mean 'column'?); keys: id, name, formula, fact, unit, direction, grain, group, aggregate, "
            "column, filter, ratio",
        ),
        (
            'op = "in", values',
            'op = "in", valeus',
            "line 15: field 'kpi[1].filter[1].valeus': KPI 'electronics_revenue': unknown key 'valeus' in a "
            "condition (did you mean 'values'?); keys: column, op, value, values",
        ),
        (
            'id = "electronics_revenue"',
            'id = "first"',
            "line 8: field 'kpi[1].id': KPI 'first': id 'first' is already used by kpi[0]",
        ),
        (
            'id = "electronics_revenue"',
            'id = "revenue"',
            "line 8: field 'kpi[1].id': KPI 'revenue': 'revenue' is a built-in KPI; choose another id",
        ),
        (
            'name = "Electronics revenue"\n',
            "",
            "line 7: field 'kpi[1].name': KPI 'electronics_revenue': missing: the KPI's name for people "
            '(e.g. name = "Electronics revenue")',
        ),
        (
            'aggregate = "sum"',
            'aggregate = "avg"',
            "line 11: field 'kpi[1].aggregate': KPI 'electronics_revenue': unknown aggregate 'avg'; "
            "choose one of count, count_distinct, sum, mean",
        ),
        (
            'column = "amount"',
            'column = "category"',
            "line 12: field 'kpi[1].column': KPI 'electronics_revenue': sum needs a number column; "
            "'category' is text; number columns of purchases: quantity, amount",
        ),
        (
            'column = "category", op = "in"',
            'column = "category", op = ">"',
            "line 15: field 'kpi[1].filter[1].op': KPI 'electronics_revenue': '>' compares numbers and "
            "times; 'category' is text, which takes = != in not_in is_null not_null",
        ),
        (
            'values = ["electronics"]',
            "values = []",
            "line 15: field 'kpi[1].filter[1].values': KPI 'electronics_revenue': expected a non-empty "
            "list of values",
        ),
        (
            'op = "in", values = ["electronics"]',
            'op = "in", value = "electronics"',
            "line 15: field 'kpi[1].filter[1].value': KPI 'electronics_revenue': in takes a list: "
            "values = [...]",
        ),
        (
            'id = "electronics_revenue"',
            'id = "Electronics Revenue"',
            "line 8: field 'kpi[1].id': KPI 'Electronics Revenue': 'Electronics Revenue' is not a valid id: "
            "lower-case letters, digits and _, starting with a letter",
        ),
        (
            'aggregate = "sum"\ncolumn = "amount"\n',
            'aggregate = "sum"\n',
            "line 7: field 'kpi[1].column': KPI 'electronics_revenue': missing: sum needs the column it "
            f"aggregates; columns of purchases: {PURCHASE_COLUMN_LIST}",
        ),
    ],
)
def test_a_bad_field_is_named_with_its_line_and_kpi(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    assert error(tmp_path, GOOD.replace(old, new, 1)) == message


def test_invalid_toml_gives_its_line(tmp_path: Path) -> None:
    text = GOOD.replace('fact = "purchases"', 'fact = "purchases', 1)
    assert error(tmp_path, text) == "line 10: not valid TOML: Illegal character '\\n'"


def test_errors_inside_a_ratio_name_the_numerator_or_denominator(tmp_path: Path) -> None:
    text = dedent(
        """\
        [[kpi]]
        id = "share"
        name = "Share"
        fact = "tickets"

        [kpi.ratio]
        numerator = { aggregate = "count", filter = [{ column = "priority", value = "high" }] }
        denominator = { aggregate = "count", filter = [{ column = "chanel", value = "email" }] }
        """
    )
    assert error(tmp_path, text) == (
        "line 8: field 'kpi[0].ratio.denominator.filter[0].column': KPI 'share': no column 'chanel' in "
        "tickets (did you mean 'channel'?); columns: source, ticket_id, customer_id, opened_at, "
        "first_response_at, resolved_at, channel, category, priority, status, agent_id, is_complaint, "
        "reopens, subject, body"
    )
    assert error(tmp_path, text.replace("denominator = ", "denominatr = ")) == (
        "line 8: field 'kpi[0].ratio.denominatr': KPI 'share': unknown key 'denominatr' in a ratio (did "
        "you mean 'denominator'?); keys: numerator, denominator, percent"
    )
    assert error(tmp_path, text.replace('denominator = { aggregate = "count", ', "denominator = { ")) == (
        "line 8: field 'kpi[0].ratio.denominator.aggregate': KPI 'share': missing: choose one of count, "
        "count_distinct, sum, mean"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[kpis]]\nid = "x"\n',
            "line 1: field 'kpis': unknown key 'kpis'; the file holds [[kpi]] tables",
        ),
        (
            '[kpi]\nid = "x"\n',
            "line 1: field 'kpi': write each KPI as a [[kpi]] table (an array of tables)",
        ),
        (
            '[[kpi]]\nname = "X"\nfact = "tickets"\naggregate = "count"\n',
            "line 1: field 'kpi[0].id': missing: the KPI's id, in snake_case (e.g. id = \"electronics_revenue\")",
        ),
        (
            '[[kpi]]\nid = "x"\nname = "X"\nfact = "tickets"\n',
            "line 1: field 'kpi[0].aggregate': KPI 'x': missing: choose one of count, count_distinct, sum, "
            "mean (or give a ratio)",
        ),
        (
            '[[kpi]]\nid = "x"\nname = "X"\nfact = "tickets"\naggregate = "count"\n'
            'ratio = { numerator = { aggregate = "count" }, denominator = { aggregate = "count" } }\n',
            "line 5: field 'kpi[0].aggregate': KPI 'x': a KPI is an aggregate or a ratio, not both: move it "
            "into ratio.numerator or ratio.denominator",
        ),
        (
            '[[kpi]]\nid = "x"\nname = "X"\nfact = "tickets"\naggregate = "count"\n'
            'filter = [{ column = "is_complaint", value = "yes" }]\n',
            "line 6: field 'kpi[0].filter[0].value': KPI 'x': 'is_complaint' is a boolean column: expected "
            "true or false (no quotes), got the string 'yes'",
        ),
        (
            '[[kpi]]\nid = "x"\nname = "X"\nfact = "tickets"\naggregate = "count"\n'
            'filter = [{ column = "opened_at", op = ">=", value = "2024-01-01" }]\n',
            "line 6: field 'kpi[0].filter[0].value': KPI 'x': 'opened_at' is a timestamp column: expected a "
            "TOML date or date-time, like 2024-01-31 or 2024-01-31T12:00:00Z (no quotes), got the string "
            "'2024-01-01'",
        ),
        (
            '[[kpi]]\nid = "x"\nname = "X"\nfact = "tickets"\naggregate = "count"\n'
            'filter = [{ column = "resolved_at", op = "is_null", value = true }]\n',
            "line 6: field 'kpi[0].filter[0].value': KPI 'x': is_null takes no value",
        ),
        (
            '[[kpi]]\nid = "x"\nname = "X"\nfact = "tickets"\naggregate = "count"\ndirection = "higher"\n',
            "line 6: field 'kpi[0].direction': KPI 'x': unknown direction 'higher'; choose one of up, down, "
            "neutral",
        ),
    ],
)
def test_more_bad_inputs(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


def test_filters_written_as_tables_are_located_too(tmp_path: Path) -> None:
    text = dedent(
        """\
        [[kpi]]
        id = "x"
        name = "X"
        fact = "tickets"
        aggregate = "count"

        [[kpi.filter]]
        column = "priority"
        value = "high"

        [[kpi.filter]]
        column = "priority"
        value = 3
        """
    )
    assert error(tmp_path, text) == (
        "line 13: field 'kpi[0].filter[1].value': KPI 'x': 'priority' is a text column: expected a string "
        'in quotes, like "books", got 3'
    )


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"kpis\.toml: no such file"):
        load_custom_kpis(tmp_path / "kpis.toml")


# -- the example users copy ------------------------------------------------------------------------


def test_the_example_file_loads_and_computes_on_the_demo_business(duck_store: Store) -> None:
    from cxloop.demo_store import load_demo

    load_demo(duck_store, customers=300, as_of=dt.date(2025, 6, 30))
    as_of = dt.datetime(2025, 7, 1)
    defined = load_custom_kpis(EXAMPLE)
    assert len(defined) == EXAMPLE.read_text().count("\n[[kpi]]\n")
    for kpi in defined:
        frame = compute(duck_store, kpi, grain="quarter", by=["segment"], as_of=as_of)
        assert len(frame) > 0, kpi.id
        assert frame["value"].notna().any(), kpi.id
        if kpi.unit == "%":
            assert frame["value"].dropna().between(0, 100).all(), kpi.id

    # One figure against pandas on the same rows: electronics sales in 2024.
    lines = pd.DataFrame(
        rows(
            duck_store,
            "SELECT l.category, l.quantity, l.amount, o.ordered_at FROM order_lines l "
            "JOIN orders o USING (order_id)",
        ),
        columns=["category", "quantity", "amount", "ordered_at"],
    )
    in_2024 = lines[(pd.to_datetime(lines.ordered_at).dt.year == 2024) & (lines.quantity > 0)]
    expected = float(in_2024.loc[in_2024.category == "Electronics", "amount"].sum())
    year = compute(
        duck_store,
        "electronics_revenue",
        custom_file=EXAMPLE,
        grain="year",
        as_of=as_of,
        start=dt.datetime(2024, 1, 1),
        end=dt.datetime(2025, 1, 1),
    )
    assert year["value"].tolist() == [pytest.approx(expected, abs=1e-6)]


def test_the_line_is_that_of_the_bad_element_of_a_list(tmp_path: Path) -> None:
    text = dedent(
        """\
        [[kpi]]
        id = "x"
        name = "X"
        fact = "tickets"
        aggregate = "count"
        filter = [
          # "priority" first: a comment with [brackets], { braces } and "quotes"
          { column = "priority", op = "in", values = ["high", "low # not a comment"] },
          { column = "priority", op = "in", values = [
            "urgent",
            7,
          ] },
        ]
        """
    )
    assert error(tmp_path, text) == (
        "line 11: field 'kpi[0].filter[1].values[1]': KPI 'x': 'priority' is a text column: expected a "
        'string in quotes, like "books", got 7'
    )


def test_the_guide_lists_the_columns_of_every_fact() -> None:
    guide = (ROOT / "docs" / "metrics.md").read_text()
    section = guide[guide.index("## Custom KPIs as code") :]
    for fact in FACT_TABLES:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{fact}` |"))
        listed = [c.strip().split(" ")[0] for c in row.split("|")[2].split(",")]
        assert listed == list(fact_columns(fact)), fact


def test_the_guide_s_example_is_a_valid_file(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "metrics.md").read_text()
    section = guide[guide.index("## Custom KPIs as code") :]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    defined = load_custom_kpis(write(tmp_path / "kpis.toml", example))
    assert [(k.id, k.kind) for k in defined] == [
        ("electronics_revenue", Kind.SUM),
        ("delivery_ticket_share", Kind.PROPORTION),
    ]
