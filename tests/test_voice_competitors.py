"""Competitors beside our brand: share of voice and rating per brand and month, worked out by hand
on the shop of test_voice_sales (DuckDB and PostgreSQL), then on the demo.

Reviews and posts (tests/fixtures/sales/reviews.csv, as of 2024-04-01):

* February: acme reviews rated 5 and 4 and one acme post; a rival review rated 2, a rival post;
* March: an acme review rated 3; rival reviews rated 4 and 2, a rival post;
* April (after as of): an acme review.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats as st

from cxloop import ImportOptions, Store, import_file
from cxloop.demo_store import load_demo
from cxloop.errors import ConfigError
from cxloop.metrics import compute, store_source
from cxloop.metrics.source import Source
from cxloop.voice.competitors import brand_themes, compare_brands, overview, share_of_voice, themes_by_brand
from cxloop.voice.sentiment import SentimentModel, score_texts
from test_voice_sales import AS_OF, in_process, open_fixture_store
from test_voice_sales import shop_store as shop_store  # the shop on each engine, once per module
from test_voice_trends import keyword_themes

FEB, MAR = dt.date(2024, 2, 1), dt.date(2024, 3, 1)


@pytest.fixture(scope="module")
def shop(shop_store: Store) -> Iterator[Source]:
    with store_source(shop_store) as source:
        yield source


def cells(frame: pd.DataFrame, column: str) -> dict[tuple[dt.date, str], object]:
    return {(r.period, r.brand): getattr(r, column) for r in frame.itertuples()}


def test_share_of_voice_and_rating_per_month_by_hand(shop: Source) -> None:
    frame = share_of_voice(shop, as_of=AS_OF)

    assert list(zip(frame["period"], frame["brand"], strict=True)) == [
        (FEB, "acme"), (FEB, "rival"), (MAR, "acme"), (MAR, "rival")
    ]  # fmt: skip
    assert frame["is_competitor"].tolist() == [False, True, False, True]
    assert frame["mentions"].tolist() == [3, 2, 1, 3]  # April's review is after as of
    assert frame["share"].tolist() == pytest.approx([60.0, 40.0, 25.0, 75.0])
    assert frame["our_share"].tolist() == pytest.approx([60.0, 60.0, 25.0, 25.0])
    assert frame["rating"].tolist() == pytest.approx([4.5, 2.0, 3.0, 3.0])  # posts have no rating
    assert frame["ratings"].tolist() == [2, 1, 1, 2]
    # Rival in March: 4 and 2, mean 3, s = sqrt(2), n = 2: 3 ± t(0.975, 1)·sqrt(2)/sqrt(2).
    rival = frame.iloc[3]
    half = st.t.ppf(0.975, 1)
    assert (rival["rating_ci_low"], rival["rating_ci_high"]) == pytest.approx((3 - half, 3 + half))
    assert rival["rating_warning"] == "only 2 observations (fewer than 30)"


def test_figures_are_the_review_kpis_by_brand(shop: Source) -> None:
    frame = share_of_voice(shop, as_of=AS_OF, grain="quarter")
    kpi = compute(shop, "share_of_voice", by=["brand"], grain="quarter", as_of=AS_OF)
    rating = compute(shop, "average_rating", by=["brand"], grain="quarter", as_of=AS_OF)

    assert cells(frame, "share") == pytest.approx(cells(kpi.rename(columns={"value": "share"}), "share"))
    assert cells(frame, "rating") == pytest.approx(cells(rating.rename(columns={"value": "rating"}), "rating"))
    assert frame["mentions"].tolist() == [4, 5]  # Q1: acme 3 + 1, rival 2 + 3


def test_posts_only_and_a_brand_without_mentions(shop: Source) -> None:
    posts = share_of_voice(shop, as_of=AS_OF, kinds=["post"])

    # February: one post each; March: only the rival's, so acme has 0 mentions and 0%.
    assert cells(posts, "mentions") == {(FEB, "acme"): 1, (FEB, "rival"): 1, (MAR, "acme"): 0, (MAR, "rival"): 1}
    assert cells(posts, "share") == {(FEB, "acme"): 50.0, (FEB, "rival"): 50.0, (MAR, "acme"): 0.0, (MAR, "rival"): 100.0}
    assert posts["ratings"].tolist() == [0, 0, 0, 0]


def test_overview_is_the_last_period_with_its_changes(shop: Source) -> None:
    latest = overview(share_of_voice(shop, as_of=AS_OF))

    assert latest["brand"].tolist() == ["acme", "rival"]
    assert latest["share_change"].tolist() == pytest.approx([-35.0, 35.0])
    assert latest["rating_change"].tolist() == pytest.approx([-1.5, 1.0])


def test_sentiment_per_brand_beside_share_and_rating(shop_store: Store, shop: Source) -> None:
    frame = compare_brands(shop_store, shop, as_of=AS_OF)

    texts = pd.read_csv(Path(__file__).parent / "fixtures" / "sales" / "reviews.csv")
    texts = texts[pd.to_datetime(texts.posted_at) < AS_OF].reset_index(drop=True)
    # A handful of English texts: the store has no classifier of its own, so VADER reads them.
    scored = score_texts(texts.text.tolist(), SentimentModel())
    texts["period"] = pd.to_datetime(texts.posted_at).dt.to_period("M").dt.start_time.dt.date
    texts[["score", "label"]] = scored[["score", "label"]]
    for row in frame.itertuples():
        mine = texts[(texts.period == row.period) & (texts.brand == row.brand)]
        assert row.texts == row.sentiment_n == len(mine) == row.mentions
        assert row.sentiment == pytest.approx(mine.score.mean())
        assert row.negative_share == pytest.approx(100 * (mine.label == "negative").mean())
        assert row.positive_share == pytest.approx(100 * (mine.label == "positive").mean())
    assert frame["share"].tolist() == pytest.approx([60.0, 40.0, 25.0, 75.0])  # share_of_voice's own


def test_themes_side_by_side_per_brand_by_hand() -> None:
    texts = pd.DataFrame({
        "text_id": ["t1", "t2", "t3", "t4", "t5"],
        "brand": ["acme", "acme", "acme", "rival", "rival"],
        "is_competitor": [False, False, False, True, True],
        "sentiment_score": [0.5, -0.5, None, -0.8, 0.2],
    })  # fmt: skip
    assignments = pd.DataFrame({
        "text_id": ["t1", "t2", "t2", "t4", "t5", "t3"],
        "theme_id": [1, 1, 2, 1, 2, 3],
        "label": ["delivery", "delivery", "price", "delivery", "price", "billing"],
    })  # fmt: skip

    frame = themes_by_brand(texts, assignments)

    # Delivery: 3 of 5 texts, then price 2, billing 1; ours first within each theme.
    assert list(zip(frame["label"], frame["brand"], strict=True)) == [
        ("delivery", "acme"), ("delivery", "rival"), ("price", "acme"), ("price", "rival"),
        ("billing", "acme"), ("billing", "rival"),
    ]  # fmt: skip
    assert frame["texts"].tolist() == [2, 1, 1, 1, 1, 0]
    assert frame["brand_texts"].tolist() == [3, 2, 3, 2, 3, 2]
    assert frame["share"].tolist() == pytest.approx([200 / 3, 50, 100 / 3, 50, 100 / 3, 0])
    assert frame["share_vs_ours"].tolist() == pytest.approx([0, 50 - 200 / 3, 0, 50 - 100 / 3, 0, -100 / 3])
    assert frame["sentiment"].tolist()[:4] == pytest.approx([0.0, -0.8, -0.5, 0.2])
    assert frame["sentiment_n"].tolist() == [2, 1, 1, 1, 0, 0]  # t3 has no score
    with pytest.raises(ConfigError, match="assignments needs the column"):
        themes_by_brand(texts, assignments.drop(columns="label"))


def test_the_demo_competitors_weak_spots_show_beside_our_themes(voice_demo_file: Path) -> None:
    """The demo gives Contoso a billing problem (12% of its reviews not tied to an order) and
    Fabrikam a quality one (22%); Northwind's reviews come mostly from its orders' deliveries."""
    with Store.open(str(voice_demo_file)) as store, store_source(store) as source:
        frame = brand_themes(store, source, assign=keyword_themes, as_of=dt.datetime(2026, 1, 1))

    gap = frame.set_index(["theme_id", "brand"])["share_vs_ours"]
    assert gap["billing", "Contoso"] > 5 and gap["billing", "Contoso"] > gap["billing", "Fabrikam"]
    assert gap["quality", "Fabrikam"] > gap["quality", "Contoso"]
    assert gap["delivery", "Contoso"] < 0 and gap["delivery", "Fabrikam"] < 0
    ours = frame[frame["brand"] == "Northwind"]
    assert (ours["share_vs_ours"] == 0).all() and ours["sentiment_n"].sum() > 0


def test_the_curated_themes_per_brand_in_the_api_and_the_cli(voice_demo_file: Path, tmp_path: Path) -> None:
    """Themes discovered on the reviews and posts of every brand, then each brand's share of
    texts per theme (the store's taxonomy tags them; nothing is fitted again)."""
    from cxloop.voice import themes

    db = tmp_path / "demo.duckdb"
    shutil.copy(voice_demo_file, db)  # discovery writes a taxonomy: not into the shared file
    assert "no themes yet" in in_process(db, "competitors", "--themes", "--as-of", "2026-01-01").output
    with Store.open(str(db)) as store, store_source(store) as source:
        taxonomy = themes.discover(store, source, kinds=["review", "post"], end=dt.datetime(2026, 1, 1))
        frame = brand_themes(store, source, as_of=dt.datetime(2026, 1, 1))
        tagged = themes.text_themes(store, source, kinds=["review", "post"], end=dt.datetime(2026, 1, 1))

    assert set(frame["theme_id"]) <= {t.theme_id for t in taxonomy.themes}
    assert frame.groupby("theme_id")["brand"].apply(list).map(len).eq(3).all()  # every brand, every theme
    assert frame["texts"].sum() == len(tagged)  # one theme per tagged text, each counted once
    shown = json.loads(in_process(db, "competitors", "--themes", "--as-of", "2026-01-01", "--json").stdout)
    assert [(r["theme_id"], r["brand"], r["texts"]) for r in shown] == list(
        zip(frame["theme_id"], frame["brand"], frame["texts"], strict=True)
    )
    table = in_process(db, "competitors", "--themes", "--as-of", "2026-01-01")
    assert table.exit_code == 0 and "Themes per brand" in table.stdout and "Fabrikam" in table.stdout


def test_bad_options(shop: Source) -> None:
    with pytest.raises(ConfigError, match="unknown kind 'tweet'; choose from review, post"):
        share_of_voice(shop, as_of=AS_OF, kinds=["tweet"])
    with pytest.raises(ConfigError, match="unknown grain 'fortnight'"):
        share_of_voice(shop, as_of=AS_OF, grain="fortnight")


def test_demo_has_northwind_beside_its_two_competitors(tmp_path: Path) -> None:
    with Store.open(str(tmp_path / "demo.duckdb")) as store:
        load_demo(store, customers=300, seed=5, as_of=dt.date(2026, 1, 1))
        with store_source(store) as source:
            frame = share_of_voice(source, as_of=dt.datetime(2026, 1, 1), grain="quarter")

    assert set(frame["brand"]) == {"Northwind", "Contoso", "Fabrikam"}
    assert frame.groupby("period")["share"].sum().to_numpy() == pytest.approx(100.0)
    ours = frame[frame["brand"] == "Northwind"]
    assert (ours["share"] == ours["our_share"]).all() and not ours["is_competitor"].any()


def test_cli_json_and_a_hostile_brand_shown_as_text(tmp_path: Path) -> None:
    store = open_fixture_store(tmp_path)
    hostile = tmp_path / "hostile.csv"
    hostile.write_text(
        "review_id,kind,rating,text,posted_at,brand,is_competitor\n"
        'h1,review,1,x,2024-03-20 10:00:00,"[bold red]<b>Evil</b>[/]",true\n'
    )
    import_file(store, "reviews", hostile, ImportOptions(rejects_dir=tmp_path / "rejects", source="x"))
    store.close()
    db = tmp_path / "store.duckdb"

    rows = json.loads(in_process(db, "competitors", "--as-of", "2024-04-01", "--json").stdout)
    shown = in_process(db, "competitors", "--as-of", "2024-04-01")

    assert [r["mentions"] for r in rows if r["period"] == "2024-03-01"] == [1, 1, 3]
    assert {r["brand"] for r in rows} == {"acme", "rival", "[bold red]<b>Evil</b>[/]"}
    assert shown.exit_code == 0, shown.output
    assert "[bold red]<b>Evil</b>[/]" in shown.stdout  # as text, not as Rich markup
    assert "Share of voice (%) by month" in shown.stdout and "Latest month: 2024-03-01" in shown.stdout
