"""The value models' per-customer summary (docs/value.md, "The summary"), worked out by hand on a
tiny shop, on DuckDB and PostgreSQL, and the same from a pandas frame; then CLV and the at-risk
list on it with fixed parameters.

The shop, calibration to 2024-03-31 (inclusive), holdout to 2024-04-30:

    customer  day         lines (quantity, amount)
    A         2024-01-01  o1 (1, 100); o2 (1, 20)     two orders on one day: one purchase day
    A         2024-01-11  o3 (1, 50) at 23:30
    A         2024-02-10  o4 (1, 30)
    A         2024-04-05  o5 (1, 40)                  holdout
    B         2024-01-20  o6 (1, 200)
    B         2024-03-01  o7 (-1, -40)                a return only: not a purchase day
    B         2024-03-10  o8 (1, 60)
    C         2024-02-14  o9 (1, 80), (-1, -80)       bought and returned on one day
    D         2024-03-01  o10 (1, 10); o11 (1, 5)     everything on one day
    E         2024-02-01  o12 (1, 50)
    E         2024-02-15  o13 (1, 0)                  free repeat purchases
    E         2024-03-01  o14 (1, 0)
    F         2024-01-05  o15 (1, 30)
    F         2024-02-05  o16 (1, 10)
    F         2024-03-05  o17 (-2, -50)               returns more than the repeat purchase
    G         2024-04-10  o18 (1, 25)                 first purchase in the holdout: not summarised
    (guest)   2024-01-15  o19 (1, 99)                 no customer

    customer  x  t_x  T   repeat spend / x      total   holdout
    A         2  40   90  (50+30)/2 = 40        200     1
    B         1  50   71  (-40+60)/1 = 20       220     0
    C         0  0    46  0                     0       0
    D         0  0    30  0                     15      0
    E         2  29   59  0                     50      0
    F         1  31   86  (10-50)/1 = -40       -10     0
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import write
from cxloop import Store
from cxloop.errors import ConfigError
from cxloop.metrics.source import store_source
from cxloop.value.at_risk import AtRiskOptions, at_risk, reason
from cxloop.value.bgnbd import BetaGeo
from cxloop.value.clv import ClvOptions, clv_by_segment, customer_values
from cxloop.value.gammagamma import GammaGamma
from cxloop.value.models import ValueModels
from cxloop.value.summary import rfm_summary, summary_from_transactions

CAL_END = dt.date(2024, 3, 31)
HOLDOUT_END = dt.date(2024, 4, 30)

LINES = """order_id,line_no,customer_id,ordered_at,quantity,amount
o1,1,A,2024-01-01 09:00:00,1,100
o2,1,A,2024-01-01 17:00:00,1,20
o3,1,A,2024-01-11 23:30:00,1,50
o4,1,A,2024-02-10 10:00:00,1,30
o5,1,A,2024-04-05 10:00:00,1,40
o6,1,B,2024-01-20 00:00:00,1,200
o7,1,B,2024-03-01 12:00:00,-1,-40
o8,1,B,2024-03-10 08:00:00,1,60
o9,1,C,2024-02-14 10:00:00,1,80
o9,2,C,2024-02-14 10:00:00,-1,-80
o10,1,D,2024-03-01 10:00:00,1,10
o11,1,D,2024-03-01 11:00:00,1,5
o12,1,E,2024-02-01 00:00:00,1,50
o13,1,E,2024-02-15 00:00:00,1,0
o14,1,E,2024-03-01 00:00:00,1,0
o15,1,F,2024-01-05 00:00:00,1,30
o16,1,F,2024-02-05 00:00:00,1,10
o17,1,F,2024-03-05 00:00:00,-2,-50
o18,1,G,2024-04-10 00:00:00,1,25
o19,1,,2024-01-15 00:00:00,1,99
"""
CUSTOMERS = """customer_id,segment
A,smb
B,enterprise
C,smb
"""
EXPECTED = [
    # customer, x, t_x, T, monetary_value, total_spend, first, last, holdout
    ("A", 2, 40, 90, 40.0, 200.0, "2024-01-01", "2024-02-10", 1),
    ("B", 1, 50, 71, 20.0, 220.0, "2024-01-20", "2024-03-10", 0),
    ("C", 0, 0, 46, 0.0, 0.0, "2024-02-14", "2024-02-14", 0),
    ("D", 0, 0, 30, 0.0, 15.0, "2024-03-01", "2024-03-01", 0),
    ("E", 2, 29, 59, 0.0, 50.0, "2024-02-01", "2024-03-01", 0),
    ("F", 1, 31, 86, -40.0, -10.0, "2024-01-05", "2024-02-05", 0),
]


@pytest.fixture
def shop(store: Store, load: Any, tmp_path: Path) -> Store:
    assert load(store, "customers", write(tmp_path / "customers.csv", CUSTOMERS)).rejected == 0
    assert load(store, "order-lines", write(tmp_path / "lines.csv", LINES)).rejected == 0
    return store


def table(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [
        (
            row.customer_id,
            int(row.frequency),
            round(float(row.recency), 6),
            round(float(row.T), 6),
            float(row.monetary_value),
            float(row.total_spend),
            str(row.first_purchase),
            str(row.last_purchase),
            int(row.holdout_frequency),
        )
        for row in frame.itertuples(index=False)
    ]


def test_summary_from_the_store_by_hand(shop: Store) -> None:
    with store_source(shop) as source:
        summary = rfm_summary(
            source, calibration_end=CAL_END, holdout_end=HOLDOUT_END, unit="days", with_segment=True
        )
    assert table(summary.frame) == EXPECTED
    assert list(summary.frame["segment"]) == ["smb", "enterprise", "smb", None, None, None]


def test_summary_in_weeks_divides_days_by_seven(shop: Store) -> None:
    with store_source(shop) as source:
        weeks = rfm_summary(source, calibration_end=CAL_END, unit="weeks").frame
    assert list(weeks["recency"]) == pytest.approx([40 / 7, 50 / 7, 0, 0, 29 / 7, 31 / 7])
    assert list(weeks["T"]) == pytest.approx([90 / 7, 71 / 7, 46 / 7, 30 / 7, 59 / 7, 86 / 7])
    assert "holdout_frequency" not in weeks


def test_summary_without_holdout_ignores_later_purchases(shop: Store) -> None:
    with store_source(shop) as source:
        early = rfm_summary(source, calibration_end=dt.date(2024, 1, 31), unit="days").frame
    # A: 01-01 and 01-11; B: 01-20; F: 01-05. Nothing after January counts.
    assert [(r.customer_id, r.frequency, r.recency, r.T) for r in early.itertuples()] == [
        ("A", 1, 10.0, 30.0),
        ("B", 0, 0.0, 11.0),
        ("F", 0, 0.0, 26.0),
    ]


def test_summary_from_a_pandas_frame_is_the_same() -> None:
    lines = pd.read_csv(pd.io.common.StringIO(LINES), dtype={"customer_id": str})
    summary = summary_from_transactions(
        lines[lines["customer_id"].notna()],
        calibration_end=CAL_END,
        holdout_end=HOLDOUT_END,
        unit="days",
        date="ordered_at",
        quantity="quantity",
    )
    assert table(summary.frame) == EXPECTED


def test_summary_refuses_bad_periods() -> None:
    frame = pd.DataFrame({"customer_id": ["A"], "date": ["2024-01-01"], "amount": [1.0]})
    with pytest.raises(ConfigError, match="must come after the calibration end"):
        summary_from_transactions(frame, calibration_end=CAL_END, holdout_end=CAL_END)
    with pytest.raises(ConfigError, match="unknown time unit"):
        summary_from_transactions(frame, calibration_end=CAL_END, unit="months")
    with pytest.raises(ConfigError, match="no column 'amount'"):
        summary_from_transactions(frame.drop(columns="amount"), calibration_end=CAL_END)


MODELS = ValueModels(BetaGeo(0.25, 20.0, 0.8, 2.5), GammaGamma(6.0, 4.0, 15.0), "days")


def test_clv_is_the_discounted_sum_of_monthly_purchases_times_spend(shop: Store) -> None:
    with store_source(shop) as source:
        summary = rfm_summary(source, calibration_end=CAL_END, unit="days", with_segment=True)
    options = ClvOptions(months=3, discount_rate=0.02, margin=0.5)
    values = customer_values(summary, MODELS, options).set_index("customer_id")

    month = 365.25 / 12
    for cid, row in values.iterrows():
        args = ([row.frequency], [row.recency], [row["T"]])
        cumulative = [MODELS.purchases.expected_purchases(k * month, *args)[0] for k in range(4)]
        expected = sum((cumulative[k] - cumulative[k - 1]) / 1.02**k for k in (1, 2, 3))
        spend = MODELS.spend.expected_spend([row.frequency], [row.monetary_value])[0]
        assert row.clv == pytest.approx(0.5 * spend * expected), cid
        assert row.expected_purchases == pytest.approx(cumulative[3])
    assert np.isfinite(values[["p_alive", "expected_purchases", "expected_spend", "clv"]].to_numpy()).all()
    # E spent nothing on repeat purchases and F returned more than they bought: both count as 0.
    assert values.loc["E", "expected_spend"] == pytest.approx(MODELS.spend.expected_spend([2], [0.0])[0])
    assert values.loc["F", "expected_spend"] == pytest.approx(MODELS.spend.expected_spend([1], [0.0])[0])

    segments = clv_by_segment(customer_values(summary, MODELS, options))
    assert set(segments["segment"]) == {"smb", "enterprise", "(none)"}
    assert segments["customers"].sum() == 6
    assert segments["clv_total"].sum() == pytest.approx(values["clv"].sum())


def test_clv_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="margin"):
        ClvOptions(margin=0).check()
    with pytest.raises(ConfigError, match="discount rate"):
        ClvOptions(discount_rate=1.5).check()


def test_at_risk_lists_valuable_customers_unlikely_to_be_alive(shop: Store) -> None:
    with store_source(shop) as source:
        summary = rfm_summary(source, calibration_end=CAL_END, unit="days")
    values = customer_values(summary, MODELS)
    alive = dict(zip(values["customer_id"], values["p_alive"], strict=True))
    # Top half by past value: B 220, A 200, E 50 (the 50th percentile, included); P(alive) < 0.9.
    options = AtRiskOptions(max_p_alive=0.9, top_share=0.5, currency="$")
    rows = at_risk(values, days_per_unit=summary.days_per_unit, options=options)
    expected = [c for c in ("B", "A", "E") if alive[c] < 0.9]
    assert list(rows["customer_id"]) == expected
    assert expected, "the fixture should put someone at risk"
    first = rows.iloc[0]
    gap = first["usual_gap_days"]
    assert first["reason"] == reason(
        float(first["total_spend"]),
        int(first["purchases"]),
        int(first["days_since_last"]),
        gap,
        first["p_alive"],
        "$",
    )
    b = rows.set_index("customer_id").loc["B"] if "B" in expected else None
    if b is not None:
        assert b["days_since_last"] == 21 and b["purchases"] == 2 and b["usual_gap_days"] == 50
        assert b["reason"].startswith(
            "spent $220.00 in 2 purchases; last bought 21 days ago, usually every 50;"
        )
    # An absolute threshold instead of a share; nobody is at risk when P(alive) must be tiny.
    assert list(
        at_risk(values, days_per_unit=1, options=AtRiskOptions(max_p_alive=0.9, min_spend=210))["customer_id"]
    ) == [c for c in ("B",) if alive[c] < 0.9]
    assert at_risk(values, days_per_unit=1, options=AtRiskOptions(max_p_alive=1e-9)).empty


def test_reason_reads_like_a_sentence() -> None:
    assert reason(1240.0, 9, 212, 30.2, 0.18, "$") == (
        "spent $1,240.00 in 9 purchases; last bought 212 days ago, usually every 30; P(alive) 0.18"
    )
    assert (
        reason(15.0, 1, 3, None, 1e-4)
        == "spent 15.00 in 1 purchase; last bought 3 days ago; P(alive) below 0.01"
    )
