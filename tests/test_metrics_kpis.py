"""Every KPI against a small shop whose answers are worked out by hand, on DuckDB and PostgreSQL.

The data is in tests/fixtures/metrics/ (as_of 2024-05-01; every table also has a row after it):

* customers c1-c7; segments smb (c1, c2, c5), enterprise (c3, c4), consumer (c6, c7);
* order lines: c7 bought once in 2023-09 and comes back in April; c1 returns a toy (R1, its own
  order) in February; c2 returns a book in March (R2) without buying; O8 (c3, April) holds a sale
  and a returned line; O4 and O12 are guest orders; O9 is at 2024-04-01 00:00 exactly;
* survey answers in February (survey S1: NPS, CSAT on 1-5, 1-3 and 1-7, CES on 1-7 and 1-5, one
  custom question) and March (S2: NPS, one CSAT left blank), with invitations;
* tickets in February-April: one complaint per month in February and March, reopens, one ticket
  still open, one resolved only after as_of;
* reviews and posts on trustpilot, google and x, for our brand (acme) and a competitor (rival);
* subscriptions: c1 upgrades from basic (10) to pro (30) on 03-15, c2 cancels on 02-20.

Each expected value is written as the arithmetic a reader can check against the CSV files.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from cxloop import ImportOptions, Store, import_file
from cxloop.config import Settings
from cxloop.metrics import compute, kpis
from cxloop.metrics.catalogue import customers as customers_catalogue
from cxloop.metrics.compute import compute_queries, compute_query, make_query
from cxloop.metrics.query import FACTS, Context, Options
from cxloop.metrics.source import Source, store_source, to_pandas

FIXTURES = Path(__file__).parent / "fixtures" / "metrics"
AS_OF = dt.datetime(2024, 5, 1)
START = dt.datetime(2024, 1, 1)
JAN, FEB, MAR, APR, MAY = (dt.date(2024, m, 1) for m in (1, 2, 3, 4, 5))
Z = st.norm.ppf(0.975)
NAN = math.nan

FILES = [
    ("customers", "customers.csv", None),
    ("order-lines", "order_lines.csv", None),
    ("responses", "responses.csv", "typeform"),
    ("invitations", "invitations.csv", None),
    ("tickets", "tickets.csv", "zendesk"),
    ("reviews", "reviews_trustpilot.csv", "trustpilot"),
    ("reviews", "reviews_google.csv", "google"),
    ("reviews", "reviews_x.csv", "x"),
    ("subscriptions", "subscriptions.csv", None),
]


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """conftest's ``store`` (DuckDB, PostgreSQL), scoped to the module: the fixture is imported
    once per engine."""
    directory = tmp_path_factory.mktemp("hand")
    schema = None
    if request.param == "duckdb":
        url = str(directory / "store.duckdb")
    else:
        import psycopg

        pg_url = request.getfixturevalue("pg_url")
        schema = f"cx_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    store = Store.open(url, settings=Settings(database_url=url, timezone="UTC"))
    try:
        for entity, name, source in FILES:
            options = ImportOptions(rejects_dir=directory / "rejects", source=source)
            result = import_file(store, entity, FIXTURES / name, options)
            assert result.rejected == 0, (name, result.reject_sample)
        yield store
    finally:
        store.close()
        if schema is not None:
            import psycopg

            with psycopg.connect(request.getfixturevalue("pg_url"), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def shop(shop_store: Store) -> Iterator[Source]:
    """One Ibis source over the store for the whole module (``compute`` takes a Store or a Source;
    opening one per call would only repeat the connection set-up)."""
    with store_source(shop_store) as source:
        yield source


def kpi(data: Source | Store, kpi_id: str, **query: Any) -> pd.DataFrame:
    query.setdefault("as_of", AS_OF)
    return compute(data, kpi_id, **query)


def same(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=1e-12, abs=1e-9)


def table(frame: pd.DataFrame, dims: tuple[str, ...] = ()) -> dict[tuple[Any, ...], tuple[float, float]]:
    """{(period, *dimension values): (value, n)}; a missing dimension value (a guest) is None."""
    out = {}
    for row in frame.to_dict("records"):
        key = (row["period"], *(None if pd.isna(row[d]) else row[d] for d in dims))
        out[key] = (float(row["value"]), float(row["n"]))
    return out


# ------------------------------------------------------------------ the hand-computed answers


@dataclass(frozen=True)
class Case:
    """A query and its answer: {(period, *dims): value or (value, n)}."""

    label: str
    query: dict[str, Any]
    expected: dict[tuple[Any, ...], Any]
    dims: tuple[str, ...] = field(default=())


def monthly(expected: dict[dt.date, Any]) -> Case:
    """Months from 2024-01-01 to as_of."""
    return Case("monthly", {"start": START}, {(p,): v for p, v in expected.items()})


def split(dim: str, month: dt.date, expected: dict[Any, Any]) -> Case:
    """One month broken down by ``dim``."""
    lo = dt.datetime(month.year, month.month, 1)
    hi = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1)
    query = {"start": lo, "end": hi, "by": [dim]}
    return Case(f"{month:%b} by {dim}", query, {(month, k): v for k, v in expected.items()}, (dim,))


# Survey answers of February (S1), scores on their own scale:
#   c1 R101: nps 10, csat 5/5, ces 7/7        c5 R105: nps 5, csat 2/3, ces 4/7
#   c2 R102: nps 9,  csat 4/5                 c6 R106: nps 0, csat 6/7, ces 4/5
#   c3 R103: nps 9,  csat 3/5, ces 5/7        c7 R107: custom 10, csat 2/5, ces 2/7
#   c4 R104: nps 8,  csat 3/3
# CSAT moved onto 1-5: 1 + 4 * (score - min) / (max - min); CES onto 1-7 likewise.
CSAT_FEB = {  # response: (rescaled score, satisfied?, channel, touchpoint)
    "R101": (5, True, "email", "delivery"),
    "R102": (4, True, "email", "delivery"),
    "R103": (3, False, "email", "delivery"),
    "R104": (1 + 4 * (3 - 1) / (3 - 1), True, "sms", "delivery"),  # 3 of 1-3: the top box
    "R105": (1 + 4 * (2 - 1) / (3 - 1), False, "sms", "checkout"),  # 2 of 1-3: not the top box
    "R106": (1 + 4 * (6 - 1) / (7 - 1), True, "email", "checkout"),  # 6 of 1-7: a top-two box
    "R107": (2, False, "email", "checkout"),
}
CES_FEB = [7, 5, 4, 1 + 6 * (4 - 1) / (5 - 1), 2]  # c1, c3, c5, c6 (4 of 1-5), c7

HAND: dict[str, list[Case]] = {
    # ---- surveys
    "nps": [
        # February: promoters 10, 9, 9; passive 8; detractors 5, 0. March: 10, 10, 9 / 7 / 6.
        monthly({FEB: (100 * (3 - 2) / 6, 6), MAR: (100 * (3 - 1) / 5, 5)}),
        split(
            "segment",
            FEB,
            {
                "smb": 100 * (2 - 1) / 3,  # c1 10, c2 9, c5 5
                "enterprise": 100 * (1 - 0) / 2,  # c3 9, c4 8
                "consumer": 100 * (0 - 1) / 1,  # c6 0 (c7 answered a custom question, not NPS)
            },
        ),
    ],
    "csat": [
        monthly({FEB: (100 * 4 / 7, 7)}),  # R101, R102, R104, R106 satisfied; March's CSAT is blank
        split("touchpoint", FEB, {"delivery": (100 * 3 / 4, 4), "checkout": (100 * 1 / 3, 3)}),
    ],
    "csat_mean": [
        monthly({FEB: ((5 + 4 + 3 + 5 + 3 + (1 + 4 * 5 / 6) + 2) / 7, 7)}),
        split("channel", FEB, {"email": ((5 + 4 + 3 + (1 + 4 * 5 / 6) + 2) / 5, 5), "sms": ((5 + 3) / 2, 2)}),
    ],
    "ces": [
        monthly({FEB: ((7 + 5 + 4 + 5.5 + 2) / 5, 5)}),  # 4 of 1-5 is 1 + 6 * 3 / 4 = 5.5 of 1-7
        split("segment", FEB, {"smb": (7 + 4) / 2, "enterprise": 5, "consumer": (5.5 + 2) / 2}),
    ],
    "ces_agree": [
        monthly({FEB: (100 * 3 / 5, 5)}),  # above the middle: 7 > 4, 5 > 4, 4 > 3 (on 1-5)
        split("segment", FEB, {"smb": 100 * 1 / 2, "enterprise": 100 * 1 / 1, "consumer": 100 * 1 / 2}),
    ],
    "responses": [
        monthly({FEB: 7, MAR: 5}),  # R101-R107; R201-R205 (R204's CSAT is blank: still a response)
        split("touchpoint", FEB, {"delivery": 4, "checkout": 3}),
    ],
    "response_rate": [
        # February: I1, I2, I4, I5 answered; I3 was sent after c3 had answered. March: I7, I8
        # answered; I6 asks c1 again for S1, which c1 answered before it was sent.
        monthly({FEB: (100 * 4 / 5, 5), MAR: (100 * 2 / 3, 3)}),
        split("channel", FEB, {"email": 100 * 2 / 3, "sms": 100 * 2 / 2}),
    ],
    # ---- revenue (a purchase is a line with quantity > 0)
    "revenue": [
        monthly(
            {
                JAN: (20 + 30 + 40 + 25 + 15, 5),
                FEB: (100 + 60, 2),  # R1 is a return
                MAR: (150 + 50 + 35, 3),  # R2 is a return
                APR: (10 + 80 + 20 + 45, 4),  # O8's returned line is not a sale
            }
        ),
        split("category", APR, {"books": (10 + 45, 2), "toys": (80 + 20, 2)}),
    ],
    "net_revenue": [
        monthly({JAN: 130, FEB: 100 + 60 - 30, MAR: 150 + 50 + 35 - 10, APR: 10 + 80 - 20 + 20 + 45}),
        split("segment", MAR, {"enterprise": 150 + 50, "smb": -10, None: 35}),  # None: the guest
    ],
    "orders": [
        monthly({JAN: 4, FEB: 2, MAR: 2, APR: 4}),  # the return-only orders R1, R2 are not purchases
        split("channel", JAN, {"web": 3, "store": 1}),
    ],
    "aov": [
        monthly(
            {
                JAN: ((50 + 40 + 25 + 15) / 4, 4),
                FEB: ((100 + 60) / 2, 2),
                MAR: ((200 + 35) / 2, 2),
                APR: ((10 + 80 + 20 + 45) / 4, 4),  # O8's sales are 80, its return aside
            }
        ),
        split("segment", JAN, {"smb": ((50 + 40 + 25) / 3, 3), None: (15, 1)}),
    ],
    "revenue_per_customer": [
        monthly(
            {
                JAN: ((50 + 25 + 40) / 2, 2),  # c1, c2; the guest's 15 is not a customer's
                FEB: ((100 + 60 - 30) / 2, 2),  # c3, c1 (net of its return)
                MAR: ((200 - 10) / 1, 1),  # c2's return counts, c2 bought nothing: the one buyer is c4
                APR: ((30 + (80 - 20) + 45) / 3, 3),  # c5, c3, c7
            }
        ),
        split("segment", APR, {"smb": 30, "enterprise": 80 - 20, "consumer": 45}),
    ],
    "purchase_frequency": [
        monthly({JAN: ((2 + 1) / 2, 2), FEB: ((1 + 1) / 2, 2), MAR: (1, 1), APR: ((2 + 1 + 1) / 3, 3)}),
        split("segment", APR, {"smb": 2, "enterprise": 1, "consumer": 1}),
    ],
    "repeat_purchase_rate": [
        monthly({JAN: (100 * 1 / 2, 2), FEB: (0, 2), MAR: (0, 1), APR: (100 * 1 / 3, 3)}),
        split("segment", APR, {"smb": 100, "enterprise": 0, "consumer": 0}),
    ],
    "top_customer_share": [
        # ceil(20% of the buyers) by net revenue: 1 of 2 or 3 buyers.
        monthly(
            {
                JAN: (100 * 75 / (75 + 40), 2),
                FEB: (100 * 100 / (100 + 30), 2),
                MAR: (100 * 200 / 200, 1),  # c2 (only a return) is not a buyer
                APR: (100 * 60 / (30 + 60 + 45), 3),
            }
        ),
        split("channel", APR, {"web": (100 * 45 / (30 + 45), 2), "store": (100 * 60 / 60, 1)}),
    ],
    # ---- customers: active at t = a purchase in [t - 90 days, t)
    # first purchases: c7 2023-09-15, c1 01-05, c2 01-10, c3 02-03, c4 03-05, c5 04-01 00:00.
    # active at 01-01: none (c7's purchase is 108 days before); 02-01: c1 c2; 03-01: c1 c2 c3;
    # 04-01 (window from 01-02): c1 c2 c3 c4; 05-01 (window from 02-01): c1 c3 c4 c5 c7.
    "active_customers": [
        monthly({JAN: 2, FEB: 3, MAR: 4, APR: 5}),
        split("segment", APR, {"smb": 2, "enterprise": 2, "consumer": 1}),  # c1 c5 | c3 c4 | c7
    ],
    "new_customers": [
        monthly({JAN: 2, FEB: 1, MAR: 1, APR: 1}),  # c7's return in April is not new
        split("segment", APR, {"smb": 1, "enterprise": 0, "consumer": 0}),
    ],
    "lost_customers": [
        monthly({JAN: 0, FEB: 0, MAR: 0, APR: 1}),  # c2, whose last purchase was 01-10
        split("segment", APR, {"smb": 1, "enterprise": 0, "consumer": 0}),
    ],
    "retention_rate": [  # (E - N) / S
        monthly(
            {
                JAN: (NAN, 0),
                FEB: (100 * (3 - 1) / 2, 2),
                MAR: (100 * (4 - 1) / 3, 3),
                APR: (100 * (5 - 1) / 4, 4),  # c2 lost, c7 reactivated: E - N = S
            }
        ),
        split(
            "segment",
            APR,
            {
                "smb": (100 * (2 - 1) / 2, 2),  # S c1 c2, E c1 c5, N c5
                "enterprise": (100 * (2 - 0) / 2, 2),
                "consumer": (NAN, 0),  # c7 is active at the end only
            },
        ),
    ],
    "churn_rate": [  # lost / S
        monthly({JAN: (NAN, 0), FEB: (0, 2), MAR: (0, 3), APR: (100 * 1 / 4, 4)}),
        split("segment", APR, {"smb": (100 * 1 / 2, 2), "enterprise": (0, 2), "consumer": (NAN, 0)}),
    ],
    # ---- subscriptions, running at each month's end (start):
    # 02-01: c1 10, c2 10, c3 30 | 03-01: c1 10, c3 30, c4 10 | 04-01: c1 30, c3 30, c4 10 |
    # 05-01: c1 30, c3 30, c4 10 (ends 05-05), c5 30.
    "mrr": [
        monthly({JAN: (10 + 10 + 30, 3), FEB: (10 + 30 + 10, 3), MAR: (30 + 30 + 10, 3), APR: (100, 4)}),
        split("segment", APR, {"smb": (30 + 30, 2), "enterprise": (30 + 10, 2)}),
    ],
    "net_revenue_retention": [
        monthly(
            {
                JAN: (100 * 10 / 10, 1),  # only c1 runs on 01-01
                FEB: (100 * (10 + 0 + 30) / (10 + 10 + 30), 3),
                MAR: (100 * (30 + 30 + 10) / (10 + 30 + 10), 3),  # c1's upgrade counts
                APR: (100 * (30 + 30 + 10) / (30 + 30 + 10), 3),  # c5 is new: not counted
            }
        ),
        split("segment", FEB, {"smb": 100 * (10 + 0) / (10 + 10), "enterprise": 100 * 30 / 30}),
    ],
    "gross_revenue_retention": [
        monthly(
            {
                JAN: 100 * 10 / 10,
                FEB: 100 * (10 + 0 + 30) / (10 + 10 + 30),
                MAR: 100 * (min(30, 10) + 30 + 10) / (10 + 30 + 10),  # no expansion
                APR: 100 * (30 + 30 + 10) / (30 + 30 + 10),
            }
        ),
        split("segment", FEB, {"smb": 100 * (10 + 0) / (10 + 10), "enterprise": 100 * 30 / 30}),
    ],
    "logo_churn": [
        monthly({JAN: (0, 1), FEB: (100 * 1 / 3, 3), MAR: (0, 3), APR: (0, 3)}),  # c2 in February
        split("segment", FEB, {"smb": (100 * 1 / 2, 2), "enterprise": (0, 1)}),
    ],
    # ---- service
    "tickets_opened": [
        monthly({FEB: 1, MAR: 5, APR: 2}),
        split("agent", MAR, {"a1": 3, "a2": 2}),  # T1 T3 T5 | T2 T4
    ],
    "complaints_per_1000_orders": [
        # Purchase orders placed (the guests' included, the return-only R1 and R2 not):
        # February O5 O6, March O7 O12, April O9 O8 O10 O14. Complaints: T7, T2.
        monthly({FEB: (1000 * 1 / 2, 2), MAR: (1000 * 1 / 2, 2), APR: (1000 * 0 / 4, 4)}),
        # A ticket category is measured against all the month's orders.
        split("category", MAR, {"billing": (0, 2), "delivery": (1000 * 1 / 2, 2)}),
    ],
    # Hours to the first response: T7 3 (Feb); T1 1, T2 2, T3 4, T4 8, T5 none (Mar); T8 1 (Apr).
    # Quantiles interpolate linearly: the p-quantile of x1 <= ... <= xn is at position (n - 1) p.
    "first_response_median": [
        monthly({FEB: (3, 1), MAR: ((2 + 4) / 2, 4), APR: (1, 1)}),
        split("priority", MAR, {"low": (1 + 4) / 2, "high": (2 + 8) / 2}),  # T1 T3 | T2 T4
    ],
    "first_response_p90": [
        monthly({FEB: 3, MAR: 4 + 0.7 * (8 - 4), APR: 1}),  # position 3 * 0.9 = 2.7
        split("priority", MAR, {"low": 1 + 0.9 * (4 - 1), "high": 2 + 0.9 * (8 - 2)}),
    ],
    # Hours to resolution: T7 30 (Feb); T1 12, T2 24, T3 48, T5 6 (Mar); T8 is resolved after as_of.
    "resolution_median": [
        monthly({FEB: 30, MAR: ((12 + 24) / 2, 4)}),
        split("agent", MAR, {"a1": 12, "a2": 24}),  # 6, 12, 48 | 24
    ],
    "resolution_p90": [
        monthly({FEB: 30, MAR: 24 + 0.7 * (48 - 24)}),
        split("agent", MAR, {"a1": 12 + 0.8 * (48 - 12), "a2": 24}),  # position 2 * 0.9 = 1.8
    ],
    "sla_met": [
        # Decided: resolved, or open longer than 24 h at as_of. March: T1 (12 h), T2 (24 h), T5 (6 h)
        # met; T3 (48 h) and T4 (open since 03-10) did not. April: T8 (open 48 h at as_of) did not;
        # T6 (open 12 h) is undecided.
        monthly({FEB: (0, 1), MAR: (100 * 3 / 5, 5), APR: (0, 1)}),
        split("channel", MAR, {"email": 100 * 2 / 3, "phone": 100 * 1 / 2}),  # T1 T3 T5 | T2 T4
    ],
    "reopen_rate": [
        monthly({FEB: (0, 1), MAR: (100 * 2 / 4, 4)}),  # T2, T5 of T1 T2 T3 T5; T8 not resolved yet
        split("agent", MAR, {"a1": 100 * 1 / 3, "a2": 100 * 1 / 1}),
    ],
    # ---- reviews (acme is ours; posts have no rating)
    "average_rating": [
        monthly({FEB: (2, 1), MAR: ((5 + 4 + 1) / 3, 3), APR: (5, 1)}),
        split("source", MAR, {"trustpilot": (5 + 4) / 2, "google": 1}),
    ],
    "review_volume": [
        monthly({FEB: 1, MAR: 4, APR: 1}),  # V8 | V1 V2 V3 V4 | V9
        split("source", MAR, {"trustpilot": 2, "google": 1, "x": 1}),
    ],
    "share_of_voice": [
        monthly({FEB: (100 * 1 / 1, 1), MAR: (100 * 4 / (4 + 3), 7), APR: (100 * 1 / (1 + 1), 2)}),
        split("brand", MAR, {"acme": (100 * 4 / 7, 7), "rival": (100 * 3 / 7, 7)}),
    ],
}

CASES = [pytest.param(k, c, id=f"{k}-{c.label}") for k, cases in HAND.items() for c in cases]


def test_every_kpi_has_a_hand_computed_test() -> None:
    registered = [k.id for k in kpis() if not k.custom]  # the built-in catalogue
    assert sorted(HAND) == sorted(registered), "each KPI needs a monthly and a breakdown case in HAND"
    assert all(len(cases) >= 2 for cases in HAND.values())


@pytest.mark.parametrize(("kpi_id", "case"), CASES)
def test_kpi_equals_the_hand_computed_value(shop: Source, kpi_id: str, case: Case) -> None:
    got = table(kpi(shop, kpi_id, **case.query), case.dims)

    assert set(got) == set(case.expected)
    for key, want in case.expected.items():
        value, n = want if isinstance(want, tuple) else (want, None)
        assert same(got[key][0], value), (key, got[key], want)
        if n is not None:
            assert got[key][1] == n, (key, got[key], want)


# ------------------------------------------------------------------ intervals on the same data


def row(frame: pd.DataFrame, period: dt.date, **dims: str) -> dict[str, Any]:
    mask = frame["period"] == period
    for d, v in dims.items():
        mask &= frame[d] == v
    (found,) = frame[mask].to_dict("records")
    return dict(found)


def test_intervals_are_the_documented_ones(shop: Source) -> None:
    nps = row(kpi(shop, "nps", start=START), FEB)
    p, d = (3 + 0.75) / (6 + 3), (2 + 0.75) / (6 + 3)  # adjusted Wald: 3 answers added
    half = Z * math.sqrt((p + d - (p - d) ** 2) / (6 + 3))
    assert (nps["ci_low"], nps["ci_high"]) == pytest.approx((100 * (p - d - half), 100 * (p - d + half)))

    csat = row(kpi(shop, "csat", start=START), FEB)
    centre, spread = (4 / 7 + Z**2 / 14) / (1 + Z**2 / 7), Z * math.sqrt(4 / 7 * 3 / 7 / 7 + Z**2 / 196)
    wilson = (100 * (centre - spread / (1 + Z**2 / 7)), 100 * (centre + spread / (1 + Z**2 / 7)))
    assert (csat["ci_low"], csat["ci_high"]) == pytest.approx(wilson)

    for kpi_id, scores in (("csat_mean", [v[0] for v in CSAT_FEB.values()]), ("ces", CES_FEB)):
        mean = row(kpi(shop, kpi_id, start=START), FEB)
        t = st.t.interval(0.95, len(scores) - 1, loc=np.mean(scores), scale=st.sem(scores))
        assert mean["value"] == pytest.approx(np.mean(scores))
        assert (mean["ci_low"], mean["ci_high"]) == pytest.approx(t)

    rate = row(kpi(shop, "complaints_per_1000_orders", start=START), MAR)
    garwood = (st.chi2.ppf(0.025, 2) / 2, st.chi2.ppf(0.975, 4) / 2)  # one complaint
    assert (rate["ci_low"], rate["ci_high"]) == pytest.approx((1000 * garwood[0] / 2, 1000 * garwood[1] / 2))

    churn = row(kpi(shop, "churn_rate", start=START), MAR)  # 0 of 3
    assert churn["ci_low"] == 0 and churn["ci_high"] == pytest.approx(100 * Z**2 / (3 + Z**2))

    for exact in ("revenue", "orders", "mrr", "share_of_voice", "revenue_per_customer"):
        frame = kpi(shop, exact, start=START)
        assert frame["ci_low"].isna().all() and frame["ci_high"].isna().all(), exact


@pytest.mark.parametrize(("kpi_id", "q"), [("first_response_median", 0.5), ("resolution_p90", 0.9)])
def test_quantile_interval_is_the_bootstrap_of_every_resample(shop: Source, kpi_id: str, q: float) -> None:
    """With 4 tickets there are 4^4 = 256 equally likely resamples: enumerate them all."""
    hours = {"first_response_median": [1, 2, 4, 8], "resolution_p90": [12, 24, 48, 6]}[kpi_id]
    m = math.ceil(q * len(hours))  # the order statistic the interval is about
    stats = sorted(sorted(r)[m - 1] for r in itertools.product(hours, repeat=len(hours)))
    low, high = stats[math.ceil(0.025 * 256) - 1], stats[math.ceil(0.975 * 256) - 1]

    got = row(kpi(shop, kpi_id, start=START), MAR)
    assert (got["ci_low"], got["ci_high"]) == (low, high)
    assert got["ci_low"] <= got["value"] <= got["ci_high"]


# ------------------------------------------------------------------ query semantics


def values(frame: pd.DataFrame, *dims: str) -> dict[tuple[Any, ...], float]:
    return {k: v for k, (v, _) in table(frame, dims).items()}


def approx(expected: dict[tuple[Any, ...], float]) -> Any:
    return pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_where_keeps_rows_with_the_given_dimension_values(shop: Source) -> None:
    smb = values(kpi(shop, "revenue", start=START, where={"segment": "smb"}))
    assert smb == approx({(JAN,): 20 + 30 + 40 + 25, (FEB,): 60, (APR,): 10 + 20})
    both = values(kpi(shop, "revenue", start=START, grain="all", where={"segment": ["smb", "enterprise"]}))
    assert both == approx({(JAN,): 115 + 60 + (100 + 200 + 80) + 30})
    books = values(kpi(shop, "net_revenue", start=START, grain="all", where={"category": "books"}))
    assert books == approx({(JAN,): 20 + 40 + 15 + 60 + 50 + 35 - 10 + 10 - 20 + 45})
    cohort = values(kpi(shop, "orders", start=START, grain="all", where={"cohort": "2024-01"}))
    assert cohort == approx({(JAN,): 3 + 1})  # c1 O1 O3 O6, c2 O2
    delivery = values(kpi(shop, "nps", start=START, where={"touchpoint": "delivery"}))
    assert delivery == approx({(FEB,): 100 * (3 - 0) / 4})  # 10, 9, 9, 8
    acquired = values(kpi(shop, "active_customers", start=START, where={"channel": "ads"}))
    assert acquired == approx({(JAN,): 1, (FEB,): 2, (MAR,): 2, (APR,): 3})  # c1, c3, c7
    # A ticket dimension filters the complaints; the orders stay all the month's orders.
    phone = values(kpi(shop, "complaints_per_1000_orders", start=START, where={"channel": "phone"}))
    assert phone == approx({(MAR,): 1000 * 1 / 2})
    delivery_tickets = kpi(shop, "complaints_per_1000_orders", start=START, where={"category": "delivery"})
    assert values(delivery_tickets) == approx({(FEB,): 1000 * 1 / 2, (MAR,): 1000 * 1 / 2, (APR,): 0})
    rival = values(kpi(shop, "average_rating", start=START, where={"brand": "rival"}))
    assert rival == approx({(MAR,): (3 + 5) / 2, (APR,): 4})


def test_start_is_inclusive_and_end_exclusive(shop: Source) -> None:
    # O9 is at 2024-04-01 00:00 exactly.
    march = values(kpi(shop, "revenue", start=dt.datetime(2024, 3, 1), end=dt.datetime(2024, 4, 1)))
    assert march == approx({(MAR,): 235})
    april = values(kpi(shop, "revenue", start=dt.datetime(2024, 4, 1), end=dt.datetime(2024, 4, 2)))
    assert april == approx({(APR,): 10})
    # A start inside a month cuts the month: January from the 15th has O3 and O4 only.
    assert values(kpi(shop, "revenue", start=dt.datetime(2024, 1, 15)))[(JAN,)] == 25 + 15
    # c5 bought at 04-01 00:00: active at the end of April, not at its start, and new in April.
    assert values(kpi(shop, "new_customers", start=dt.datetime(2024, 4, 1))) == approx({(APR,): 1})


def test_rows_after_as_of_are_ignored(shop: Source) -> None:
    later = dt.datetime(2024, 6, 1)
    assert values(kpi(shop, "revenue", start=dt.datetime(2024, 4, 1), as_of=later)) == approx(
        {
            (APR,): 155,
            (MAY,): 500,  # O13
        }
    )
    assert values(kpi(shop, "revenue", start=dt.datetime(2024, 4, 1))) == approx({(APR,): 155})
    assert MAY not in {k[0] for k in values(kpi(shop, "tickets_opened", start=START))}
    assert values(kpi(shop, "tickets_opened", start=START, as_of=later))[(MAY,)] == 1  # T9
    # T8 was resolved on 05-02 after 72 hours: unknown on 05-01, known on 06-01.
    assert (APR,) not in values(kpi(shop, "resolution_median", start=START))
    assert values(kpi(shop, "resolution_median", start=START, as_of=later))[(APR,)] == 72
    assert values(kpi(shop, "reopen_rate", start=START, as_of=later))[(APR,)] == 100
    assert values(kpi(shop, "sla_met", start=START, as_of=later))[(APR,)] == 0
    # I9 (sent 05-02) and R301 (05-02) do not exist yet on 05-01.
    assert MAY not in {k[0] for k in values(kpi(shop, "responses", start=START))}
    # as_of inside a month: February ends on the 15th. Active at 02-15 (window from 11-17): c1 c2 c3.
    mid = values(kpi(shop, "active_customers", start=START, as_of=dt.datetime(2024, 2, 15)))
    assert mid == approx({(JAN,): 2, (FEB,): 3})
    assert values(kpi(shop, "revenue", start=START, as_of=dt.datetime(2024, 2, 15))) == approx(
        {
            (JAN,): 130,
            (FEB,): 100 + 60,  # R1 (02-20) is not there yet
        }
    )
    assert values(kpi(shop, "net_revenue", start=START, as_of=dt.datetime(2024, 2, 15)))[(FEB,)] == 160


def test_a_sampled_value_on_fewer_than_30_observations_carries_a_warning(shop: Source) -> None:
    nps = kpi(shop, "nps", start=START)
    assert list(nps["warning"]) == [
        "only 6 observations (fewer than 30)",
        "only 5 observations (fewer than 30)",
    ]
    relaxed = kpi(shop, "nps", start=START, options=Options(min_n=6))
    assert list(relaxed["warning"]) == [None, "only 5 observations (fewer than 6)"]
    # Exact figures are not samples: no warning however small.
    assert kpi(shop, "orders", start=START)["warning"].isna().all()
    assert kpi(shop, "revenue_per_customer", start=START)["warning"].isna().all()


def test_change_gives_the_previous_value_and_the_documented_test(shop: Source) -> None:
    nps = kpi(shop, "nps", start=START, change=True)
    feb, mar = row(nps, FEB), row(nps, MAR)
    assert math.isnan(feb["previous"]) and feb["significant"] is None
    var = [1e4 * (3 / 5 + 1 / 5 - (2 / 5) ** 2) / 5, 1e4 * (3 / 6 + 2 / 6 - (1 / 6) ** 2) / 6]
    z = (40 - 100 / 6) / math.sqrt(sum(var))
    assert (mar["previous"], mar["change"]) == pytest.approx((100 / 6, 40 - 100 / 6))
    assert mar["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2))) and mar["significant"] is False

    orders = kpi(shop, "orders", start=START, change=True)  # 4 then 2: Binomial(6, 1/2) <= 2 or >= 4
    assert row(orders, FEB)["p_value"] == pytest.approx((1 + 6 + 15 + 15 + 6 + 1) / 64)
    assert math.isnan(row(orders, JAN)["previous"])  # December had no orders

    rate = row(kpi(shop, "response_rate", start=START, change=True), MAR)  # 2/3 against 4/5
    pooled = (2 + 4) / (3 + 5)
    z = (2 / 3 - 4 / 5) / math.sqrt(pooled * (1 - pooled) * (1 / 3 + 1 / 5))
    assert rate["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))

    aov = row(kpi(shop, "aov", start=START, change=True), MAR)  # orders (200, 35) against (100, 60)
    assert aov["p_value"] == pytest.approx(st.ttest_ind([200, 35], [100, 60], equal_var=False).pvalue)

    complaints = row(kpi(shop, "complaints_per_1000_orders", start=START, change=True), MAR)
    assert complaints["p_value"] == pytest.approx(st.binomtest(1, 1 + 1, 3 / (3 + 3)).pvalue)

    revenue = row(kpi(shop, "revenue", start=START, change=True), FEB)  # a total: no test
    assert (revenue["previous"], revenue["change"]) == (130, 30) and revenue["significant"] is None

    # The first period keeps its own extent when start cuts it.
    cut = kpi(shop, "revenue", start=dt.datetime(2024, 1, 15), change=True)
    assert row(cut, JAN)["value"] == 25 + 15 and row(cut, FEB)["previous"] == 25 + 15

    # grain "all": the range of the same length just before (61 days before 03-01: 12-31 to 03-01).
    whole = kpi(shop, "revenue", start=dt.datetime(2024, 3, 1), grain="all", change=True)
    assert values(whole) == approx({(MAR,): 235 + 155})
    assert whole["previous"].tolist() == [130 + 160]

    by_segment = kpi(shop, "churn_rate", start=START, by=["segment"], change=True)
    smb = row(by_segment, APR, segment="smb")  # 1 of 2 against 0 of 2
    z = (1 / 2 - 0 / 2) / math.sqrt(1 / 4 * 3 / 4 * (1 / 2 + 1 / 2))
    assert smb["previous"] == 0 and smb["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)))


def test_week_quarter_and_all_grains(shop: Source) -> None:
    # 2024-04-01 is a Monday: O9 | O8 (04-10) | O10 (04-15), O14 (04-20).
    weeks = values(kpi(shop, "revenue", start=dt.datetime(2024, 4, 1), grain="week"))
    assert weeks == approx({(APR,): 10, (dt.date(2024, 4, 8),): 80, (dt.date(2024, 4, 15),): 20 + 45})

    quarters = values(kpi(shop, "revenue", start=START, grain="quarter"))
    assert quarters == approx({(JAN,): 130 + 160 + 235, (APR,): 155})
    # Q1: nobody active on 01-01; on 04-01 c1 c2 c3 c4, all new. Q2 ends at as_of: as April.
    active = table(kpi(shop, "retention_rate", start=START, grain="quarter"))
    assert same(active[(JAN,)][0], NAN) and active[(APR,)] == (100 * (5 - 1) / 4, 4)
    assert values(kpi(shop, "new_customers", start=START, grain="quarter")) == approx({(JAN,): 4, (APR,): 1})

    whole = values(kpi(shop, "revenue", start=START, grain="all"))
    assert whole == approx({(JAN,): 130 + 160 + 235 + 155})
    # Without start the range begins at the first event: c7's order of 2023-09-15.
    assert values(kpi(shop, "revenue", grain="all")) == approx({(dt.date(2023, 9, 15),): 70 + 680})
    assert values(kpi(shop, "nps", grain="all")) == approx({(dt.date(2024, 2, 3),): 100 * (6 - 3) / 11})


def test_customer_states_before_the_range_and_the_active_window(shop: Source) -> None:
    # Without start, months begin with c7's purchase of 2023-09-15: active until 90 days later.
    lost = values(kpi(shop, "lost_customers", end=START))
    assert lost == approx({(dt.date(2023, m, 1),): v for m, v in ((9, 0), (10, 0), (11, 0), (12, 1))})
    # A 120-day window keeps c2 (01-10) active on 05-01: E - N = 6 - 1 > S = 4. The documented
    # formula then passes 100%; its Wilson interval is that of 100%.
    wide = row(kpi(shop, "retention_rate", start=START, options=Options(active_days=120)), APR)
    assert (wide["value"], wide["n"]) == (100 * (6 - 1) / 4, 4)
    assert wide["ci_high"] == 100


def test_a_store_and_a_source_over_it_give_the_same_answers(shop_store: Store, shop: Source) -> None:
    for kpi_id in ("nps", "net_revenue", "retention_rate", "first_response_p90"):
        by_store = kpi(shop_store, kpi_id, start=START, by=["segment"], change=True)
        pd.testing.assert_frame_equal(by_store, kpi(shop, kpi_id, start=START, by=["segment"], change=True))


@pytest.mark.parametrize("grain", ["month", "all"])
def test_a_filter_that_matches_nothing_gives_an_empty_table_with_the_change_columns(
    shop: Source, grain: str
) -> None:
    frame = kpi(shop, "nps", grain=grain, start=START, where={"segment": "nobody"}, change=True)

    assert frame.empty
    assert list(frame.columns)[-4:] == ["previous", "change", "p_value", "significant"]


def test_two_dimensions_on_the_same_customer_field_both_come_out(shop: Source) -> None:
    frame = kpi(shop, "active_customers", start=START, by=["channel", "acquisition_channel"])

    assert len(frame) > 0 and (frame["channel"] == frame["acquisition_channel"]).all()


COUNT_QUERIES = {
    "months": {"start": START},
    "weeks": {"start": START, "grain": "week"},
    "quarters by segment": {"start": START, "grain": "quarter", "by": ["segment"]},
    "months by cohort": {"start": START, "by": ["cohort"]},
    "where channel": {"start": START, "where": {"channel": ["ads", "referral"]}},
    "all": {"start": START, "grain": "all"},
    "from the first purchase": {"end": START},
    "120-day window": {"start": START, "options": Options(active_days=120)},
    "cut start": {"start": dt.datetime(2024, 2, 10)},
}


@pytest.mark.parametrize("label", list(COUNT_QUERIES))
def test_customer_counts_are_the_same_by_pivot_and_by_join(shop: Source, label: str) -> None:
    """The customer-state counts have two formulations (few periods: one row per customer with a
    flag per boundary; many: purchases joined with the periods); they must agree everywhere."""
    query = make_query(as_of=AS_OF, **COUNT_QUERIES[label])
    frames = []
    for method in ("pivot", "join"):
        ctx = Context(shop, query, FACTS["customers"])
        frame = to_pandas(customers_catalogue.counts(ctx, method=method))
        frame["period"] = pd.to_datetime(frame["period"])
        keys = ctx.keys
        frame = frame[[*keys, "S", "E", "N", "lost"]].astype({c: "int64" for c in ("S", "E", "N", "lost")})
        frames.append(frame.sort_values(keys, na_position="last").reset_index(drop=True))
    assert len(frames[0]) > 0
    pd.testing.assert_frame_equal(frames[0], frames[1], check_dtype=False)


@pytest.mark.parametrize(
    "query",
    [
        {"start": START, "change": True},
        {"start": dt.datetime(2024, 2, 10), "change": True, "by": ["segment"]},
        {"change": True, "grain": "quarter"},
        {"start": START, "grain": "all", "change": True},
    ],
    ids=["aligned start", "cut start by segment", "no start", "all"],
)
def test_kpis_computed_together_are_each_computed_alone(shop: Source, query: dict[str, Any]) -> None:
    """compute_queries stacks the KPIs of one query in one UNION ALL (and the previous period
    with them): each result is the KPI's own."""
    query = dict(query)
    change = query.pop("change", False)
    registry = kpis()
    batch = [k for k in registry if set(query.get("by", ())) <= set(k.dimensions)]
    q = make_query(as_of=AS_OF, **query)
    together = compute_queries(shop, batch, q, change=change)
    assert list(together) == [k.id for k in batch]
    for k in batch:
        pd.testing.assert_frame_equal(together[k.id], compute_query(shop, k, q, change=change), obj=k.id)
