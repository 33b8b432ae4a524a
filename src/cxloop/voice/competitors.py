"""Competitors beside our own brand: share of voice and rating per brand and period.

Every figure comes from the reviews table (reviews and social posts, each about one ``brand``,
flagged ``is_competitor``) through the review KPIs of the metrics layer (docs/metrics.md), broken
down by brand, so the numbers are the KPIs' own and run on every engine they run on:

* ``mentions``: reviews and posts about the brand in the period (``review_volume``);
* ``share``: the brand's percentage of all brands' mentions in the period (``share_of_voice``);
  ``our_share`` is the share of our own brands together (those not flagged as a competitor);
* ``rating``: the mean star rating (1-5) of the brand's reviews with a rating, with its Student t
  interval and a warning under ``min_n`` ratings (``average_rating``).

:func:`compare_brands` adds what the texts say, from :mod:`cxloop.voice.sentiment` (scored once
and cached in the store): ``texts`` (mentions with words), ``sentiment_n`` (texts in a language
the model reads), ``sentiment`` (their mean score in [-1, 1]) and ``negative_share`` /
``positive_share`` (percent of them labelled negative / positive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Final

import numpy as np
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.metrics.compute import compute_queries, make_query, now_utc
from cxloop.metrics.grains import Grain, parse_grain, period_start
from cxloop.metrics.query import Options
from cxloop.metrics.registry import Registry
from cxloop.metrics.source import Source, to_pandas
from cxloop.store.store import Store

__all__ = [
    "REVIEW_KINDS",
    "brand_sentiment",
    "brand_themes",
    "brands",
    "compare_brands",
    "overview",
    "share_of_voice",
    "taxonomy_assigner",
    "themes_by_brand",
]

REVIEW_KINDS: Final = ("review", "post")

COLUMNS: Final = (
    "period",
    "brand",
    "is_competitor",
    "mentions",
    "share",
    "our_share",
    "rating",
    "ratings",
    "rating_ci_low",
    "rating_ci_high",
    "rating_warning",
)


def check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(kinds))
    unknown = [k for k in wanted if k not in REVIEW_KINDS]
    if unknown or not wanted:
        raise ConfigError(
            f"unknown kind {(unknown or ['(none)'])[0]!r}; choose from {', '.join(REVIEW_KINDS)}"
        )
    return wanted


def brands(source: Source) -> pd.DataFrame:
    """brand, is_competitor: every brand in the reviews table (a brand flagged both ways in
    different rows counts as a competitor)."""
    reviews = source.table("reviews")
    frame = to_pandas(reviews.group_by("brand").aggregate(is_competitor=reviews.is_competitor.max()))
    frame["is_competitor"] = frame["is_competitor"].astype(bool)
    return frame.sort_values(["is_competitor", "brand"], kind="stable").reset_index(drop=True)


def share_of_voice(
    source: Source,
    *,
    grain: str | Grain = Grain.MONTH,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    kinds: Iterable[str] = REVIEW_KINDS,
    min_n: int = 30,
) -> pd.DataFrame:
    """One row per period and brand: mentions, share, our_share, rating (see the module), in
    [start, end) (default: everything before ``as_of``); ``kinds`` keeps reviews, posts or both.
    Our brands come first in each period, then the competitors, each by name; a brand mentioned
    in the range has a row in each of its periods (0 mentions where it had none)."""
    wanted = check_kinds(kinds)
    registry = Registry.load()
    kpis = [registry.get(k) for k in ("review_volume", "share_of_voice", "average_rating")]
    where = {"review_kind": wanted} if len(wanted) < len(REVIEW_KINDS) else {}
    query = make_query(
        grain=grain,
        by=("brand",),
        where=where,
        start=start,
        end=end,
        as_of=as_of,
        options=Options(min_n=min_n),
    )
    results = compute_queries(source, kpis, query)
    keys = ["period", "brand"]
    volume = results["review_volume"][[*keys, "value"]].rename(columns={"value": "mentions"})
    share = results["share_of_voice"][[*keys, "value"]].rename(columns={"value": "share"})
    rating = results["average_rating"][[*keys, "value", "n", "ci_low", "ci_high", "warning"]].rename(
        columns={
            "value": "rating",
            "n": "ratings",
            "ci_low": "rating_ci_low",
            "ci_high": "rating_ci_high",
            "warning": "rating_warning",
        }
    )
    frame = volume.merge(share, on=keys, how="outer").merge(rating, on=keys, how="left")
    # Every brand in every period of the range it was mentioned in: a period without a mention
    # of a brand is a 0 share, not a missing row.
    grid = pd.MultiIndex.from_product([sorted(frame["period"].unique()), frame["brand"].unique()], names=keys)
    frame = frame.set_index(keys).reindex(grid).reset_index()
    frame["share"] = frame["share"].fillna(0.0)
    frame = frame.merge(brands(source), on="brand", how="left")
    frame["is_competitor"] = frame["is_competitor"].fillna(False).astype(bool)
    frame["mentions"] = frame["mentions"].fillna(0).astype(int)
    frame["ratings"] = frame["ratings"].fillna(0).astype(int)
    ours = frame[~frame["is_competitor"]].groupby("period")["share"].sum()
    frame["our_share"] = frame["period"].map(ours).fillna(0.0).astype(float)
    frame["rating_warning"] = (
        frame["rating_warning"].astype(object).where(frame["rating_warning"].notna(), None)
    )
    frame = frame.sort_values(["period", "is_competitor", "brand"], kind="stable").reset_index(drop=True)
    return frame[list(COLUMNS)]


def overview(frame: pd.DataFrame) -> pd.DataFrame:
    """The last period of a :func:`share_of_voice` frame, one row per brand, with each figure's
    change since the period before (``share_change`` in points, ``rating_change`` in stars)."""
    if frame.empty:
        return frame.assign(share_change=pd.Series(dtype=float), rating_change=pd.Series(dtype=float))
    periods = sorted(frame["period"].unique())
    last = frame[frame["period"] == periods[-1]].reset_index(drop=True)
    if len(periods) < 2:
        return last.assign(share_change=np.nan, rating_change=np.nan)
    before = frame[frame["period"] == periods[-2]].set_index("brand")
    last["share_change"] = last["share"] - last["brand"].map(before["share"]).fillna(0.0)
    last["rating_change"] = last["rating"] - last["brand"].map(before["rating"])
    return last


SENTIMENT_COLUMNS: Final = ("texts", "sentiment_n", "sentiment", "negative_share", "positive_share")


def brand_sentiment(
    store: Store,
    source: Source,
    *,
    grain: str | Grain = Grain.MONTH,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    kinds: Iterable[str] = REVIEW_KINDS,
    range_start: datetime | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """period, brand and the sentiment columns (see the module) of the texts about each brand in
    [start, end), end at most ``as_of``. Texts not yet scored by the store's sentiment model are
    scored and cached. With the ``all`` grain the one period is labelled ``range_start``."""
    from cxloop.voice.sentiment import corpus_sentiment, summary

    parsed = parse_grain(grain)
    moment = as_of or now_utc()
    until = min(end, moment) if end is not None else moment
    frame = corpus_sentiment(store, source, kinds=check_kinds(kinds), start=start, end=until, workers=workers)
    keys = ["period", "brand"]
    if frame.empty:
        return pd.DataFrame(columns=[*keys, *SENTIMENT_COLUMNS])
    if parsed is Grain.ALL:
        frame["period"] = (range_start or start or frame["at"].min()).date()
    else:
        days = pd.to_datetime(frame["at"]).dt.floor("D")
        starts = {d: period_start(d.to_pydatetime(), parsed).date() for d in days.unique()}
        frame["period"] = days.map(starts)
    stats = summary(frame, by=keys)
    return pd.DataFrame(
        {
            "period": stats["period"],
            "brand": stats["brand"],
            "texts": stats["n"].astype(int),
            "sentiment_n": (stats["n"] - stats["unsupported"]).astype(int),
            "sentiment": stats["mean_score"],
            "negative_share": 100 * stats["negative_share"],
            "positive_share": 100 * stats["positive_share"],
        }
    )


def compare_brands(
    store: Store,
    source: Source,
    *,
    grain: str | Grain = Grain.MONTH,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    kinds: Iterable[str] = REVIEW_KINDS,
    min_n: int = 30,
    workers: int | None = None,
) -> pd.DataFrame:
    """:func:`share_of_voice` with each brand's sentiment beside it (see the module)."""
    moment = as_of or now_utc()
    voice = share_of_voice(source, grain=grain, start=start, end=end, as_of=moment, kinds=kinds, min_n=min_n)
    first = voice["period"].min() if len(voice) else None
    feeling = brand_sentiment(
        store, source, grain=grain, start=start, end=end, as_of=moment, kinds=kinds, workers=workers,
        range_start=datetime(first.year, first.month, first.day) if first is not None else None,
    )  # fmt: skip
    out = voice.merge(feeling, on=["period", "brand"], how="left")
    out[["texts", "sentiment_n"]] = out[["texts", "sentiment_n"]].fillna(0).astype(int)
    return out


