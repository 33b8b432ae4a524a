"""Cohorts and RFM, as specified in docs/metrics.md ("Cohorts", "RFM").

A tiny shop, every figure worked out by hand below, on DuckDB and PostgreSQL; then CDNOW against a
straightforward pandas computation of the same definitions.

The shop, as of 2024-04-15 00:00 (UTC):

    order  customer  ordered_at        lines (quantity, amount)
    o1     A         2024-01-05 10:00  (2, 100)
    o2     A         2024-02-10 10:00  (1, 50)
    o3     A         2024-04-02 00:00  (1, 30)
    o4     B         2024-01-20 09:00  (1, 200)
    o5     B         2024-01-25 00:00  (1, 20)
    o6     B         2024-03-03 12:00  (-1, -40)            a return only: not a purchase
    o7     C         2024-02-14 00:00  (1, 80)
    o8     C         2024-03-15 00:00  (1, 60), (-1, -20)   a purchase with a return in it
    o9     D         2024-02-28 00:00  (1, 10)              D is not in the customers table
    o10    E         2024-04-10 18:00  (1, 70)
    o11    (guest)   2024-02-01 00:00  (5, 500)             no customer: in no cohort, no RFM
    o12    A         2024-05-01 00:00  (1, 999)             after as_of: ignored
    o13    F         2024-04-20 00:00  (1, 15)              after as_of: F does not exist yet

Segments: A smb, B enterprise, C smb, E smb; D has none.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, need, write
from cxloop import Store
from cxloop.config import Settings
from cxloop.errors import ConfigError
from cxloop.metrics.cohorts import average_curve, cohort_matrix, cohorts
from cxloop.metrics.rfm import GRID, SEGMENTS, quintile_scores, rfm, rfm_segments, rfm_table
from cxloop.metrics.source import store_source

AS_OF = datetime(2024, 4, 15)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
CDNOW = SHARED_DATA / "cdnow" / "CDNOW_master.txt"

LINES = """order_id,line_no,customer_id,ordered_at,quantity,amount
o1,1,A,2024-01-05 10:00:00,2,100
o2,1,A,2024-02-10 10:00:00,1,50
o3,1,A,2024-04-02 00:00:00,1,30
o4,1,B,2024-01-20 09:00:00,1,200
o5,1,B,2024-01-25 00:00:00,1,20
o6,1,B,2024-03-03 12:00:00,-1,-40
o7,1,C,2024-02-14 00:00:00,1,80
o8,1,C,2024-03-15 00:00:00,1,60
o8,2,C,2024-03-15 00:00:00,-1,-20
o9,1,D,2024-02-28 00:00:00,1,10
o10,1,E,2024-04-10 18:00:00,1,70
o11,1,,2024-02-01 00:00:00,5,500
o12,1,A,2024-05-01 00:00:00,1,999
o13,1,F,2024-04-20 00:00:00,1,15
"""
CUSTOMERS = """customer_id,segment
A,smb
B,enterprise
C,smb
E,smb
"""

MATRIX = [
    "cohort",
    "age",
    "period",
    "cohort_size",
    "customers",
    "retention",
    "revenue",
    "revenue_retention",
    "complete",
]


@pytest.fixture
def shop(store: Store, load: Any, tmp_path: Path) -> Store:
    assert load(store, "customers", write(tmp_path / "customers.csv", CUSTOMERS)).rejected == 0
    assert load(store, "order-lines", write(tmp_path / "lines.csv", LINES)).rejected == 0
    return store


def cells(frame: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    """The rows of ``frame`` as tuples, floats rounded to 6 places (NaN stays NaN)."""
    out = []
    for row in frame[columns].itertuples(index=False):
        out.append(tuple(round(v, 6) if isinstance(v, float) else v for v in row))
    return out


def d(text: str) -> date:
    return date.fromisoformat(text)


# ------------------------------------------------------------------------------ cohorts


def test_monthly_cohort_matrix_every_cell(shop: Store) -> None:
    matrix = cohorts(shop, as_of=AS_OF)

    assert list(matrix.columns) == MATRIX
    # January: A and B (2). Feb: A 50. Mar: nobody bought, B returned 40. Apr (partial): A 30.
    # February: C and D (2). Mar: C 60 - 20. Apr: nobody.   April: E (1).
    # No one's first purchase is in March, so there is no March cohort; the guest's 500 is nowhere.
    assert cells(matrix, MATRIX) == [
        (d("2024-01-01"), 0, d("2024-01-01"), 2, 2, 100.0, 320.0, 100.0, True),
        (d("2024-01-01"), 1, d("2024-02-01"), 2, 1, 50.0, 50.0, 15.625, True),
        (d("2024-01-01"), 2, d("2024-03-01"), 2, 0, 0.0, -40.0, -12.5, True),
        (d("2024-01-01"), 3, d("2024-04-01"), 2, 1, 50.0, 30.0, 9.375, False),
        (d("2024-02-01"), 0, d("2024-02-01"), 2, 2, 100.0, 90.0, 100.0, True),
        (d("2024-02-01"), 1, d("2024-03-01"), 2, 1, 50.0, 40.0, 44.444444, True),
        (d("2024-02-01"), 2, d("2024-04-01"), 2, 0, 0.0, 0.0, 0.0, False),
        (d("2024-04-01"), 0, d("2024-04-01"), 1, 1, 100.0, 70.0, 100.0, False),
    ]


def test_average_curve_counts_only_cohorts_that_reached_the_age(shop: Store) -> None:
    curve = average_curve(cohorts(shop, as_of=AS_OF))

    # Age 1: January (1 of 2) and February (1 of 2); April has not reached May. Revenue: (50 + 40)
    # over the same cohorts' age-0 revenue (320 + 90). Age 3: January alone.
    assert cells(curve, ["age", "cohorts", "cohort_size", "retention", "revenue_retention"]) == [
        (0, 3, 5, 100.0, 100.0),
        (1, 2, 4, 50.0, round(100 * 90 / 410, 6)),
        (2, 2, 4, 0.0, round(100 * -40 / 410, 6)),
        (3, 1, 2, 50.0, 9.375),
    ]


def test_as_of_cuts_the_activity_and_a_period_boundary_makes_every_cell_complete(shop: Store) -> None:
    matrix = cohorts(shop, as_of=datetime(2024, 3, 1))

    # B's March return and everything later are not seen; February is the last period, and whole.
    assert cells(matrix, MATRIX) == [
        (d("2024-01-01"), 0, d("2024-01-01"), 2, 2, 100.0, 320.0, 100.0, True),
        (d("2024-01-01"), 1, d("2024-02-01"), 2, 1, 50.0, 50.0, 15.625, True),
        (d("2024-02-01"), 0, d("2024-02-01"), 2, 2, 100.0, 90.0, 100.0, True),
    ]


def test_start_and_end_choose_the_cohorts_not_the_activity(shop: Store) -> None:
    later = cohorts(shop, as_of=AS_OF, start=datetime(2024, 2, 10))  # the period holding Feb 10
    earlier = cohorts(shop, as_of=AS_OF, end=datetime(2024, 4, 1))

    assert sorted(set(later["cohort"])) == [d("2024-02-01"), d("2024-04-01")]
    assert sorted(set(earlier["cohort"])) == [d("2024-01-01"), d("2024-02-01")]
    # January is still followed into April.
    assert earlier["age"].max() == 3


def test_quarterly_cohorts(shop: Store) -> None:
    matrix = cohorts(shop, grain="quarter", as_of=AS_OF)

    # Q1: A, B, C, D; net 320 + 50 - 40 + 90 + 40 = 460. Q2 so far: A again (30); E is new.
    assert cells(matrix, MATRIX) == [
        (d("2024-01-01"), 0, d("2024-01-01"), 4, 4, 100.0, 460.0, 100.0, True),
        (d("2024-01-01"), 1, d("2024-04-01"), 4, 1, 25.0, 30.0, round(100 * 30 / 460, 6), False),
        (d("2024-04-01"), 0, d("2024-04-01"), 1, 1, 100.0, 70.0, 100.0, False),
    ]


def test_weekly_cohorts_start_on_monday(shop: Store) -> None:
    matrix = cohorts(shop, grain="week", as_of=AS_OF)

    # B: Saturday 2024-01-20 is in the week of Monday 01-15; Thursday 01-25 is one week later.
    b = matrix[matrix["cohort"] == d("2024-01-15")]
    assert cells(b[b["age"] <= 1], ["age", "period", "cohort_size", "customers", "revenue"]) == [
        (0, d("2024-01-15"), 1, 1, 200.0),
        (1, d("2024-01-22"), 1, 1, 20.0),
    ]
    # Every age up to the week holding as_of (Monday 04-15 is its own week: nothing before as_of
    # is in it), so the last row is the week of 04-08, 12 weeks on.
    assert b["age"].tolist() == list(range(13))
    assert b["period"].iloc[-1] == d("2024-04-08")
    # A's weekly cohort (week of 01-01) is back in the week of 02-05 (age 5).
    a = matrix[matrix["cohort"] == d("2024-01-01")].set_index("age")
    assert (a.loc[5, "customers"], a.loc[5, "revenue"]) == (1, 50.0)


def test_by_segment_splits_each_cohort(shop: Store) -> None:
    matrix = cohorts(shop, as_of=AS_OF, by=["segment"])
    columns = ["cohort", "segment", "age", "cohort_size", "customers", "revenue", "revenue_retention"]
    rows = {(r[0], r[1], r[2]): r[3:] for r in cells(matrix, columns)}

    assert rows[(d("2024-01-01"), "smb", 0)] == (1, 1, 100.0, 100.0)  # A
    assert rows[(d("2024-01-01"), "enterprise", 0)] == (1, 1, 220.0, 100.0)  # B
    assert rows[(d("2024-01-01"), "enterprise", 2)] == (1, 0, -40.0, round(100 * -40 / 220, 6))
    assert rows[(d("2024-02-01"), "smb", 1)] == (1, 1, 40.0, 50.0)  # C
    assert rows[(d("2024-02-01"), None, 0)] == (1, 1, 10.0, 100.0)  # D, not in the customers table
    assert len(matrix) == 4 + 4 + 3 + 3 + 1

    curve = average_curve(matrix)
    smb = curve[curve["segment"] == "smb"].set_index("age")
    # smb at age 1: A (January) and C (February) both came back: 2 of 2.
    assert (smb.loc[1, "cohorts"], smb.loc[1, "retention"]) == (2, 100.0)


def test_where_keeps_the_chosen_members(shop: Store) -> None:
    matrix = cohorts(shop, as_of=AS_OF, where={"segment": "enterprise"})

    assert cells(matrix, ["cohort", "age", "cohort_size", "customers", "revenue"]) == [
        (d("2024-01-01"), 0, 1, 1, 220.0),
        (d("2024-01-01"), 1, 1, 0, 0.0),
        (d("2024-01-01"), 2, 1, 0, -40.0),
        (d("2024-01-01"), 3, 1, 0, 0.0),
    ]


def test_cohort_matrix_takes_a_source_and_an_empty_store_gives_an_empty_table(
    shop: Store, tmp_path: Path
) -> None:
    with store_source(shop) as source:
        matrix = cohort_matrix(source, as_of=AS_OF)
    assert len(matrix) == 8

    with store_source(shop) as source:
        before = cohort_matrix(source, as_of=datetime(2024, 1, 1))
    assert before.empty and list(before.columns) == MATRIX
    assert average_curve(before).empty


def test_cohort_errors_name_the_problem(duck_store: Store) -> None:
    with pytest.raises(ConfigError, match="grain"):
        cohorts(duck_store, grain="all", as_of=AS_OF)
    with pytest.raises(ConfigError, match="cohort"):
        cohorts(duck_store, by=["cohort"], as_of=AS_OF)
    with pytest.raises(ConfigError, match="product"):
        cohorts(duck_store, by=["product"], as_of=AS_OF)


# ------------------------------------------------------------------------------ RFM

RFM = [
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "fm_score",
    "segment",
]


def test_rfm_table_every_score_and_segment(shop: Store) -> None:
    table = rfm(shop, as_of=AS_OF)

    # recency: whole days to 2024-04-15 00:00. A: Apr 2 -> 13. B: last *purchase* Jan 25 (the March
    # return is not one) -> 6 + 29 + 31 + 15 = 81. C: Mar 15 -> 31. D: Feb 28 -> 47 (leap year).
    # E: Apr 10 18:00 -> 4.25 days -> 4.
    # frequency: A 3, B 2 (o4, o5), C 2, D 1, E 1. monetary (net): A 180, B 200 + 20 - 40 = 180,
    # C 80 + 60 - 20 = 120, D 10, E 70.
    # n = 5, so score = 1 + (customers strictly worse):
    #   R: E 5 (4 worse), A 4, C 3, D 2, B 1.
    #   F: A 5 (4 worse); B and C tie at 2 -> both 3 (D, E worse); D and E tie at 1 -> both 1.
    #   M: A and B tie at 180 -> both 4 (C, D, E worse); C 3; E 2; D 1.
    # FM = ceil((F + M) / 2): A 4.5 -> 5, B 3.5 -> 4, C 3, D 1, E 1.5 -> 2.
    assert cells(table, RFM) == [
        ("A", 13, 3, 180.0, 4, 5, 4, 5, "Loyal"),
        ("B", 81, 2, 180.0, 1, 3, 4, 4, "At risk"),
        ("C", 31, 2, 120.0, 3, 3, 3, 3, "Need attention"),
        ("D", 47, 1, 10.0, 2, 1, 1, 1, "Lost"),
        ("E", 4, 1, 70.0, 5, 1, 2, 2, "Potential loyalists"),
    ]


def test_rfm_lookback_counts_only_the_window(shop: Store) -> None:
    table = rfm(shop, as_of=AS_OF, lookback_days=60)

    # Window [2024-02-15, 2024-04-15): A o3 (30), C o8 (60 - 20; o7 on Feb 14 is out), D o9, E o10.
    # B has only a return in it: not scored. n = 4: score = 1 + floor(5 * worse / 4).
    #   R: E (3 worse) 4, A (2) 3, C (1) 2, D 1.   F: all 1.   M: E 70 (3) 4, C 40 (2) 3, A 30 (1) 2, D 1.
    #   FM: A ceil(3/2) 2, C 2, D 1, E ceil(5/2) 3.
    assert cells(table, RFM) == [
        ("A", 13, 1, 30.0, 3, 1, 2, 2, "About to sleep"),
        ("C", 31, 1, 40.0, 2, 1, 3, 2, "Hibernating"),
        ("D", 47, 1, 10.0, 1, 1, 1, 1, "Lost"),
        ("E", 4, 1, 70.0, 4, 1, 4, 3, "Potential loyalists"),
    ]


def test_rfm_segments_sizes_and_revenue_in_the_documented_order(shop: Store) -> None:
    summary = rfm_segments(rfm(shop, as_of=AS_OF))

    assert summary["segment"].tolist() == list(SEGMENTS)
    rows = summary.set_index("segment")
    assert rows["customers"].tolist() == [0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1]
    # Net revenue of the scored customers: 180 + 180 + 120 + 10 + 70 = 560.
    assert rows.loc["Loyal", "revenue"] == 180.0
    assert rows.loc["Loyal", "revenue_share"] == pytest.approx(100 * 180 / 560)
    assert rows.loc["Lost", "share"] == 20.0
    assert list(rows.loc["At risk", ["avg_recency_days", "avg_frequency", "avg_monetary"]]) == [
        81.0,
        2.0,
        180.0,
    ]
    assert rows.loc["Champions", "customers"] == 0 and rows.loc["Champions", "revenue"] == 0.0
    assert math.isnan(rows.loc["Champions", "avg_monetary"])
    assert summary["share"].sum() == pytest.approx(100.0)


def test_rfm_table_takes_a_source_and_an_empty_store_gives_an_empty_table(duck_store: Store) -> None:
    with store_source(duck_store) as source:
        table = rfm_table(source, as_of=AS_OF)
    assert table.empty and list(table.columns) == RFM
    summary = rfm_segments(table)
    assert summary["customers"].sum() == 0 and summary["share"].isna().all()
    with pytest.raises(ConfigError, match="lookback_days"):
        rfm(duck_store, as_of=AS_OF, lookback_days=0)


def test_quintile_scores_keep_ties_together_and_ignore_order() -> None:
    # n = 7: score = 1 + floor(5 * worse / 7); worse = how many values are strictly lower.
    values = np.array([3.0, 1.0, 1.0, 7.0, 5.0, 5.0, 9.0])
    #   worse:           2    0    0    5    3    3    6
    assert quintile_scores(values).tolist() == [2, 1, 1, 4, 3, 3, 5]
    order = np.array([6, 0, 3, 2, 5, 1, 4])
    assert quintile_scores(values[order]).tolist() == [[2, 1, 1, 4, 3, 3, 5][i] for i in order]
    assert quintile_scores(np.array([4.0, 4.0, 4.0])).tolist() == [1, 1, 1]
    assert quintile_scores(np.arange(10.0)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_the_segment_grid_in_the_docs_is_the_one_in_the_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## RFM") : text.index("## Custom KPIs as code")]
    documented = {}
    for match in re.finditer(r"^\| \*\*(\d)\*\* \|(.*)\|$", section, re.M):
        documented[int(match[1])] = [cell.strip() for cell in match[2].split("|")]
    assert {r: GRID[r - 1] for r in range(1, 6)} == {r: tuple(v) for r, v in documented.items()}
    assert {s for row in GRID for s in row} == set(SEGMENTS)


# ------------------------------------------------------------------------------ CDNOW

CDNOW_AS_OF = datetime(1998, 6, 15)  # mid-month: the last period is partial


@pytest.fixture(scope="module")
def cdnow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    need(CDNOW.exists(), f"real data not found at {CDNOW}")
    directory = tmp_path_factory.mktemp("cdnow")
    url = str(directory / "store.duckdb")
    store = Store.open(url, settings=Settings(database_url=url, timezone="UTC"))
    from cxloop import ImportOptions, import_file

    result = import_file(store, "order-lines", CDNOW, ImportOptions(preset="cdnow", rejects_dir=directory))
    assert result.rejected == 0
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def cdnow_frame() -> pd.DataFrame:
    need(CDNOW.exists(), f"real data not found at {CDNOW}")
    frame = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str, "date": str})
    frame["ts"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame[frame["ts"] < CDNOW_AS_OF]


def test_cdnow_cohort_matrix_equals_pandas(cdnow_store: Store, cdnow_frame: pd.DataFrame) -> None:
    lines = cdnow_frame.copy()
    bought = lines[lines["number_of_cds"] > 0]
    first = bought.groupby("customer_id")["ts"].min().dt.to_period("M")
    lines["cohort"] = lines["customer_id"].map(first)
    lines["month"] = lines["ts"].dt.to_period("M")
    lines["age"] = (lines["month"] - lines["cohort"]).map(lambda offset: offset.n)
    active = lines[lines["number_of_cds"] > 0].groupby(["cohort", "age"])["customer_id"].nunique()
    revenue = lines.groupby(["cohort", "age"])["dollar_value"].sum()
    size = first.value_counts()
    last = pd.Period(CDNOW_AS_OF, "M")
    expected = []
    for cohort in sorted(size.index):
        for age in range((last - cohort).n + 1):
            r = revenue.get((cohort, age), 0.0)
            expected.append(
                {
                    "cohort": cohort.start_time.date(),
                    "age": age,
                    "cohort_size": size[cohort],
                    "customers": active.get((cohort, age), 0),
                    "retention": 100 * active.get((cohort, age), 0) / size[cohort],
                    "revenue": r,
                    "revenue_retention": 100 * r / revenue[(cohort, 0)],
                }
            )
    want = pd.DataFrame(expected)

    got = cohorts(cdnow_store, as_of=CDNOW_AS_OF)

    assert len(got) == len(want) == 3 * 18 - 3  # Jan-Mar 1997 cohorts, up to June 1998
    columns = ["cohort", "age", "cohort_size", "customers"]
    assert got[columns].astype(object).values.tolist() == want[columns].astype(object).values.tolist()
    for column in ("retention", "revenue", "revenue_retention"):
        np.testing.assert_allclose(got[column], want[column], rtol=1e-9)
    assert got["complete"].tolist() == [p < date(1998, 6, 1) for p in got["period"]]

    curve = average_curve(got)
    at = want.groupby("age")
    np.testing.assert_allclose(curve["retention"], 100 * at["customers"].sum() / at["cohort_size"].sum())
    assert curve["cohorts"].tolist() == [3] * 16 + [2, 1]


def _pandas_rfm(lines: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    bought = lines[lines["number_of_cds"] > 0].groupby("customer_id")
    table = pd.DataFrame(
        {
            "recency_days": (pd.Timestamp(as_of) - bought["ts"].max()).dt.days,
            "frequency": bought["date"].nunique(),  # a CDNOW order is one customer's day
            "monetary": lines.groupby("customer_id")["dollar_value"].sum().round(4),
        }
    ).dropna(subset=["recency_days"])
    n = len(table)
    for name, column, ascending in (
        ("r", "recency_days", False),
        ("f", "frequency", True),
        ("m", "monetary", True),
    ):
        values = table[column] if ascending else -table[column]
        table[f"{name}_score"] = 1 + (5 * (values.rank(method="min").astype(int) - 1)) // n
    table["fm_score"] = np.ceil((table["f_score"] + table["m_score"]) / 2).astype(int)

    def segment(r: int, fm: int) -> str:  # the table of cells in docs/metrics.md
        rules = [
            ("Champions", r == 5 and fm == 5),
            ("Loyal", (r == 5 and fm == 4) or (r in (3, 4) and fm in (4, 5))),
            ("Potential loyalists", r in (4, 5) and fm in (2, 3)),
            ("New", r == 5 and fm == 1),
            ("Promising", r == 4 and fm == 1),
            ("Need attention", r == 3 and fm == 3),
            ("About to sleep", r == 3 and fm in (1, 2)),
            ("At risk", (r == 2 and fm >= 3) or (r == 1 and fm in (3, 4))),
            ("Cannot lose them", r == 1 and fm == 5),
            ("Hibernating", r == 2 and fm == 2),
            ("Lost", (r == 2 and fm == 1) or (r == 1 and fm in (1, 2))),
        ]
        (name,) = [name for name, hit in rules if hit]
        return name

    table["segment"] = [segment(r, fm) for r, fm in zip(table["r_score"], table["fm_score"], strict=True)]
    return table.reset_index().sort_values("customer_id").reset_index(drop=True)


@pytest.mark.parametrize("lookback_days", [None, 365])
def test_cdnow_rfm_equals_pandas(
    cdnow_store: Store, cdnow_frame: pd.DataFrame, lookback_days: int | None
) -> None:
    lines = cdnow_frame
    if lookback_days:
        lines = lines[lines["ts"] >= CDNOW_AS_OF - pd.Timedelta(days=lookback_days)]
    want = _pandas_rfm(lines, CDNOW_AS_OF)

    got = rfm(cdnow_store, as_of=CDNOW_AS_OF, lookback_days=lookback_days)

    assert len(got) == len(want) > 1000
    exact = [
        "customer_id",
        "recency_days",
        "frequency",
        "r_score",
        "f_score",
        "m_score",
        "fm_score",
        "segment",
    ]
    assert got[exact].astype(object).values.tolist() == want[exact].astype(object).values.tolist()
    np.testing.assert_allclose(got["monetary"], want["monetary"], rtol=1e-12)

    summary = rfm_segments(got)
    counts = want["segment"].value_counts()
    assert summary["customers"].tolist() == [int(counts.get(s, 0)) for s in SEGMENTS]
    revenue = want.groupby("segment")["monetary"].sum()
    np.testing.assert_allclose(
        summary["revenue"], [revenue.get(s, 0.0) for s in SEGMENTS], rtol=1e-9, atol=1e-6
    )
