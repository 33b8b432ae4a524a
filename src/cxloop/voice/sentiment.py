"""Sentiment of what customers write: a score in [-1, 1], a label, and the language it was read in.

The API (what themes, trends, drivers and competitors call):

* :func:`score_texts` ``(texts, model=None, *, languages=None, workers=None) -> DataFrame``:
  pure, no store. One row per text, in order: ``language`` (ISO 639-1, None when undetermined),
  ``supported`` (whether the model reads that language), ``score`` (in [-1, 1]; NaN when not
  supported) and ``label`` (``negative | neutral | positive``; None when not supported).
  ``languages`` optionally gives each text's known language (it wins over detection). Large
  batches are scored by a process pool of ``workers`` processes (default: the cores available).
* :func:`corpus_sentiment` ``(store, source=None, *, kinds, start, end, competitors, model=None)
  -> DataFrame``: the rows of :func:`cxloop.voice.corpus.corpus` (whose ``score`` is the
  customer's own rating) plus ``content_hash``, ``supported``, ``sentiment_score`` and
  ``sentiment_label``, with ``language`` the language the text was read in.
  Scores come from the store's cache (``text_sentiment``) and only texts never scored by the
  model are scored (and added to it); ``frame.attrs`` says ``model``, ``scored`` (new texts) and
  ``cached``.
* :func:`summary` ``(frame, by=("kind", "source"))``: n, shares positive/neutral/negative,
  mean score, unsupported count per group.
* :func:`current_model` / :func:`fit_model`: the store's model, and fitting a new one.

Which model: the store's most recently fitted one (:func:`fit_model`: per-language classifiers
trained on its own rated reviews, kept in ``sentiment_models``); the first time a store is
scored with none kept, one is fitted if there are enough rated reviews (200 distinct texts in a
language). English without a classifier is read by VADER; another language without one is
unsupported: ``supported`` false, no score rather than a wrong one. So Olist's Portuguese reviews
are scored by a Portuguese classifier learned from their own star ratings, and a Spanish review
in an English store says it is not supported. ``SentimentModel()`` is plain VADER.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Final

import numpy as np
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.metrics.source import Source, store_source, to_pandas
from cxloop.store.store import Store
from cxloop.voice import sentiment_cache
from cxloop.voice.corpus import KINDS, corpus, corpus_frame
from cxloop.voice.language import LanguageDetector, normalise_code, plain
from cxloop.voice.sentiment_model import (
    FloatArray,
    SentimentModel,
    TrainingOptions,
    label_of_score,
    train,
    vader_features,
    vader_labels,
)

__all__ = [
    "SentimentModel",
    "TrainingOptions",
    "corpus_sentiment",
    "current_model",
    "fit_model",
    "score_texts",
    "summary",
]

#: Below this many texts scoring stays in the calling process (a pool costs ~1 s to start).
PARALLEL_MIN: Final = 20_000
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Scorer:
    """A model ready to score: its language detector and, for English, VADER."""

    def __init__(self, model: SentimentModel) -> None:
        self.model = model
        self.detector = LanguageDetector(model.languages)

    def score(
        self, texts: Sequence[str | None], hints: Sequence[str | None] | None = None
    ) -> tuple[list[str | None], FloatArray, list[str | None]]:
        """Languages, scores (NaN: unsupported) and labels (None: unsupported) of ``texts``."""
        plains = [plain(t) if isinstance(t, str) else "" for t in texts]
        hinted = hints if hints is not None else itertools.repeat(None)
        languages: list[str | None] = [
            (normalise_code(h) or self.detector.detect(p)) if p else None
            for p, h in zip(plains, hinted, strict=False)
        ]
        scores = np.full(len(plains), np.nan)
        labels: list[str | None] = [None] * len(plains)
        groups: dict[str, list[int]] = {}
        for i, lang in enumerate(languages):
            if lang is not None:
                groups.setdefault(lang, []).append(i)
        for lang, rows in groups.items():
            group = [plains[i] for i in rows]
            classifier = self.model.classifiers.get(lang)
            vader = vader_features(group) if lang == "en" else None
            if classifier is not None:
                values, names = classifier.predict(group, vader)
            elif vader is not None:
                values = vader[:, 0]
                names = vader_labels(values)
            else:
                continue
            scores[rows] = values
            for i, name in zip(rows, names, strict=True):
                labels[i] = name
        return languages, scores, labels


_WORKER: Scorer | None = None


def _start_worker(model: bytes) -> None:
    global _WORKER
    _WORKER = Scorer(SentimentModel.from_bytes(model))


def _score_chunk(
    chunk: tuple[Sequence[str | None], Sequence[str | None] | None],
) -> tuple[list[str | None], FloatArray, list[str | None]]:
    assert _WORKER is not None
    return _WORKER.score(*chunk)


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def score_texts(
    texts: Sequence[str | None],
    model: SentimentModel | None = None,
    *,
    languages: Sequence[str | None] | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Sentiment of each text, in order (see the module docstring). ``model``: plain VADER when
    None. Empty texts, and texts with HTML only, are undetermined and unsupported."""
    model = model if model is not None else SentimentModel()
    if languages is not None and len(languages) != len(texts):
        raise ConfigError(f"languages: {len(languages)} given for {len(texts)} texts")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers}")
    if workers == 1 or len(texts) < PARALLEL_MIN:
        langs, scores, labels = Scorer(model).score(texts, languages)
    else:
        langs, scores, labels = _in_pool(texts, languages, model, workers)
    return pd.DataFrame(
        {
            "language": pd.Series(langs, dtype=object),
            "supported": ~np.isnan(scores),
            "score": scores,
            "label": pd.Series(labels, dtype=object),
        }
    )


