"""Sentiment: scores in [-1, 1] with labels and languages, a model learned from the store's own
rated reviews (Portuguese too), languages no model reads said so, and a cache by content and
model so that only new texts are scored — on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import rows, write
from cxloop import Store
from cxloop.demo_store import load_demo
from cxloop.errors import ConfigError
from cxloop.voice import sentiment
from cxloop.voice.language import plain
from cxloop.voice.sentiment import (
    SentimentModel,
    corpus_sentiment,
    current_model,
    fit_model,
    score_texts,
    summary,
)
from test_cli import cxloop

FIXTURES = Path(__file__).parent / "fixtures" / "voice"
NOW = dt.datetime(2026, 6, 30, 12, 0)


def clock() -> dt.datetime:
    return NOW


def load_reviews(load: Any, store: Store) -> None:
    """The Olist sample (Portuguese, preset) and the Amazon Alexa sample (English)."""
    load(store, "reviews", FIXTURES / "olist_reviews.csv", preset="olist")
    load(store, "reviews", FIXTURES / "alexa_reviews.csv", source="amazon")


# --- scoring texts, no store -------------------------------------------------------------------


def test_plain_vader_scores_english_and_says_portuguese_is_not_supported() -> None:
    texts = [
        "I love my Echo, the sound is great!",
        "Terrible. It stopped working after two days and support never answered.",
        "O produto chegou quebrado e ninguém respondeu meus e-mails.",
    ]
    frame = score_texts(texts, workers=1)

    assert list(frame.columns) == ["language", "supported", "score", "label"]
    assert frame["language"].tolist() == ["en", "en", "pt"]
    assert frame["supported"].tolist() == [True, True, False]
    assert frame["label"].tolist()[:2] == ["positive", "negative"]
    assert frame.loc[0, "score"] > 0.5 and frame.loc[1, "score"] < -0.05
    assert math.isnan(frame.loc[2, "score"]) and frame.loc[2, "label"] is None


def test_empty_and_markup_only_texts_are_undetermined_and_html_is_read_as_its_text() -> None:
    frame = score_texts(["", "   ", "<p><br/></p>", "<b>Great</b> product, I &hearts; it!", None], workers=1)

    assert frame["language"].tolist()[:3] == [None, None, None] and frame["language"][4] is None
    assert not frame["supported"][[0, 1, 2, 4]].any()
    assert plain("<b>Great</b> product, I &hearts; it!") == "Great product, I ♥ it!"
    same = score_texts(["Great product, I ♥ it!"], workers=1)
    assert (
        frame.loc[3, "score"] == pytest.approx(same.loc[0, "score"]) and frame.loc[3, "label"] == "positive"
    )


def test_a_known_language_wins_over_detection_and_bad_arguments_are_named() -> None:
    frame = score_texts(["Bom", "Bom"], languages=["pt-BR", None], workers=1)

    assert frame["language"].tolist()[0] == "pt" and not frame["supported"][0]
    with pytest.raises(ConfigError, match="languages"):
        score_texts(["a", "b"], languages=["en"])
    with pytest.raises(ConfigError, match="workers"):
        score_texts(["a"], workers=0)


def test_a_pool_of_two_workers_gives_what_one_process_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    reviews = pd.read_csv(FIXTURES / "alexa_reviews.csv")["text"].tolist()[:120]
    one = score_texts(reviews, workers=1)
    monkeypatch.setattr(sentiment, "PARALLEL_MIN", 0)

    two = score_texts(reviews, workers=2)

    pd.testing.assert_frame_equal(one, two)


# --- the fitted model ---------------------------------------------------------------------------


def test_a_model_learned_from_rated_reviews_survives_the_store_and_scores_portuguese(
    store: Store, load: Any
) -> None:
    load_reviews(load, store)

    model = fit_model(store, clock=clock)

    validation = model.details["validation"]
    assert "pt" in model.classifiers and validation["pt"]["adopted"] is True  # 320 Portuguese texts
    # English has VADER to beat: the classifier is kept only if it did on held-out reviews.
    assert ("en" in model.classifiers) is (validation["en"]["macro_f1"] > validation["en"]["vader_macro_f1"])
    assert model.languages == ("en", "pt")
    kept = current_model(store)
    assert kept.name == model.name and kept.name.startswith("tfidf-lr-")
    assert fit_model(store, clock=clock).name == model.name  # same data, same model
    texts = ["Produto excelente, chegou antes do prazo!", "Não recebi o produto, péssimo atendimento."]
    scored = score_texts(texts, kept, workers=1)
    assert scored["supported"].all() and scored["label"].tolist() == ["positive", "negative"]
    assert (scored["score"].abs() <= 1).all()
    again = SentimentModel.from_bytes(model.to_bytes())
    pd.testing.assert_frame_equal(score_texts(texts, again, workers=1), scored)


# --- the corpus and its cache -------------------------------------------------------------------


def test_the_second_run_scores_no_text_and_a_new_review_is_the_only_one_scored(
    store: Store, load: Any, tmp_path: Path
) -> None:
    load_reviews(load, store)

    first = corpus_sentiment(store, clock=clock)
    second = corpus_sentiment(store, clock=clock)

    distinct = first["content_hash"].nunique()
    assert first.attrs["scored"] == distinct and first.attrs["cached"] == 0
    assert second.attrs == {"model": first.attrs["model"], "scored": 0, "cached": distinct}
    columns = ["text_id", "language", "supported", "sentiment_score", "sentiment_label"]
    pd.testing.assert_frame_equal(first[columns], second[columns])
    cached = rows(store, "SELECT count(*), min(scored_at) FROM text_sentiment")[0]
    assert cached == (distinct, NOW)
    write(
        tmp_path / "new.csv",
        "review_id,rating,posted_at,text\nnew-1,1,2026-06-01,It broke after a week. Waste of money.\n",
    )
    load(store, "reviews", tmp_path / "new.csv", source="amazon")
    third = corpus_sentiment(store, clock=clock)
    assert third.attrs["scored"] == 1
    assert third.set_index("text_id").loc["review:amazon:new-1", "sentiment_label"] == "negative"


def test_portuguese_reviews_are_scored_and_english_ones_too(store: Store, load: Any) -> None:
    load_reviews(load, store)

    frame = corpus_sentiment(store, clock=clock)

    olist = frame[frame["text_id"].str.startswith("review:olist:")]
    amazon = frame[frame["text_id"].str.startswith("review:amazon:")]
    assert len(olist) == 320  # the 20 reviews without a comment are not texts
    assert (olist["language"] == "pt").all() and olist["supported"].all()
    assert set(amazon["language"]) >= {"en"} and amazon["supported"].mean() > 0.98
    # What the customers' stars say, the scores say too.
    for part in (olist, amazon):
        low = part.loc[part["score"] <= 2, "sentiment_score"].mean()
        high = part.loc[part["score"] >= 4, "sentiment_score"].mean()
        assert low < 0 < high
    assert (frame["sentiment_score"].dropna().abs() <= 1).all()
    assert set(frame["sentiment_label"].dropna()) == {"negative", "neutral", "positive"}


def test_a_store_with_few_rated_reviews_uses_vader_and_says_which_texts_it_cannot_read(
    store: Store, load: Any, tmp_path: Path
) -> None:
    write(
        tmp_path / "few.csv",
        "review_id,rating,posted_at,text,language\n"
        "1,5,2026-01-02,Fantastic service and a great price,\n"
        "2,1,2026-01-03,<p>Awful. The parcel <b>never</b> arrived &amp; nobody answers.</p>,\n"
        "3,4,2026-01-04,Produto muito bom e entrega rápida,pt\n"
        "4,2,2026-01-05,El producto llegó roto y nadie responde a mis correos electrónicos,\n",
    )
    load(store, "reviews", tmp_path / "few.csv", source="shop")

    frame = corpus_sentiment(store, clock=clock).set_index("text_id")

    assert frame.attrs["model"].startswith("vader-")
    assert rows(store, "SELECT count(*) FROM sentiment_models") == [(0,)]  # nothing learned, nothing kept
    assert frame.loc["review:shop:1", "sentiment_label"] == "positive"
    assert frame.loc["review:shop:2", "sentiment_label"] == "negative"
    for text_id, language in (("review:shop:3", "pt"), ("review:shop:4", "es")):
        assert frame.loc[text_id, "language"] == language and not frame.loc[text_id, "supported"]
        assert (
            pd.isna(frame.loc[text_id, "sentiment_score"]) and frame.loc[text_id, "sentiment_label"] is None
        )
    table = summary(frame.reset_index())
    assert table.to_dict("records")[0] == pytest.approx(
        {"kind": "review", "source": "shop", "n": 4, "unsupported": 2, "positive_share": 0.5,
         "neutral_share": 0.0, "negative_share": 0.5, "mean_score": table["mean_score"][0]}
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("voice") / "demo.duckdb"
    with Store.open(str(path)) as opened:
        load_demo(opened, customers=5000, seed=7, as_of=dt.date(2026, 6, 30))
    return path


def test_on_the_demo_every_text_is_english_and_unhappy_customers_read_negative(demo_db: Path) -> None:
    with Store.open(str(demo_db)) as store:
        frame = corpus_sentiment(store, clock=clock)

    assert frame["supported"].all() and set(frame["language"]) == {"en"}
    reviews = frame[frame["kind"] == "review"]
    assert reviews.loc[reviews["score"] <= 2, "sentiment_score"].mean() < -0.3
    assert reviews.loc[reviews["score"] >= 4, "sentiment_score"].mean() > 0.3
    by_kind = summary(frame, by=["kind"]).set_index("kind")
    assert by_kind.loc["ticket", "negative_share"] > 0.5  # tickets are mostly problems


def test_cli_prints_the_summary_and_each_text_as_json(demo_db: Path, tmp_path: Path) -> None:
    shown = cxloop("--db", str(demo_db), "voice", "sentiment", "--kind", "review", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    table = json.loads(shown.stdout)
    assert {r["source"] for r in table} == {"google", "trustpilot"}
    assert set(table[0]) == {"kind", "source", "n", "unsupported", "positive_share", "neutral_share",
                             "negative_share", "mean_score"}  # fmt: skip
    assert np.isclose(sum(r[f"{k}_share"] for k in ("positive", "neutral", "negative")
                          for r in table[:1]), 1.0)  # fmt: skip

    texts = cxloop(
        "--db", str(demo_db), "voice", "sentiment", "--texts", "--kind", "post",
        "--from", "2026-01-01", "--end", "2026-04-01", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert texts.returncode == 0, texts.stderr
    posts = json.loads(texts.stdout)
    assert posts and {p["kind"] for p in posts} == {"post"}
    assert all("2026-01-01" <= p["at"] < "2026-04-01" for p in posts)
    assert {p["sentiment_label"] for p in posts} <= {"negative", "neutral", "positive"}

    bad = cxloop("--db", str(demo_db), "voice", "sentiment", "--kind", "letter", cwd=tmp_path)
    assert bad.returncode == 1 and "letter" in bad.stderr
