"""KPIs on real exports against a plain pandas computation that reads the source files directly.

Olist, CDNOW and a generated Online-Retail-style export are imported with their presets into a
DuckDB store; every KPI that applies to them is computed by cxloop month by month, and by pandas
from the files as published (not from the store), following docs/metrics.md word for word. They
must agree to 1e-9 (relative) in value and exactly in n.

The Olist and CDNOW files are in ../shared/data; without it these tests skip with the reason,
except under CI=true, where they fail.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from cxloop import ImportOptions, Store, import_file
from cxloop.config import Settings
from cxloop.metrics import compute
from cxloop.metrics.source import Source, store_source
from test_real_data import CDNOW, OLIST, need, write_online_retail

WINDOW = dt.timedelta(days=90)  # "active": a purchase in the last 90 days
TOP = 0.2  # the top 20% of customers
REL = 1e-9


@dataclass
class Shop:
    """One data set: a store with it, and what pandas read from the source files."""

    name: str
    source: Source
    lines: pd.DataFrame  # order_id, customer_id (None: a guest), ordered_at, quantity, amount, [region]
    start: dt.datetime
    as_of: dt.datetime
    reviews: pd.DataFrame | None = None  # rating, posted_at


def open_store(directory: Path) -> Store:
    url = str(directory / "store.duckdb")
    return Store.open(url, settings=Settings(database_url=url, timezone="UTC"))


def imported(directory: Path, files: list[tuple[str, Path, str]]) -> Store:
    store = open_store(directory)
    for entity, path, preset in files:
        result = import_file(
            store, entity, path, ImportOptions(rejects_dir=directory / "rejects", preset=preset)
        )
        assert result.loaded > 0, (entity, path)
    return store


def month_bounds(lines: pd.DataFrame) -> tuple[dt.datetime, dt.datetime]:
    """From the first day of the first month to the first day after the last month."""
    first, last = lines.ordered_at.min(), lines.ordered_at.max()
    start = dt.datetime(first.year, first.month, 1)
    as_of = dt.datetime(last.year + last.month // 12, last.month % 12 + 1, 1)
    return start, as_of


@pytest.fixture(scope="module")
def olist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    need(OLIST)
    files = {
        "customers": OLIST / "olist_customers_dataset.csv",
        "orders": OLIST / "olist_orders_dataset.csv",
        "order-lines": OLIST / "olist_order_items_dataset.csv",
        "reviews": OLIST / "olist_order_reviews_dataset.csv",
    }
    customers, orders, items, reviews = (pd.read_csv(p, dtype=str) for p in files.values())
    # Olist gives each order its own customer id; the person is customer_unique_id.
    person = orders.merge(customers, on="customer_id", how="left")
    lines = items.merge(person, on="order_id", how="inner")
    frame = pd.DataFrame({
        "order_id": lines.order_id,
        "customer_id": lines.customer_unique_id,
        "ordered_at": pd.to_datetime(lines.order_purchase_timestamp),
        "quantity": 1.0,  # an item is one unit
        "amount": lines.price.astype(float),  # freight is not revenue
        "region": lines.customer_state,
    })  # fmt: skip
    rated = pd.DataFrame({
        "rating": reviews.review_score.astype(float),
        "posted_at": pd.to_datetime(reviews.review_creation_date),
    })  # fmt: skip
    start, as_of = month_bounds(frame)
    store = imported(tmp_path_factory.mktemp("olist"), [(e, p, "olist") for e, p in files.items()])
    try:
        with store_source(store) as source:
            yield Shop("olist", source, frame, start, as_of, rated)
    finally:
        store.close()


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    need(CDNOW)
    raw = pd.read_csv(CDNOW, sep=r"\s+", dtype=str)
    frame = pd.DataFrame({
        "order_id": raw.customer_id + "-" + raw.date,  # a customer's purchases of one day
        "customer_id": raw.customer_id,
        "ordered_at": pd.to_datetime(raw.date, format="%Y%m%d"),
        "quantity": raw.number_of_cds.astype(float),
        "amount": raw.dollar_value.astype(float),
    })  # fmt: skip
    start, as_of = month_bounds(frame)
    store = imported(tmp_path_factory.mktemp("cdnow"), [("order-lines", CDNOW, "cdnow")])
    try:
        with store_source(store) as source:
            yield Shop("cdnow", source, frame, start, as_of)
    finally:
        store.close()


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    directory = tmp_path_factory.mktemp("retail")
    path = directory / "online_retail.csv"
    write_online_retail(path, lines=100_000, seed=20111209)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    price = pd.to_numeric(raw.UnitPrice, errors="coerce")
    when = pd.to_datetime(raw.InvoiceDate, format="%m/%d/%Y %H:%M", errors="coerce")
    good = price.notna() & when.notna()  # the rest is refused by the import, line by line
    raw, price, when = raw[good], price[good], when[good]
    customer = raw.CustomerID.str.removesuffix(".0")
    frame = pd.DataFrame({
        "order_id": raw.InvoiceNo,
        "customer_id": customer.where(customer != "", None),  # no CustomerID: a guest
        "ordered_at": when,
        "quantity": raw.Quantity.astype(float),  # negative on cancellations (C...): returns
        "amount": raw.Quantity.astype(float) * price,
    }).reset_index(drop=True)  # fmt: skip
    start, as_of = month_bounds(frame)
    store = imported(directory, [("order-lines", path, "online-retail")])
    try:
        with store_source(store) as source:
            yield Shop("online-retail", source, frame, start, as_of)
    finally:
        store.close()


# ------------------------------------------------------------------ pandas, from the definitions


def month(ts: pd.Series) -> pd.Series:
    return ts.dt.to_period("M").dt.start_time.dt.date


Table = dict[tuple[Any, ...], tuple[float, float]]


def as_table(frame: pd.DataFrame, keys: list[str]) -> Table:
    return {tuple(r[k] for k in keys): (float(r["value"]), float(r["n"])) for r in frame.to_dict("records")}


def revenue_kpis(lines: pd.DataFrame, kpi: str, by: list[str]) -> Table:
    """The revenue KPIs of docs/metrics.md over order lines, per month (and ``by``)."""
    lines = lines.assign(period=month(lines.ordered_at))
    keys = ["period", *by]
    sales = lines[lines.quantity > 0]  # a purchase is a line with quantity > 0
    if kpi == "revenue":
        g = sales.groupby(keys).amount
        return as_table(pd.DataFrame({"value": g.sum(), "n": g.size()}).reset_index(), keys)
    if kpi == "net_revenue":
        g = lines.groupby(keys).amount
        return as_table(pd.DataFrame({"value": g.sum(), "n": g.size()}).reset_index(), keys)
    if kpi == "orders":
        count = sales.groupby(keys).order_id.nunique()
        return as_table(pd.DataFrame({"value": count, "n": count}).reset_index(), keys)
    if kpi == "aov":
        per_order = sales.groupby([*keys, "order_id"]).amount.sum().groupby(keys)
        return as_table(pd.DataFrame({"value": per_order.mean(), "n": per_order.size()}).reset_index(), keys)

    # Customer KPIs: lines without a customer do not count.
    mine = lines[lines.customer_id.notna()]
    customer = mine.groupby([*keys, "customer_id"])
    per_customer = pd.DataFrame({
        "net": customer.amount.sum(),
        "orders": mine[mine.quantity > 0].groupby([*keys, "customer_id"]).order_id.nunique(),
    }).fillna({"orders": 0}).reset_index()  # fmt: skip
    buyers = per_customer[per_customer.orders > 0]
    out = []
    for key, group in per_customer.groupby(keys):
        bought = buyers.loc[buyers.index.intersection(group.index)]
        if bought.empty:
            continue  # a period with returns only has no buyer
        count = len(bought)
        if kpi == "revenue_per_customer":  # net revenue of lines with a customer / buyers
            value = group.net.sum() / count
        elif kpi == "purchase_frequency":
            value = bought.orders.mean()
        elif kpi == "repeat_purchase_rate":
            value = 100 * (bought.orders >= 2).sum() / count
        elif kpi == "top_customer_share":
            ranked = bought.sort_values(["net", "customer_id"], ascending=[False, True])
            value = 100 * ranked.net.iloc[: math.ceil(TOP * count)].sum() / ranked.net.sum()
        else:
            raise AssertionError(kpi)
        out.append((*(key if isinstance(key, tuple) else (key,)), value, count))
    return as_table(pd.DataFrame(out, columns=[*keys, "value", "n"]), keys)


_STATES: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], tuple[int, int, int, int]]] = {}


def customer_states(shop: Shop, by: list[str]) -> dict[tuple[Any, ...], tuple[int, int, int, int]]:
    """{(month, *by): (S, E, N, lost)}: S active at the month's start, E at its end (active at t: a
    purchase in [t - 90 days, t)), N first purchase ever in the month, lost in S and not in E."""
    if (shop.name, tuple(by)) in _STATES:
        return _STATES[shop.name, tuple(by)]
    lines = shop.lines
    bought = lines[(lines.quantity > 0) & lines.customer_id.notna()]
    first = bought.groupby("customer_id").ordered_at.min()
    known = lines.dropna(subset=["customer_id"]).drop_duplicates("customer_id").set_index("customer_id")
    group_of = known[by[0]].to_dict() if by else dict.fromkeys(known.index, None)

    def active(at: dt.datetime) -> set[str]:
        return set(bought.customer_id[(bought.ordered_at >= at - WINDOW) & (bought.ordered_at < at)])

    out: dict[tuple[Any, ...], tuple[int, int, int, int]] = {}
    lo = shop.start
    while lo < shop.as_of:
        hi = min(dt.datetime(lo.year + lo.month // 12, lo.month % 12 + 1, 1), shop.as_of)
        s, e = active(lo), active(hi)
        n = set(first.index[(first >= lo) & (first < hi)])
        for group in {group_of[c] for c in s | e | n}:  # a month nobody touches has no row
            s_, e_, n_ = ({c for c in x if group_of[c] == group} for x in (s, e, n))
            key = (lo.date(), group) if by else (lo.date(),)
            out[key] = (len(s_), len(e_), len(n_), len(s_ - e_))
        lo = hi
    _STATES[shop.name, tuple(by)] = out
    return out


def customer_state_kpis(shop: Shop, kpi: str, by: list[str]) -> Table:
    """Active, new and lost customers; retention (E - N) / S; churn lost / S."""
    out = {}
    for key, (s, e, n, lost) in customer_states(shop, by).items():
        value, count = {
            "active_customers": (e, e),
            "new_customers": (n, n),
            "lost_customers": (lost, lost),
            "retention_rate": (100 * (e - n) / s if s else math.nan, s),
            "churn_rate": (100 * lost / s if s else math.nan, s),
        }[kpi]
        out[key] = (float(value), float(count))
    return out


def review_kpis(reviews: pd.DataFrame, kpi: str) -> Table:
    g = reviews.assign(period=month(reviews.posted_at)).groupby("period").rating
    if kpi == "average_rating":
        return {
            (p,): (float(v), float(n)) for p, v, n in zip(g.mean().index, g.mean(), g.size(), strict=True)
        }
    return {(p,): (float(n), float(n)) for p, n in g.size().items()}


REVENUE = ["revenue", "net_revenue", "orders", "aov", "revenue_per_customer", "purchase_frequency",
           "repeat_purchase_rate", "top_customer_share"]  # fmt: skip
CUSTOMERS = ["active_customers", "new_customers", "lost_customers", "retention_rate", "churn_rate"]


def expected(shop: Shop, kpi: str, by: list[str]) -> Table:
    if kpi in REVENUE:
        return revenue_kpis(shop.lines, kpi, by)
    return customer_state_kpis(shop, kpi, by)


def computed(shop: Shop, kpi: str, by: list[str] | None = None) -> Table:
    frame = compute(shop.source, kpi, grain="month", by=by or [], start=shop.start, as_of=shop.as_of)
    keys = ["period", *(by or [])]
    return as_table(frame, keys)


def agree(got: Table, want: Table) -> None:
    assert len(want) > 0
    assert sorted(got, key=repr) == sorted(want, key=repr)
    for key, (value, n) in want.items():
        assert got[key][1] == n, (key, got[key], (value, n))
        if math.isnan(value):
            assert math.isnan(got[key][0]), key
        else:
            assert got[key][0] == pytest.approx(value, rel=REL, abs=1e-9), (key, got[key], value)


@pytest.fixture(params=["olist", "cdnow", "online-retail"])
def shop(request: pytest.FixtureRequest) -> Shop:
    name = {"olist": "olist", "cdnow": "cdnow", "online-retail": "retail"}[request.param]
    found: Shop = request.getfixturevalue(name)
    return found


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("kpi", REVENUE + CUSTOMERS)
def test_kpi_equals_pandas_on_real_data(shop: Shop, kpi: str) -> None:
    agree(computed(shop, kpi), expected(shop, kpi, []))


@pytest.mark.parametrize("kpi", REVENUE + CUSTOMERS)
def test_kpi_by_customer_region_equals_pandas_on_olist(olist: Shop, kpi: str) -> None:
    agree(computed(olist, kpi, ["region"]), expected(olist, kpi, ["region"]))


@pytest.mark.parametrize("kpi", ["average_rating", "review_volume"])
def test_olist_review_kpis_equal_pandas(olist: Shop, kpi: str) -> None:
    assert olist.reviews is not None
    agree(computed(olist, kpi), review_kpis(olist.reviews, kpi))


def test_intervals_on_real_data_are_scipys(shop: Shop) -> None:
    """The average order value's t interval, and the repeat purchase rate's Wilson interval."""
    lines = shop.lines.assign(period=month(shop.lines.ordered_at))
    sales = lines[lines.quantity > 0]
    frame = compute(shop.source, "aov", start=shop.start, as_of=shop.as_of).set_index("period")
    for period, orders in sales.groupby(["period", "order_id"]).amount.sum().groupby("period"):
        if len(orders) > 1:
            low, high = st.t.interval(0.95, len(orders) - 1, loc=orders.mean(), scale=st.sem(orders))
            got = frame.loc[period]
            assert (got.ci_low, got.ci_high) == pytest.approx((low, high), rel=1e-9), period

    z = st.norm.ppf(0.975)
    frame = compute(shop.source, "repeat_purchase_rate", start=shop.start, as_of=shop.as_of).set_index(
        "period"
    )
    for (period,), (value, n) in expected(shop, "repeat_purchase_rate", []).items():
        p = value / 100
        centre, half = p + z**2 / (2 * n), z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        want = (100 * (centre - half) / (1 + z**2 / n), 100 * (centre + half) / (1 + z**2 / n))
        got = frame.loc[period]
        assert (got.ci_low, got.ci_high) == pytest.approx(want, rel=1e-9, abs=1e-9), period
