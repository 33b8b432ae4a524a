"""Sales preferences and trends, and products bought together, against a small shop worked out
by hand, on DuckDB and PostgreSQL; then on the demo (the two engines agree, and a plain pandas
computation agrees) and on Olist's real orders, items and product categories.

The shop (tests/fixtures/sales/, as of 2024-04-01, so March is the last complete month):

* customers c1, c2 (consumer; north, south) and c3, c4 (business; north, south);
* February: F1 bread (c1), F2 bread (c2), F3 butter (c3), F4 bread + jam (c4), F5 coffee (c3);
* March: O1 bread, butter, jam (c1); O2 bread, butter (c2); O3 bread, milk (c3); O4 butter,
  milk (c4); O5 bread, butter and bread again on a third line (c1, status "Completed");
  O6 jam (c2, no status); O7 bread, butter, *Cancelled*; O8 bread, jam and the jam returned on a
  third line (c4); O9 coffee, cream (c1); O10 coffee, cream, bread (a guest); R1 a return of
  bread booked as an order of its own (c2);
* April (after as of): A1 coffee, cream.

Categories: bread is bakery; butter, milk and cream are dairy; jam and coffee are pantry.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from cxloop import ImportOptions, Store, import_file
from cxloop.config import Settings
from cxloop.demo_store import load_demo
from cxloop.errors import ConfigError
from cxloop.metrics import compute, store_source
from cxloop.metrics.source import Source
from cxloop.voice.baskets import basket_pairs
from cxloop.voice.sales import benjamini_hochberg, item_trends, top_items
from test_cli import cxloop
from test_real_data import OLIST, need

FIXTURES = Path(__file__).parent / "fixtures" / "sales"
AS_OF = dt.datetime(2024, 4, 1)
MARCH = dt.datetime(2024, 3, 1)
FILES = [("customers", "customers.csv"), ("order-lines", "order_lines.csv"), ("reviews", "reviews.csv")]


def open_fixture_store(directory: Path, url: str | None = None) -> Store:
    """The hand-made shop imported into a store (DuckDB in ``directory`` unless ``url``)."""
    url = url or str(directory / "store.duckdb")
    store = Store.open(url, settings=Settings(database_url=url, timezone="UTC"))
    for entity, name in FILES:
        options = ImportOptions(rejects_dir=directory / "rejects", source="shop")
        result = import_file(store, entity, FIXTURES / name, options)
        assert result.rejected == 0, (name, result.reject_sample)
    return store


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    directory = tmp_path_factory.mktemp("sales")
    url = schema = None
    if request.param == "postgres":
        import psycopg

        pg_url = request.getfixturevalue("pg_url")
        schema = f"cx_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    store = open_fixture_store(directory, url)
    try:
        yield store
    finally:
        store.close()
        if schema is not None:
            import psycopg

            with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def shop(shop_store: Store) -> Iterator[Source]:
    with store_source(shop_store) as source:
        yield source


def pairs_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["item_a"], frame["item_b"], strict=True))


# -- bought together --------------------------------------------------------------------------


def test_products_bought_together_in_march_by_hand(shop: Source) -> None:
    pairs = basket_pairs(shop, start=MARCH, as_of=AS_OF, min_count=2, min_support=0)

    # Baskets: O1-O6, O8, O9, O10 (O7 is cancelled, R1 holds only a return): N = 9.
    # bread 6 (O1 O2 O3 O5 O8 O10), butter 4 (O1 O2 O4 O5), coffee 2, cream 2 (O9 O10); jam 2
    # (O1 O6: O8's jam was returned in the order); milk 2 (O3 O4).
    # Pairs in 2+ baskets: coffee+cream (O9 O10), bread+butter (O1 O2 O5; O5's two bread lines
    # count once). The others (bread+jam, butter+milk, ...) are in one basket each.
    assert pairs_of(pairs) == [("coffee", "cream"), ("bread", "butter")]
    coffee_cream, bread_butter = pairs.to_dict(orient="records")
    assert coffee_cream == {
        "item_a": "coffee", "name_a": "Coffee", "item_b": "cream", "name_b": "Cream",
        "orders_ab": 2, "orders_a": 2, "orders_b": 2, "baskets": 9,
        "support": pytest.approx(2 / 9), "confidence_a_b": 1.0, "confidence_b_a": 1.0,
        "lift": pytest.approx(2 * 9 / (2 * 2)),  # 4.5
        "p_value": pytest.approx(1 / 36),  # both of coffee's 2 baskets among cream's: 1 / C(9, 2)
    }  # fmt: skip
    assert bread_butter["orders_ab"] == 3 and bread_butter["orders_a"] == 6 and bread_butter["orders_b"] == 4
    assert bread_butter["support"] == pytest.approx(3 / 9)
    assert bread_butter["confidence_a_b"] == pytest.approx(3 / 6)  # bread → butter
    assert bread_butter["confidence_b_a"] == pytest.approx(3 / 4)  # butter → bread
    assert bread_butter["lift"] == pytest.approx(3 * 9 / (6 * 4))  # 1.125
    # P(X >= 3), X hypergeometric: 4 butter baskets drawn from 9 of which 6 hold bread.
    assert bread_butter["p_value"] == pytest.approx((20 * 3 + 15) / 126)
    assert pairs.attrs["baskets"] == 9


def test_categories_bought_together_by_hand(shop: Source) -> None:
    pairs = basket_pairs(shop, level="category", start=MARCH, as_of=AS_OF, min_count=1, min_support=0)

    # bakery 6, dairy 7 (O4's butter and milk are one dairy item), pantry 4 (O1 O6 O9 O10);
    # bakery+dairy 5, dairy+pantry 3 (O1 O9 O10), bakery+pantry 2 (O1 O10).
    assert pairs_of(pairs) == [("bakery", "dairy"), ("dairy", "pantry"), ("bakery", "pantry")]
    assert pairs["orders_ab"].tolist() == [5, 3, 2]
    assert pairs["lift"].tolist() == pytest.approx([5 * 9 / (6 * 7), 3 * 9 / (7 * 4), 2 * 9 / (6 * 4)])
    assert pairs["name_a"].tolist() == pairs["item_a"].tolist()


def test_minimum_support_and_count_cut_pairs(shop: Source) -> None:
    def kept(**options: Any) -> list[tuple[str, str]]:
        return pairs_of(basket_pairs(shop, start=MARCH, as_of=AS_OF, **options))

    assert kept(min_count=3, min_support=0) == [("bread", "butter")]
    assert kept(min_count=1, min_support=0.25) == [("bread", "butter")]  # 0.25 * 9 = 2.25: 3 baskets
    assert kept(min_count=1, min_support=2 / 9) == [("coffee", "cream"), ("bread", "butter")]  # exactly 2
    assert len(kept(min_count=1, min_support=0)) == 8  # every pair that occurs
    assert kept(min_count=1, min_support=0, limit=1) == [("coffee", "cream")]
    assert kept(min_count=4, min_support=0) == []


def test_baskets_span_every_order_before_as_of_and_filter_by_segment(shop: Source) -> None:
    everything = basket_pairs(shop, as_of=AS_OF, min_count=1, min_support=0)
    # February adds F1-F5 (5 baskets) and one more bread+jam (F4); April's A1 is after as of.
    assert everything.attrs["baskets"] == 14
    row = everything[(everything["item_a"] == "bread") & (everything["item_b"] == "jam")].iloc[0]
    assert (row["orders_ab"], row["orders_a"], row["orders_b"]) == (2, 9, 3)
    later = basket_pairs(shop, as_of=dt.datetime(2024, 5, 1), min_count=1, min_support=0)
    assert later.attrs["baskets"] == 15

    consumers = basket_pairs(shop, start=MARCH, as_of=AS_OF, where={"segment": "consumer"}, min_count=2)
    # c1 and c2: O1, O2, O5, O6, O9 (R1 is no basket): bread and butter are in O1 O2 O5.
    assert consumers.attrs["baskets"] == 5
    assert pairs_of(consumers) == [("bread", "butter")]
    assert consumers["lift"].iloc[0] == pytest.approx(3 * 5 / (3 * 3))


def test_no_pair_gives_an_empty_table_with_the_columns(shop: Source) -> None:
    none = basket_pairs(shop, start=MARCH, as_of=AS_OF, min_count=50)

    assert none.empty and "lift" in none.columns
    assert none.attrs["baskets"] == 9


# -- top sellers ------------------------------------------------------------------------------


def test_top_categories_of_march_by_hand(shop: Source) -> None:
    top = top_items(shop, as_of=AS_OF)

    # Revenue of lines with quantity > 0 (as the revenue KPI): pantry jam 4 + 8 + 4 and coffee
    # 8 + 8 = 32; dairy butter 3 + 6 + 3 + 3 + 3 (O7 too: the KPI counts cancelled orders),
    # milk 4 + 1, cream 2 + 2 = 27; bakery 2 + 2 + 10 + 2 + 2 + 2 + 2 + 2 = 24. Total 83.
    assert top["category"].tolist() == ["pantry", "dairy", "bakery"]
    assert top["rank"].tolist() == [1, 2, 3]
    assert top["revenue"].tolist() == [32.0, 27.0, 24.0]
    assert top["net_revenue"].tolist() == [28.0, 27.0, 22.0]  # O8's jam and R1's bread returned
    assert top["units"].tolist() == [6.0, 13.0, 12.0]
    assert top["orders"].tolist() == [5, 8, 7]
    assert top["customers"].tolist() == [3, 4, 4]  # the guest's O10 counts in orders only
    assert top["share"].tolist() == pytest.approx([100 * 32 / 83, 100 * 27 / 83, 100 * 24 / 83])
    assert set(top["period"]) == {dt.date(2024, 3, 1)}


def test_top_revenue_adds_up_to_the_revenue_kpi(shop: Source) -> None:
    top = top_items(shop, as_of=AS_OF, limit=None).set_index("category")["revenue"]
    kpi = compute(shop, "revenue", by=["category"], start=MARCH, end=AS_OF, as_of=AS_OF)

    assert kpi.set_index("category")["value"].sort_index().to_dict() == top.sort_index().to_dict()


def test_top_products_per_segment_by_customers(shop: Source) -> None:
    top = top_items(shop, level="product", measure="customers", per="segment", as_of=AS_OF, limit=2)

    business = top[top["segment"] == "business"]
    # c3 bought bread (O3, O7), butter (O7), milk (O3); c4 bread (O8), butter and milk (O4), jam.
    assert business["product"].tolist() == ["bread", "butter"]  # 2 customers each; then by name
    assert business["product_name"].tolist() == ["Bread", "Butter"]
    assert business["share"].tolist() == [100.0, 100.0]
    guests = top[top["segment"].isna()]
    assert guests["product"].tolist() == ["bread", "coffee"]  # O10; no customer, so none counted
    assert guests["customers"].tolist() == [0, 0]


def test_top_for_a_chosen_period_and_region(shop: Source) -> None:
    feb = top_items(shop, as_of=AS_OF, period=dt.date(2024, 2, 20), where={"region": ["south"]})
    # South: c2 (F2 bread 4) and c4 (F4 bread 2, jam 4).
    assert feb[["category", "revenue"]].values.tolist() == [["bakery", 6.0], ["pantry", 4.0]]
    quarter = top_items(shop, as_of=AS_OF, grain="quarter", measure="orders")
    assert set(quarter["period"]) == {dt.date(2024, 1, 1)}
    assert quarter["orders"].tolist() == [10, 9, 7]  # bakery F1 F2 F4 + 7, dairy 1 + 8, pantry 2 + 5


# -- rising and falling -----------------------------------------------------------------------


def test_trends_of_march_against_february_by_hand(shop: Source) -> None:
    trends = item_trends(shop, as_of=AS_OF, min_orders=0)

    by = trends.set_index("category")
    # Orders with the category: bakery 3 → 7, dairy 1 → 8, pantry 2 → 5; all orders 5 → 10.
    assert by["orders"].to_dict() == {"bakery": 7, "dairy": 8, "pantry": 5}
    assert by["previous_orders"].to_dict() == {"bakery": 3, "dairy": 1, "pantry": 2}
    assert by["change"].to_dict() == {"bakery": 4, "dairy": 7, "pantry": 3}
    assert by["relative_change"].to_dict() == pytest.approx({"bakery": 4 / 3, "dairy": 7.0, "pantry": 1.5})
    assert by["share"].to_dict() == pytest.approx({"bakery": 70.0, "dairy": 80.0, "pantry": 50.0})
    assert by["previous_share"].to_dict() == pytest.approx({"bakery": 60.0, "dairy": 20.0, "pantry": 40.0})
    assert by.loc["bakery", "revenue"] == 24.0 and by.loc["bakery", "previous_revenue"] == 8.0
    # The conditional test of two Poisson rates: orders now ~ Binomial(now + before, 10 / 15).
    expected = {c: st.binomtest(k, k + b, 10 / 15).pvalue for c, k, b in [("bakery", 7, 3), ("dairy", 8, 1), ("pantry", 5, 2)]}
    assert by["p_value"].to_dict() == pytest.approx(expected)
    assert by["q_value"].tolist() == pytest.approx(benjamini_hochberg(by["p_value"].to_numpy()).tolist())
    assert set(trends["period"]) == {dt.date(2024, 3, 1)} and set(trends["previous_period"]) == {dt.date(2024, 2, 1)}


def test_benjamini_hochberg_q_values() -> None:
    p = np.array([0.01, 0.02, 0.03, 0.5])
    assert benjamini_hochberg(p).tolist() == pytest.approx([0.04, 0.04, 0.04, 0.5])
    assert np.isnan(benjamini_hochberg(np.array([np.nan, 0.5]))[0])


def test_trends_leave_out_small_items_and_test_counts_when_asked(shop: Source) -> None:
    assert item_trends(shop, as_of=AS_OF, min_orders=10)["category"].tolist() == ["bakery"]  # 7 + 3

    counts = item_trends(shop, as_of=AS_OF, min_orders=0, relative=False).set_index("category")
    # Equal exposure: orders now ~ Binomial(now + before, 1/2).
    assert counts.loc["dairy", "p_value"] == pytest.approx(st.binomtest(8, 9, 0.5).pvalue)
    assert counts.loc["dairy", "q_value"] == pytest.approx(3 * counts.loc["dairy", "p_value"])  # 3 tests
    assert counts["trend"].tolist() == ["steady"] * 3  # q = 0.117: not enough evidence at 5%
    lenient = item_trends(shop, as_of=AS_OF, min_orders=0, relative=False, alpha=0.2)
    assert lenient["category"].tolist()[0] == "dairy" and lenient["trend"].tolist()[0] == "rising"
    # By share (the default) dairy's 20% → 80% is 1 order → 8 of 5 → 10: p = 0.2, not even that.
    assert set(item_trends(shop, as_of=AS_OF, min_orders=0, alpha=0.2)["trend"]) == {"steady"}


def test_trends_per_segment(shop: Source) -> None:
    trends = item_trends(shop, level="product", per="segment", as_of=AS_OF, min_orders=0)

    consumer_bread = trends[(trends["segment"] == "consumer") & (trends["product"] == "bread")].iloc[0]
    # Consumers: February F1, F2 (both bread); March O1, O2, O5, O6, O9.
    assert (consumer_bread["orders"], consumer_bread["previous_orders"]) == (3, 2)
    assert consumer_bread["share"] == pytest.approx(60.0) and consumer_bread["previous_share"] == 100.0
    assert consumer_bread["product_name"] == "Bread"
    new = trends[(trends["segment"] == "consumer") & (trends["product"] == "coffee")].iloc[0]
    assert new["previous_orders"] == 0 and math.isnan(new["relative_change"])


# -- bad options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: item_trends(s, as_of=AS_OF, where={"segment": "enterprise"}), "unknown segment 'enterprise'; the segment values in the data are: business, consumer"),
        (lambda s: top_items(s, as_of=AS_OF, where={"region": ["north", "west"]}), "unknown region 'west'"),
        (lambda s: basket_pairs(s, as_of=AS_OF, where={"segment": "vip"}), "unknown segment 'vip'"),
        (lambda s: item_trends(s, as_of=AS_OF, grain="fortnight"), "unknown grain 'fortnight'"),
        (lambda s: item_trends(s, as_of=AS_OF, grain="day"), "grain 'day' does not apply to sales periods"),
        (lambda s: top_items(s, as_of=AS_OF, level="brand"), "level 'brand' is not one of category, product"),
        (lambda s: basket_pairs(s, as_of=AS_OF, level="sku"), "level 'sku' is not one of category, product"),
        (lambda s: top_items(s, as_of=AS_OF, per="colour"), "cannot break sales down by 'colour'"),
        (lambda s: top_items(s, as_of=AS_OF, measure="profit"), "measure 'profit' is not one of"),
        (lambda s: item_trends(s, as_of=AS_OF, period=dt.date(2024, 4, 10)), "the month starting 2024-04-01 is not over"),
        (lambda s: basket_pairs(s, as_of=AS_OF, min_support=1.5), "min_support must lie between 0 and 1"),
    ],
)  # fmt: skip
def test_bad_options_say_what_is_wrong(shop: Source, call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        call(shop)


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sales-cli")
    open_fixture_store(directory).close()
    return directory / "store.duckdb"


def in_process(db: Path, *args: str) -> Any:
    """``cxloop --db db ...`` in this process (the real app, without a process start each)."""
    from typer.testing import CliRunner

    from cxloop.cli.app import app

    return CliRunner(env={"CXLOOP_DATABASE_URL": None, "COLUMNS": "200"}).invoke(app, ["--db", str(db), *args])


def test_cli_sales_commands_print_what_the_api_computes(shop_db: Path, tmp_path: Path) -> None:
    at = ["--as-of", "2024-04-01", "--json"]
    shown = cxloop("--db", str(shop_db), "sales", "baskets", "--from", "2024-03-01", "--min-count", "2", *at, cwd=tmp_path)
    trends = json.loads(in_process(shop_db, "sales", "trends", "--min-orders", "0", *at).stdout)
    top = json.loads(in_process(shop_db, "sales", "top", "--by", "product", "--segment", "business", *at).stdout)

    assert shown.returncode == 0, shown.stderr
    baskets = json.loads(shown.stdout)
    assert [(r["item_a"], r["item_b"], r["lift"]) for r in baskets] == [("coffee", "cream", 4.5), ("bread", "butter", 1.125)]
    assert {r["category"]: r["orders"] for r in trends} == {"bakery": 7, "dairy": 8, "pantry": 5}
    assert trends[0]["period"] == "2024-03-01" and set(trends[0]) >= {"p_value", "q_value", "trend"}
    with Store.open(str(shop_db)) as store, store_source(store) as source:
        want = top_items(source, level="product", where={"segment": "business"}, as_of=AS_OF)
    assert [r["product"] for r in top] == want["product"].tolist()
    assert [r["revenue"] for r in top] == want["revenue"].tolist()


def test_cli_sales_tables_for_people(shop_db: Path) -> None:
    shown = in_process(shop_db, "sales", "baskets", "--from", "2024-03-01", "--min-count", "2", "--as-of", "2024-04-01")
    assert shown.exit_code == 0, shown.output
    assert "Coffee" in shown.stdout and "4.5" in shown.stdout and "9 orders" in shown.stdout

    trends = in_process(shop_db, "sales", "trends", "--min-orders", "0", "--absolute", "--as-of", "2024-04-01")
    assert trends.exit_code == 0, trends.output
    assert "No category is significantly rising: 2024-03-01 against 2024-02-01 (month)" in trends.stdout
    assert "3 of 3 categories steady (change in orders" in trends.stdout

    top = in_process(shop_db, "sales", "top", "--per", "region", "--as-of", "2024-04-01")
    assert top.exit_code == 0, top.output
    assert "Top categories by revenue, 2024-03-01 (month)" in top.stdout and "north" in top.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trends", "--segment", "enterprise"], "unknown segment 'enterprise'"),
        (["trends", "--grain", "fortnight"], "unknown grain 'fortnight'"),
        (["top", "--by", "brand"], "level 'brand' is not one of category, product"),
        (["baskets", "--level", "sku"], "level 'sku' is not one of category, product"),
        (["baskets", "--min-support", "2"], "Invalid value for '--min-support'"),
    ],
)
def test_cli_bad_options_exit_with_the_reason(shop_db: Path, args: list[str], message: str) -> None:
    shown = in_process(shop_db, "sales", *args, "--as-of", "2024-04-01")

    assert shown.exit_code == (2 if "Invalid value" in message else 1)
    assert message in " ".join(shown.output.split())
    assert shown.exception is None or isinstance(shown.exception, SystemExit)  # no traceback


# -- the demo: both engines, and pandas -------------------------------------------------------

DEMO_AS_OF = dt.datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def demo_duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(str(tmp_path_factory.mktemp("sales-demo") / "demo.duckdb"))
    try:
        load_demo(store, customers=400, seed=11, as_of=DEMO_AS_OF.date())
        yield store
    finally:
        store.close()


def _demo_figures(store: Store) -> dict[str, pd.DataFrame]:
    with store_source(store) as source:
        return {
            "baskets": basket_pairs(source, as_of=DEMO_AS_OF, min_count=3, min_support=0, limit=None),
            "baskets_category": basket_pairs(source, level="category", as_of=DEMO_AS_OF, min_count=1, limit=None),
            "trends": item_trends(source, level="product", per="segment", as_of=DEMO_AS_OF, min_orders=0),
            "top": top_items(source, level="product", per="region", grain="quarter", as_of=DEMO_AS_OF, limit=None),
        }


def test_demo_baskets_match_pandas(demo_duck: Store) -> None:
    got = _demo_figures(demo_duck)["baskets"]
    with demo_duck.engine.connect() as conn:
        lines = pd.read_sql("SELECT order_id, product_id, quantity FROM order_lines", conn)
        orders = pd.read_sql("SELECT order_id, ordered_at, status FROM orders", conn)
    # Written from the definition: net quantity per order and product > 0, cancelled orders out.
    orders = orders[(orders.ordered_at < DEMO_AS_OF) & (orders.status.str.lower() != "cancelled")]
    lines = lines[lines.order_id.isin(orders.order_id)].astype({"quantity": float})
    net = lines.groupby(["order_id", "product_id"], as_index=False).quantity.sum()
    items = net[net.quantity > 0][["order_id", "product_id"]]
    n = items.order_id.nunique()
    counts = items.product_id.value_counts()
    both = items.merge(items, on="order_id")
    both = both[both.product_id_x < both.product_id_y]
    together = both.groupby(["product_id_x", "product_id_y"]).size()
    together = together[together >= 3]
    lift = {k: v * n / (counts[k[0]] * counts[k[1]]) for k, v in together.items()}

    assert got.attrs["baskets"] == n
    assert dict(zip(pairs_of(got), got["orders_ab"], strict=True)) == together.to_dict()
    assert got["lift"].tolist() == pytest.approx([lift[p] for p in pairs_of(got)], rel=1e-12)
    assert (np.diff(got["lift"].to_numpy()) <= 1e-12).all()  # ranked by lift
    assert got["name_a"].notna().all()


@pytest.mark.postgres
def test_demo_figures_are_the_same_on_postgresql(demo_duck: Store, pg_schema_url: str) -> None:
    pg = Store.open(pg_schema_url)
    try:
        load_demo(pg, customers=400, seed=11, as_of=DEMO_AS_OF.date())
        on_pg = _demo_figures(pg)
    finally:
        pg.close()
    on_duck = _demo_figures(demo_duck)

    for name, want in on_duck.items():
        got = on_pg[name]
        assert len(want) > 0, name
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9, obj=name)


def test_demo_top_products_add_up_to_revenue_per_region(demo_duck: Store) -> None:
    top = _demo_figures(demo_duck)["top"]
    with store_source(demo_duck) as source:
        kpi = compute(source, "revenue", grain="quarter", by=["region"], start=dt.datetime(2025, 10, 1), as_of=DEMO_AS_OF)

    summed = top.groupby("region", dropna=False)["revenue"].sum()
    for row in kpi.itertuples():
        assert summed[row.region] == pytest.approx(row.value, rel=1e-9)
    assert top.groupby("region", dropna=False)["share"].sum().to_numpy() == pytest.approx(100.0)


# -- Olist: real orders, items and product categories -----------------------------------------


@pytest.fixture(scope="module")
def olist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Source, pd.DataFrame]]:
    """Olist imported with its preset, the items carrying their product's category (in English,
    from Olist's products and translation tables, joined here as a user would before import)."""
    need(OLIST)
    directory = tmp_path_factory.mktemp("olist-sales")
    items = pd.read_csv(OLIST / "olist_order_items_dataset.csv", dtype=str)
    products = pd.read_csv(OLIST / "olist_products_dataset.csv", dtype=str)
    english = pd.read_csv(OLIST / "product_category_name_translation.csv", dtype=str, encoding="utf-8-sig")
    named = products.merge(english, on="product_category_name", how="left")
    items = items.merge(named[["product_id", "product_category_name_english"]], on="product_id", how="left")
    items.to_csv(directory / "items.csv", index=False)
    url = str(directory / "store.duckdb")
    store = Store.open(url, settings=Settings(database_url=url, timezone="UTC"))
    files = [
        ("customers", OLIST / "olist_customers_dataset.csv", {}),
        ("orders", OLIST / "olist_orders_dataset.csv", {}),
        ("order-lines", directory / "items.csv", {"category": "product_category_name_english"}),
    ]
    for entity, path, maps in files:
        options = ImportOptions(rejects_dir=directory / "rejects", preset="olist", maps=maps)
        assert import_file(store, entity, path, options).loaded > 0
    orders = pd.read_csv(OLIST / "olist_orders_dataset.csv", dtype=str)
    frame = items.merge(orders, on="order_id")
    frame["ordered_at"] = pd.to_datetime(frame.order_purchase_timestamp)
    try:
        with store_source(store) as source:
            yield source, frame
    finally:
        store.close()


