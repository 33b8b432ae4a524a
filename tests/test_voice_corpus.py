"""The text corpus: every ticket, review, post and survey comment, once each, with where it came
from, who wrote it, when, about which brand and its score; empty texts left out; filters by kind,
time and brand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from conftest import rows, write
from cxloop import Store
from cxloop.demo_store import load_demo
from cxloop.errors import ConfigError
from cxloop.metrics.source import store_source
from cxloop.voice.corpus import KINDS, corpus_frame


@pytest.fixture
def texts_store(store: Store, load: Any, tmp_path: Path) -> Store:
    write(
        tmp_path / "tickets.csv",
        "ticket_id,customer_id,opened_at,subject,body\n"
        "T1,C1,2026-01-05 10:00,Late parcel,My order has not arrived.\n"
        "T2,C2,2026-02-01 09:00,Refund please,\n"
        'T3,C1,2026-02-02 09:00,"  ",\n',
    )
    write(
        tmp_path / "reviews.csv",
        "review_id,kind,rating,title,text,posted_at,brand,is_competitor,language,customer_id\n"
        "R1,review,5,Great,Fast delivery and friendly support.,2026-01-10,Northwind,false,en,C1\n"
        "R2,review,2,,Their parcels always arrive late.,2026-02-10,Contoso,true,,\n"
        "R3,post,,,@Northwind where is my order?,2026-03-01,Northwind,false,,\n"
        "R4,review,4,,,2026-03-02,Northwind,false,,C2\n",
    )
    write(
        tmp_path / "responses.csv",
        "response_id,kind,score,comment,responded_at,customer_id\n"
        "S1,nps,3,Too expensive for what it is.,2026-01-20,C1\n"
        "S2,csat,5,,2026-01-21,C2\n"
        "S3,csat,4,   ,2026-01-22,C2\n",
    )
    load(store, "tickets", tmp_path / "tickets.csv", source="desk")
    load(store, "reviews", tmp_path / "reviews.csv", source="web")
    load(store, "responses", tmp_path / "responses.csv", source="survey")
    return store


def frame(store: Store, **filters: Any) -> Any:
    with store_source(store) as source:
        return corpus_frame(source, **filters)


def test_every_text_once_with_its_kind_and_empty_texts_left_out(texts_store: Store) -> None:
    found = frame(texts_store).set_index("text_id")

    assert sorted(found.index) == [
        "post:web:R3", "review:web:R1", "review:web:R2", "survey:survey:S1:nps",
        "ticket:desk:T1", "ticket:desk:T2",
    ]  # fmt: skip
    assert found.index.is_unique
    assert found.loc["ticket:desk:T1", "text"] == "Late parcel\n\nMy order has not arrived."
    assert found.loc["ticket:desk:T2", "text"] == "Refund please"
    assert found.loc["review:web:R1", "text"] == "Great\n\nFast delivery and friendly support."
    assert dict(found["kind"]) == {
        "post:web:R3": "post", "review:web:R1": "review", "review:web:R2": "review",
        "survey:survey:S1:nps": "survey", "ticket:desk:T1": "ticket", "ticket:desk:T2": "ticket",
    }  # fmt: skip


def test_scores_scales_brands_and_customers_come_with_each_text(texts_store: Store) -> None:
    found = frame(texts_store).set_index("text_id")

    review = found.loc["review:web:R1"]
    assert (review["score"], review["scale_min"], review["scale_max"], review["score_kind"]) == (
        5,
        1,
        5,
        "rating",
    )
    assert (review["brand"], review["is_competitor"], review["language"], review["customer_id"]) == (
        "Northwind", False, "en", "C1",
    )  # fmt: skip
    survey = found.loc["survey:survey:S1:nps"]
    assert (survey["score"], survey["scale_min"], survey["scale_max"], survey["score_kind"]) == (
        3,
        0,
        10,
        "nps",
    )
    assert found.loc["review:web:R2", "is_competitor"]
    assert found.loc["ticket:desk:T1", "at"] == dt.datetime(2026, 1, 5, 10, 0)
    for no_score in ("post:web:R3", "ticket:desk:T1"):
        assert found.loc[no_score, ["score", "score_kind", "scale_min", "scale_max"]].isna().all()
    assert not found.loc["ticket:desk:T1", "is_competitor"]
    assert found["at"].is_monotonic_increasing  # ordered by time, then id


def test_filters_by_kind_time_and_brand(texts_store: Store) -> None:
    assert set(frame(texts_store, kinds=["review", "post"])["text_id"]) == {
        "review:web:R1", "review:web:R2", "post:web:R3",
    }  # fmt: skip
    assert set(frame(texts_store, kinds=["post"])["text_id"]) == {"post:web:R3"}
    january = frame(texts_store, start=dt.datetime(2026, 1, 1), end=dt.datetime(2026, 2, 1))
    assert set(january["text_id"]) == {"ticket:desk:T1", "review:web:R1", "survey:survey:S1:nps"}
    assert set(frame(texts_store, competitors=True)["text_id"]) == {"review:web:R2"}
    assert "review:web:R2" not in set(frame(texts_store, competitors=False)["text_id"])
    with pytest.raises(ConfigError, match="letter"):
        frame(texts_store, kinds=["letter"])


def test_on_the_demo_the_corpus_holds_every_non_empty_text_once(tmp_path: Path) -> None:
    with Store.open(str(tmp_path / "demo.duckdb")) as store:
        load_demo(store, customers=600, seed=3, as_of=dt.date(2026, 1, 1))
        found = frame(store)
        expected = {
            "ticket": "SELECT count(*) FROM tickets WHERE coalesce(trim(subject), '') <> '' "
            "OR coalesce(trim(body), '') <> ''",
            "review": "SELECT count(*) FROM reviews WHERE kind = 'review' AND "
            "(coalesce(trim(title), '') <> '' OR coalesce(trim(text), '') <> '')",
            "post": "SELECT count(*) FROM reviews WHERE kind = 'post' AND "
            "(coalesce(trim(title), '') <> '' OR coalesce(trim(text), '') <> '')",
            "survey": "SELECT count(*) FROM survey_responses WHERE coalesce(trim(comment), '') <> ''",
        }
        counts = found["kind"].value_counts()
        for kind, sql in expected.items():
            assert counts[kind] == rows(store, sql)[0][0] > 0, kind
    assert found["text_id"].is_unique and set(found["kind"]) == set(KINDS)
    assert (found["text"].str.strip() != "").all()
    competitors = found.loc[found["is_competitor"], "brand"]
    assert set(competitors) == {"Contoso", "Fabrikam"}