THEME_COLUMNS: Final = (
    "theme_id",
    "label",
    "brand",
    "is_competitor",
    "texts",
    "brand_texts",
    "share",
    "sentiment",
    "sentiment_n",
    "share_vs_ours",
)


def themes_by_brand(texts: pd.DataFrame, assignments: pd.DataFrame) -> pd.DataFrame:
    """What each brand's customers talk about, side by side: for every theme and brand, the
    brand's texts tagged with it (``texts``), all the brand's texts (``brand_texts``, tagged or
    not), ``share`` = 100 · texts / brand_texts, their mean ``sentiment`` where ``texts`` has a
    ``sentiment_score``, and ``share_vs_ours``: the share minus our brands' share of the theme
    (in points; our own texts together), so a competitor's weak spot shows as a positive gap.

    ``texts``: one row per text with ``text_id``, ``brand``, ``is_competitor`` (as
    :func:`cxloop.voice.corpus.corpus_frame` or :func:`cxloop.voice.sentiment.corpus_sentiment`
    return them); ``assignments``: ``text_id``, ``theme_id``, ``label`` (a text may have several
    themes, or none). Every (theme, brand) pair is a row, 0 where the brand's texts never raise
    the theme. Rows: themes by their share among all texts, then ours first, then by brand.
    """
    for name, frame, columns in (
        ("texts", texts, ("text_id", "brand", "is_competitor")),
        ("assignments", assignments, ("text_id", "theme_id", "label")),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ConfigError(f"{name} needs the column(s) {', '.join(missing)}")
    wanted = [
        "text_id",
        "brand",
        "is_competitor",
        *(["sentiment_score"] if "sentiment_score" in texts else []),
    ]
    own = texts[wanted].drop_duplicates("text_id").copy()
    own["is_competitor"] = own["is_competitor"].fillna(False).astype(bool)
    own["brand"] = own["brand"].fillna("").astype(str)
    brand_totals = own.groupby(["brand", "is_competitor"]).size().rename("brand_texts").reset_index()
    themes = assignments[["theme_id", "label"]].drop_duplicates("theme_id")
    tagged = assignments[["text_id", "theme_id"]].drop_duplicates().merge(own, on="text_id")
    sentiment = "sentiment_score" in tagged
    counts = tagged.groupby(["theme_id", "brand"]).agg(
        texts=("text_id", "size"),
        **(
            {"sentiment": ("sentiment_score", "mean"), "sentiment_n": ("sentiment_score", "count")}
            if sentiment
            else {}
        ),
    )
    grid = themes.merge(brand_totals, how="cross")
    out = grid.merge(counts.reset_index(), on=["theme_id", "brand"], how="left")
    out["texts"] = out["texts"].fillna(0).astype(int)
    if not sentiment:
        out["sentiment"] = np.nan
        out["sentiment_n"] = 0
    out["sentiment_n"] = out["sentiment_n"].fillna(0).astype(int)
    out["share"] = 100 * out["texts"] / out["brand_texts"]
    ours = out[~out["is_competitor"]].groupby("theme_id")[["texts", "brand_texts"]].sum()
    ours_share = (100 * ours["texts"] / ours["brand_texts"]).rename("ours")
    out = out.merge(ours_share, left_on="theme_id", right_index=True, how="left")
    out["share_vs_ours"] = out["share"] - out["ours"]
    overall = out.groupby("theme_id")["texts"].sum() / max(len(own), 1)
    out["_overall"] = out["theme_id"].map(overall)
    out = out.sort_values(
        ["_overall", "theme_id", "is_competitor", "brand"], ascending=[False, True, True, True], kind="stable"
    )
    return out[list(THEME_COLUMNS)].reset_index(drop=True)


#: Theme assignments for a frame of texts: ``texts`` -> ``text_id``, ``theme_id``, ``label``.
Assign = Callable[[pd.DataFrame], pd.DataFrame]


def taxonomy_assigner(store: Store) -> Assign:
    """Texts → their themes under the store's current curated taxonomy
    (:func:`cxloop.voice.themes.tag`: tagged against the stored model, nothing fitted; untagged
    texts have no row). Themes must have been discovered (``cxloop voice themes discover``)."""
    from cxloop.voice.themes import tag

    def assign(texts: pd.DataFrame) -> pd.DataFrame:
        tags = tag(store, texts["text"].tolist())
        tags.insert(0, "text_id", texts["text_id"].to_numpy())
        tags = tags[tags["theme_id"].notna()]
        return tags.assign(theme_id=tags["theme_id"].astype("int64"))[["text_id", "theme_id", "label"]]

    return assign


def brand_themes(
    store: Store,
    source: Source,
    *,
    assign: Assign | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    kinds: Iterable[str] = REVIEW_KINDS,
    workers: int | None = None,
) -> pd.DataFrame:
    """:func:`themes_by_brand` over every brand's reviews and posts in [start, end) (end at most
    ``as_of``), with their sentiment (cached; only new texts are scored) and their themes: the
    store's curated taxonomy (:func:`taxonomy_assigner`) unless ``assign`` (any function from
    texts to assignments, keyword rules say) is given."""
    from cxloop.voice.sentiment import corpus_sentiment

    moment = as_of or now_utc()
    until = min(end, moment) if end is not None else moment
    assign = assign or taxonomy_assigner(store)
    texts = corpus_sentiment(store, source, kinds=check_kinds(kinds), start=start, end=until, workers=workers)
    return themes_by_brand(texts, assign(texts))