def test_olist_categories_bought_together_match_pandas(olist: tuple[Source, pd.DataFrame]) -> None:
    source, frame = olist
    got = basket_pairs(source, level="category", as_of=dt.datetime(2018, 11, 1), min_count=2, min_support=0, limit=None)

    kept = frame[frame.order_status != "canceled"].dropna(subset=["product_category_name_english"])
    items = kept[["order_id", "product_category_name_english"]].drop_duplicates()
    items.columns = ["order_id", "category"]
    both = items.merge(items, on="order_id")
    together = both[both.category_x < both.category_y].groupby(["category_x", "category_y"]).size()
    assert got.attrs["baskets"] == items.order_id.nunique()
    assert dict(zip(pairs_of(got), got["orders_ab"], strict=True)) == together[together >= 2].to_dict()
    counts, n = items.category.value_counts(), items.order_id.nunique()
    lift = [ab * n / (counts[a] * counts[b]) for (a, b), ab in zip(pairs_of(got), got["orders_ab"], strict=True)]
    assert len(got) > 0 and got["lift"].tolist() == pytest.approx(lift, rel=1e-12)


def test_olist_top_categories_and_trends(olist: tuple[Source, pd.DataFrame]) -> None:
    source, frame = olist
    as_of = dt.datetime(2018, 9, 1)
    top = top_items(source, as_of=as_of, limit=5)

    august = frame[(frame.ordered_at >= "2018-08-01") & (frame.ordered_at < "2018-09-01")]
    revenue = august.groupby("product_category_name_english")["price"].apply(lambda p: p.astype(float).sum())
    assert top["category"].tolist() == revenue.sort_values(ascending=False, kind="stable").index[:5].tolist()
    assert top["revenue"].tolist() == pytest.approx(revenue.sort_values(ascending=False).iloc[:5].tolist())
    trends = item_trends(source, as_of=as_of)
    assert len(trends) > 0 and set(trends["trend"]) <= {"rising", "falling", "steady"}
    assert (trends["orders"] + trends["previous_orders"] >= 20).all()