def _in_pool(
    texts: Sequence[str | None],
    languages: Sequence[str | None] | None,
    model: SentimentModel,
    workers: int,
) -> tuple[list[str | None], FloatArray, list[str | None]]:
    # Several chunks per worker keep both busy to the end; spawned (not forked) workers, as the
    # parent may hold database connections and threads.
    size = max(1_000, min(20_000, len(texts) // (workers * 8) + 1))
    chunks = [
        (texts[i : i + size], None if languages is None else languages[i : i + size])
        for i in range(0, len(texts), size)
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(model.to_bytes(),)
    ) as pool:
        parts = list(pool.map(_score_chunk, chunks))
    langs = [lang for part in parts for lang in part[0]]
    labels = [label for part in parts for label in part[2]]
    return langs, np.concatenate([part[1] for part in parts]), labels


def content_hash(text: str) -> str:
    """The cache key of a text: SHA-256 of its UTF-8 bytes, hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def corpus_sentiment(
    store: Store,
    source: Source | None = None,
    *,
    kinds: Iterable[str] = KINDS,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    competitors: bool | None = None,
    model: SentimentModel | None = None,
    workers: int | None = None,
    clock: Clock = utc_now,
) -> pd.DataFrame:
    """The corpus (filtered as :func:`cxloop.voice.corpus.corpus`) with each text's sentiment,
    scoring only texts the cache does not hold for ``model`` (default: :func:`current_model`).

    ``source`` is where the texts are read (default: the store itself); the cache is always the
    store's. ``clock`` stamps new cache rows.
    """
    if source is None:
        with store_source(store) as own:
            return corpus_sentiment(
                store, own, kinds=kinds, start=start, end=end, competitors=competitors,
                model=model, workers=workers, clock=clock,
            )  # fmt: skip
    model = model if model is not None else current_model(store, source, clock=clock)
    frame = corpus_frame(source, kinds=kinds, start=start, end=end, competitors=competitors)
    frame["content_hash"] = [content_hash(t) for t in frame["text"]]
    first = frame.drop_duplicates("content_hash")
    cached = sentiment_cache.lookup(store, model.name, first["content_hash"].tolist())
    new = first[~first["content_hash"].isin(cached["content_hash"])]
    hints = new["language"].astype(object).where(new["language"].notna(), None).tolist()
    scored = score_texts(new["text"].tolist(), model, languages=hints, workers=workers)
    scored.insert(0, "content_hash", new["content_hash"].to_numpy())
    sentiment_cache.insert(store, model.name, scored, clock())
    found = pd.concat([cached, scored], ignore_index=True) if len(cached) else scored
    found = found.rename(columns={"score": "sentiment_score", "label": "sentiment_label"})
    out = frame.drop(columns="language").merge(found, on="content_hash", how="left", validate="many_to_one")
    out.attrs = {"model": model.name, "scored": len(new), "cached": len(cached)}
    return out


def current_model(store: Store, source: Source | None = None, *, clock: Clock = utc_now) -> SentimentModel:
    """The store's most recently fitted model; with none kept, one fitted now if the store has
    enough rated reviews (and kept); else plain VADER."""
    kept = sentiment_cache.latest_model(store)
    if kept is not None:
        return kept
    fitted = fit_model(store, source, clock=clock, keep_empty=False)
    return fitted


def training_texts(source: Source) -> pd.DataFrame:
    """Texts that carry their author's own verdict: rated reviews (1-5 stars) and survey
    comments with an NPS or CSAT score, as ``text``, ``label`` (see
    :func:`~cxloop.voice.sentiment_model.label_of_score`) and ``language`` (as exported)."""
    table = corpus(source, kinds=["review", "survey"])
    table = table.filter(table.score_kind.isin(["rating", "nps", "csat"]), table.score.notnull())
    columns = ["text", "score", "score_kind", "scale_min", "scale_max", "language"]
    frame = to_pandas(table.select(*columns).order_by(columns[:3]))
    labels = [
        label_of_score(float(score), str(kind), float(low), float(high))
        for score, kind, low, high in zip(
            frame["score"], frame["score_kind"], frame["scale_min"], frame["scale_max"], strict=True
        )
    ]
    return pd.DataFrame(
        {
            "text": frame["text"].astype(object),
            "label": pd.Series(labels, dtype=object),
            "language": frame["language"].astype(object).where(frame["language"].notna(), None),
        }
    ).dropna(subset=["label"])


def fit_model(
    store: Store,
    source: Source | None = None,
    *,
    options: TrainingOptions | None = None,
    clock: Clock = utc_now,
    keep_empty: bool = True,
) -> SentimentModel:
    """Fit classifiers on the store's rated reviews, one per language with enough of them, and
    keep the model in ``sentiment_models`` (it becomes the current one). With too few rated
    reviews in every language the model is plain VADER (kept only if ``keep_empty``)."""
    if source is None:
        with store_source(store) as own:
            return fit_model(store, own, options=options, clock=clock, keep_empty=keep_empty)
    options = options or TrainingOptions()
    rated = training_texts(source)
    plains = [plain(t) for t in rated["text"]]
    detected = training_languages(plains, rated["language"].tolist(), options)
    model = train(plains, rated["label"].tolist(), detected, options)
    if model.classifiers or keep_empty:
        sentiment_cache.save_model(store, model, clock())
    return model


def training_languages(
    plains: Sequence[str], hints: Sequence[str | None], options: TrainingOptions
) -> list[str | None]:
    """Each training text's language: as exported, else detected, preferring the languages that
    have enough texts to learn from (as the scorer prefers the model's languages)."""
    first = LanguageDetector()
    guessed = [
        normalise_code(h) or (first.detect(p) if p else None) for p, h in zip(plains, hints, strict=True)
    ]
    counts = pd.Series([g for g in guessed if g is not None], dtype=object).value_counts()
    learnable = [str(lang) for lang, n in counts.items() if n >= options.min_texts]
    detector = LanguageDetector({*learnable, "en"})
    return [
        normalise_code(h) or (detector.detect(p) if p else None) for p, h in zip(plains, hints, strict=True)
    ]


def summary(frame: pd.DataFrame, by: Sequence[str] = ("kind", "source")) -> pd.DataFrame:
    """Per group of a :func:`corpus_sentiment` frame: ``n`` texts, how many are ``unsupported``,
    the shares of the supported ones that are positive, neutral and negative, and their
    ``mean_score``. ``source`` (the tool a text came from) is read from ``text_id`` when the
    frame has no such column."""
    frame = frame.copy()
    if "source" in by and "source" not in frame:
        frame["source"] = frame["text_id"].str.split(":", n=2).str[1]
    for label in ("positive", "neutral", "negative"):
        frame[label] = (frame["sentiment_label"] == label).astype(float).where(frame["supported"])
    frame["unsupported"] = ~frame["supported"].astype(bool)
    out = (
        frame.groupby(list(by), sort=True, dropna=False)
        .agg(
            n=("text_id", "size"),
            unsupported=("unsupported", "sum"),
            positive_share=("positive", "mean"),
            neutral_share=("neutral", "mean"),
            negative_share=("negative", "mean"),
            mean_score=("sentiment_score", "mean"),
        )
        .reset_index()
    )
    return out
