"""Key drivers (cxloop.voice.drivers; docs/voice.md, "Key drivers"): each metric's gap and interval
against hand arithmetic, Newcombe's published values and scipy; the detractor share and the
priority; per segment; and too little data said plainly."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from cxloop.cli.output import to_jsonable
from cxloop.errors import ConfigError
from cxloop.metrics.frames import records
from cxloop.store.store import Store
from cxloop.voice.drivers import answers, key_drivers, store_key_drivers
from cxloop.voice.trends import NotEnoughTexts
from test_cli import cxloop
from test_voice_trends import keyword_themes

AS_OF = dt.datetime(2025, 7, 1)
Z = st.norm.ppf(0.975)
SCALES = {"nps": (0, 10), "csat": (1, 5), "rating": (1, 5), "ces": (1, 7)}


class Corpus:
    """Scored texts and their themes, built answer by answer."""

    def __init__(self) -> None:
        self.texts: list[dict[str, Any]] = []
        self.tags: list[dict[str, Any]] = []

    def add(self, kind: str, scores: list[float], *themes: str, customer: str | None = None) -> Corpus:
        for score in scores:
            text_id = f"t{len(self.texts)}"
            low, high = SCALES[kind]
            self.texts.append(
                {
                    "text_id": text_id,
                    "at": AS_OF - dt.timedelta(days=1 + len(self.texts) % 30),
                    "customer_id": customer,
                    "score": score,
                    "scale_min": low,
                    "scale_max": high,
                    "score_kind": kind,
                }
            )
            self.tags += [{"text_id": text_id, "theme_id": t, "label": t.title()} for t in themes]
        return self

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return pd.DataFrame(self.texts), pd.DataFrame(self.tags, columns=["text_id", "theme_id", "label"])


def row(report: Any, metric: str, theme: str, segment: str = "all") -> pd.Series:
    d = report.drivers
    found = d[(d["metric"] == metric) & (d["theme_id"] == theme) & (d["segment"] == segment)]
    assert len(found) == 1
    return found.iloc[0]


# ------------------------------------------------------------------ the metrics, answer by answer


def test_each_answer_is_coded_so_that_its_mean_is_the_metric() -> None:
    texts, _ = (
        Corpus()
        .add("nps", [10, 9, 8, 7, 6, 0])
        .add("csat", [5, 4, 3, 2, 1])
        .add("rating", [5, 1])
        .add("ces", [7])  # not a driver metric
        .frames()
    )

    coded = answers(texts)

    assert list(coded["metric"]) == ["nps"] * 6 + ["csat"] * 5 + ["rating"] * 2
    assert list(coded["value"]) == [100, 100, 0, 0, -100, -100, 100, 100, 0, 0, 0, 5, 1]
    assert list(coded["detractor"]) == [False] * 4 + [True] * 2 + [False] * 3 + [True] * 2 + [False, True]


# ------------------------------------------------------------------ NPS


def nps_corpus() -> Corpus:
    # with "delivery": 2 promoters, 1 passive, 7 detractors of 10 -> NPS -50
    # without: 10 promoters, 6 passives, 4 detractors of 20 -> NPS +30
    return (
        Corpus()
        .add("nps", [0, 1, 2, 3, 4, 5, 6, 7, 9, 10], "delivery")
        .add("nps", [10] * 10 + [8] * 6 + [3] * 4)
    )


def test_nps_gap_and_interval_by_hand() -> None:
    report = key_drivers(*nps_corpus().frames(), as_of=AS_OF)

    r = row(report, "nps", "delivery")
    assert (r["n_with"], r["n_without"]) == (10, 20)
    assert r["with_value"] == pytest.approx(-50)
    assert r["without_value"] == pytest.approx(30)
    assert r["gap"] == pytest.approx(-80)
    # Var(NPS) = 100² (p + d − (p − d)²) / n for each group; the groups are independent
    var_with = 100**2 * (0.2 + 0.7 - (0.2 - 0.7) ** 2) / 10
    var_without = 100**2 * (0.5 + 0.2 - (0.5 - 0.2) ** 2) / 20
    half = Z * math.sqrt(var_with + var_without)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-80 - half, -80 + half))
    assert r["significant"]
    assert (r["detractors_with"], r["detractors"]) == (7, 11)
    assert r["detractor_share"] == pytest.approx(100 * 7 / 11)
    # priority: detractor share × the gap's bound nearest zero, as a share of NPS's 200 points
    assert r["priority"] == pytest.approx(100 * (7 / 11) * (80 - half) / 200)
    assert r["rank"] == 1 and pd.isna(r["note"])


def test_a_theme_that_goes_with_higher_scores_has_no_priority() -> None:
    corpus = Corpus().add("nps", [10] * 12, "praise").add("nps", [0] * 10 + [10] * 10)

    r = row(key_drivers(*corpus.frames(), as_of=AS_OF), "nps", "praise")

    assert r["gap"] > 0 and r["significant"]
    assert r["priority"] == 0


# ------------------------------------------------------------------ CSAT


@pytest.mark.parametrize(
    ("k1", "n1", "k0", "n0", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17, 873-890, Table II, method 10
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
    ],
)
def test_csat_gap_interval_is_newcombes_hybrid_score(
    k1: int, n1: int, k0: int, n0: int, low: float, high: float
) -> None:
    corpus = Corpus().add("csat", [5] * k1 + [1] * (n1 - k1), "theme").add("csat", [4] * k0 + [2] * (n0 - k0))

    r = row(key_drivers(*corpus.frames(), as_of=AS_OF), "csat", "theme")

    assert r["gap"] == pytest.approx(100 * (k1 / n1 - k0 / n0))
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((100 * low, 100 * high), abs=0.05)
    assert (r["detractors_with"], r["detractors"]) == (n1 - k1, n1 - k1 + n0 - k0)


# ------------------------------------------------------------------ ratings


def test_rating_gap_interval_is_welchs() -> None:
    rng = np.random.default_rng(5)
    with_ = rng.integers(1, 4, 25).astype(float)
    without = rng.integers(2, 6, 60).astype(float)
    corpus = Corpus().add("rating", list(with_), "delivery").add("rating", list(without))

    r = row(key_drivers(*corpus.frames(), as_of=AS_OF), "rating", "delivery")

    welch = st.ttest_ind(with_, without, equal_var=False).confidence_interval(0.95)
    assert r["gap"] == pytest.approx(with_.mean() - without.mean())
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((welch.low, welch.high), rel=1e-9)
    assert r["detractors_with"] == int((with_ <= 2).sum())


# ------------------------------------------------------------------ ranking and segments


def test_fix_first_ranks_by_detractor_share_times_the_conservative_gap() -> None:
    corpus = (
        Corpus()
        .add("rating", [1] * 30, "delivery")  # many detractors, a large gap
        .add("rating", [2] * 10 + [3] * 10, "price")  # fewer detractors, a smaller gap
        .add("rating", [5] * 40 + [4] * 20)
    )

    report = key_drivers(*corpus.frames(), as_of=AS_OF)

    assert list(report.fix_first["theme_id"]) == ["delivery", "price"]
    assert list(report.fix_first["order"]) == [1, 2]
    delivery, price = row(report, "rating", "delivery"), row(report, "rating", "price")
    assert delivery["detractor_share"] == pytest.approx(75.0)  # 30 of the 40 ratings of 1-2
    assert price["detractor_share"] == pytest.approx(25.0)
    assert delivery["priority"] == pytest.approx(100 * 0.75 * -delivery["ci_high"] / 4)


def test_per_segment_and_overall() -> None:
    corpus = (
        Corpus()
        .add("nps", [0] * 12, "delivery", customer="b1")
        .add("nps", [10] * 12, customer="b2")
        .add("nps", [10] * 12, "delivery", customer="c1")
        .add("nps", [0] * 6 + [10] * 6, customer="c2")
        .add("nps", [5] * 3, "delivery")  # no customer: segment unknown
    )
    customers = pd.DataFrame(
        {"customer_id": ["b1", "b2", "c1", "c2"], "segment": ["business"] * 2 + ["consumer"] * 2}
    )
    texts, tags = corpus.frames()

    report = key_drivers(texts, tags, as_of=AS_OF, customers=customers, by_segment=True)

    assert list(dict.fromkeys(report.drivers["segment"])) == ["all", "business", "consumer", "unknown"]
    business = row(report, "nps", "delivery", "business")
    assert (business["with_value"], business["without_value"], business["gap"]) == (-100, 100, -200)
    assert row(report, "nps", "delivery", "consumer")["gap"] == pytest.approx(100)
    assert row(report, "nps", "delivery", "all")["n_with"] == 27
    unknown = row(report, "nps", "delivery", "unknown")
    assert pd.isna(unknown["gap"]) and "only 3 answers with the theme and 0 without" in unknown["note"]
    assert list(report.fix_first["segment"]) == ["all", "business"]  # all first, then each segment

    only = key_drivers(texts, tags, as_of=AS_OF, customers=customers, segment="consumer")
    assert set(only.drivers["segment"]) == {"consumer"}
    assert row(only, "nps", "delivery", "consumer")["n_with"] == 12
    with pytest.raises(ConfigError, match="segment 'retail' is not one of business, consumer"):
        key_drivers(texts, tags, as_of=AS_OF, customers=customers, segment="retail")
    with pytest.raises(ConfigError, match="segments need the customers frame"):
        key_drivers(texts, tags, as_of=AS_OF, by_segment=True)


# ------------------------------------------------------------------ too little data


def test_too_few_answers_give_a_note_not_a_number() -> None:
    corpus = nps_corpus().add("nps", [0, 0, 0], "billing")

    report = key_drivers(*corpus.frames(), as_of=AS_OF)

    billing = row(report, "nps", "billing")
    assert pd.isna(billing["gap"]) and pd.isna(billing["ci_low"]) and pd.isna(billing["rank"])
    assert billing["note"] == "only 3 answers with the theme and 30 without (fewer than 10)"
    assert billing["priority"] == 0
    assert report.notes == ("1 row(s) have fewer than 10 answers with or without the theme: no gap shown",)
    assert "billing" not in set(report.fix_first["theme_id"])


def test_empty_inputs_are_said_plainly() -> None:
    texts, tags = nps_corpus().frames()

    with pytest.raises(
        NotEnoughTexts, match="no survey comment or review with an NPS, CSAT or star rating before 2025-05-01"
    ):
        key_drivers(texts, tags, as_of=dt.date(2025, 5, 1))
    with pytest.raises(
        NotEnoughTexts, match="none of the 30 scored texts before 2025-07-01 is tagged with a theme"
    ):
        key_drivers(texts, tags.iloc[0:0], as_of=AS_OF)
    no_scores = texts.assign(score=None)
    with pytest.raises(NotEnoughTexts, match="no survey comment or review"):
        key_drivers(no_scores, tags, as_of=AS_OF)
    with pytest.raises(ConfigError, match="texts: missing column"):
        key_drivers(texts.drop(columns="score_kind"), tags, as_of=AS_OF)


def test_nothing_to_fix_is_a_note() -> None:
    corpus = Corpus().add("rating", [4, 5] * 10, "praise").add("rating", [4, 5] * 10)

    report = key_drivers(*corpus.frames(), as_of=AS_OF)

    assert report.fix_first.empty
    assert report.notes == ("no theme goes with a significantly lower score: nothing to fix first",)


# ------------------------------------------------------------------ the demo, from the store


@pytest.fixture(scope="module")
def demo_store(voice_demo_file: Path) -> Iterator[Store]:
    with Store.open(str(voice_demo_file)) as store:
        yield store


def test_the_demo_delivery_problems_drive_ratings_down_overall_and_per_segment(demo_store: Store) -> None:
    """The demo's unhappy customers write about deliveries: the theme costs stars, accounts for
    most low ratings and tops the list; each segment gets its own rows."""
    report = store_key_drivers(
        demo_store, assign=keyword_themes, as_of=dt.datetime(2026, 1, 1), by_segment=True
    )

    delivery = row(report, "rating", "delivery")
    assert delivery["significant"] and delivery["ci_high"] < -1
    assert delivery["detractor_share"] > 40
    top = report.fix_first[report.fix_first["segment"] == "all"].iloc[0]
    assert (top["theme_id"], top["order"]) == ("delivery", 1)
    assert set(report.drivers["segment"]) == {"all", "consumer", "small_business", "enterprise", "unknown"}
    assert set(report.drivers["metric"]) == {"nps", "csat", "rating"}
    only = store_key_drivers(
        demo_store, assign=keyword_themes, as_of=dt.datetime(2026, 1, 1), segment="consumer"
    )
    assert set(only.drivers["segment"]) == {"consumer"}


def test_drivers_over_the_discovered_themes_of_the_demo(voice_demo_themes_file: Path) -> None:
    """With the store's own curated themes (the default): every fix-first row is a theme whose
    score is significantly lower, ranked by priority, and each segment is there."""
    with Store.open(str(voice_demo_themes_file)) as store:
        report = store_key_drivers(store, as_of=dt.datetime(2026, 1, 1), by_segment=True)

    fix = report.fix_first
    assert not fix.empty
    assert (fix["ci_high"] < 0).all() and fix["significant"].all()
    for _, group in fix.groupby("segment"):
        assert list(group["priority"]) == sorted(group["priority"], reverse=True)
    assert {"all", "consumer", "small_business", "enterprise"} <= set(report.drivers["segment"])
    ranked = report.drivers[report.drivers["rank"].notna()]
    assert ranked[["gap", "ci_low", "ci_high"]].notna().all().all()  # a rank always has its numbers


# ------------------------------------------------------------------ cxloop voice drivers


def test_cli_drivers(voice_demo_themes_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    shutil.copyfile(voice_demo_themes_file, db)
    as_of = dt.datetime(2026, 1, 1)
    with Store.open(str(db)) as store:
        expected = store_key_drivers(store, as_of=as_of, by_segment=True)

    answer = cxloop(
        "--db", str(db), "voice", "drivers", "--as-of", "2026-01-01", "--by-segment", "--json", cwd=tmp_path
    )
    shown = cxloop(
        "--db", str(db), "voice", "drivers", "--as-of", "2026-01-01", "--segment", "consumer", cwd=tmp_path
    )
    unknown = cxloop("--db", str(db), "voice", "drivers", "--segment", "retail", cwd=tmp_path)
    both = cxloop("--db", str(db), "voice", "drivers", "--segment", "consumer", "--by-segment", cwd=tmp_path)

    assert answer.returncode == 0, answer.stderr
    data = json.loads(answer.stdout)
    assert data["drivers"] == json.loads(json.dumps(to_jsonable(records(expected.drivers))))
    assert data["fix_first"] == json.loads(json.dumps(to_jsonable(records(expected.fix_first))))
    assert data["notes"] == list(expected.notes)
    assert shown.returncode == 0, shown.stderr
    assert "Fix these first (as of 2026-01-01)" in shown.stdout and "consumer" in shown.stdout
    assert unknown.returncode == 1
    assert "segment 'retail' is not one of consumer, enterprise, small_business" in unknown.stderr
    assert both.returncode == 2 and "not both" in both.stderr
