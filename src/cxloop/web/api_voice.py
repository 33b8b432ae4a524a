"""The voice-of-the-customer API: sentiment (``/api/v1/voice/sentiment``), sales preferences
(``/api/v1/sales/...``) and competitors (``/api/v1/competitors``) — the rows of ``cxloop voice
sentiment``, ``cxloop sales top|trends|baskets`` and ``cxloop competitors`` with ``--json``.

A thin shell over :mod:`cxloop.voice`: each route takes the CLI's options as query parameters
(``--from``/``--to`` are ``from``/``to``; repeatable options are repeated parameters), calls the
same library function and answers its rows. Results live in the app's metrics cache
(:mod:`cxloop.metrics.cache`) until the next import; sentiment scores are also kept in the store
(``text_sentiment``), so a text is scored once. Aggregates need ``dashboards.read``; the texts
themselves, with their customer ids, need ``data.read``. Unknown parameters and bad values are
422 problems naming the parameter; so are the library's refusals.

The themes are curated here too (``themes.curate``): ``POST /api/v1/voice/themes/{rename, merge,
split, delete, rules, rules/remove, restore}``, each calling the :mod:`cxloop.voice.themes`
function of that name with the caller's email as who, and answering the new taxonomy version; a
refusal is a 422 problem whose ``field`` (and ``errors[].loc``) names the body field at fault, a
change made meanwhile a 409. ``GET /api/v1/voice/themes/versions`` lists the versions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from cxloop.errors import CxloopError
from cxloop.metrics.cache import MetricsCache
from cxloop.metrics.frames import records
from cxloop.metrics.source import store_source
from cxloop.store.store import Store
from cxloop.voice.drivers import DriversReport
from cxloop.voice.taxonomy import CurationError, Taxonomy
from cxloop.voice.themes_store import ConcurrentChange
from cxloop.voice.trends import Assign, TrendReport
from cxloop.web.api_metrics import as_of_or_now
from cxloop.web.auth import require
from cxloop.web.deps import ClockDep, StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.strict import no_unknown_query
from cxloop.web.voice_view import version_change

router = APIRouter(prefix="/api/v1", dependencies=[Depends(no_unknown_query)])

AGGREGATES = [Depends(require(Capability.DASHBOARDS_READ))]
ROWS = [Depends(require(Capability.DATA_READ))]
T = TypeVar("T")

Kind = Literal["ticket", "review", "post", "survey"]
BRANDS: dict[str, bool | None] = {"all": None, "own": False, "competitors": True}
TEXT_COLUMNS = ["text_id", "kind", "at", "customer_id", "brand", "language", "supported", "sentiment_score",
                "sentiment_label", "text"]  # fmt: skip


def voice_cache(request: Request) -> MetricsCache:
    cache: MetricsCache = request.app.state.metrics_cache
    return cache


CacheDep = Annotated[MetricsCache, Depends(voice_cache)]


@contextmanager
def refusals() -> Iterator[None]:
    """The voice layer's refusals (bad options, too few texts) as 422 problems with the reason."""
    try:
        yield
    except CxloopError as exc:
        raise Problem(422, detail=str(exc)) from None


def kept(cache: MetricsCache, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` once per import and key (the metrics cache), refusals as 422 problems."""
    with refusals():
        result: T = cache.get(key, compute)
    return result


# -- computations shared with the pages (cxloop.web.pages_voice) ----------------------------------


def _corpus_sentiment(
    store: Store,
    clock: Callable[[], dt.datetime],
    *,
    kinds: tuple[str, ...],
    start: dt.datetime | None,
    end: dt.datetime | None,
    brands: str,
    model: str,
) -> pd.DataFrame:
    """:func:`cxloop.voice.sentiment.corpus_sentiment` as ``cxloop voice sentiment`` calls it."""
    from cxloop.voice.corpus import KINDS
    from cxloop.voice.sentiment import SentimentModel, corpus_sentiment

    chosen = SentimentModel() if model == "vader" else None
    return corpus_sentiment(
        store,
        kinds=kinds or KINDS,
        start=start,
        end=end,
        competitors=BRANDS[brands],
        model=chosen,
        clock=clock,
    )


@dataclass(frozen=True)
class SentimentSummaries:
    """The sentiment summaries of one set of texts, one per grouping (the texts are not kept)."""

    model: str
    texts: int
    by: dict[tuple[str, ...], pd.DataFrame]


def sentiment_summaries(
    store: Store,
    cache: MetricsCache,
    clock: Callable[[], dt.datetime],
    groupings: tuple[tuple[str, ...], ...] = (("kind", "source"),),
    *,
    kinds: tuple[str, ...] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    brands: str = "all",
    model: str = "store",
) -> SentimentSummaries:
    """:func:`cxloop.voice.sentiment.summary` of the texts per grouping, kept until the next
    import (the scored texts themselves are not kept in memory: only their summaries)."""
    from cxloop.voice.sentiment import summary

    def compute() -> SentimentSummaries:
        frame = _corpus_sentiment(store, clock, kinds=kinds, start=start, end=end, brands=brands, model=model)
        return SentimentSummaries(
            str(frame.attrs.get("model", "")), len(frame), {by: summary(frame, by=by) for by in groupings}
        )

    return kept(cache, ("voice.sentiment", groupings, kinds, start, end, brands, model), compute)


def sentiment_texts_frame(
    store: Store,
    cache: MetricsCache,
    clock: Callable[[], dt.datetime],
    *,
    kinds: tuple[str, ...] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    brands: str = "all",
    model: str = "store",
) -> pd.DataFrame:
    """Each text with its sentiment (the columns of ``--texts``), kept until the next import."""

    def compute() -> pd.DataFrame:
        frame = _corpus_sentiment(store, clock, kinds=kinds, start=start, end=end, brands=brands, model=model)
        return frame.reindex(columns=TEXT_COLUMNS)

    return kept(cache, ("voice.sentiment.texts", kinds, start, end, brands, model), compute)


def sales_top(store: Store, cache: MetricsCache, **options: Any) -> pd.DataFrame:
    """:func:`cxloop.voice.sales.top_items` with ``options`` (hashable values)."""
    from cxloop.voice.sales import top_items

    def compute() -> pd.DataFrame:
        with store_source(store) as source:
            return top_items(source, **_where(options))

    return kept(cache, ("sales.top", tuple(sorted(options.items()))), compute)


def sales_trends(store: Store, cache: MetricsCache, **options: Any) -> pd.DataFrame:
    """:func:`cxloop.voice.sales.item_trends` with ``options`` (hashable values)."""
    from cxloop.voice.sales import item_trends

    def compute() -> pd.DataFrame:
        with store_source(store) as source:
            return item_trends(source, **_where(options))

    return kept(cache, ("sales.trends", tuple(sorted(options.items()))), compute)


def sales_baskets(store: Store, cache: MetricsCache, **options: Any) -> pd.DataFrame:
    """:func:`cxloop.voice.baskets.basket_pairs` with ``options`` (hashable values)."""
    from cxloop.voice.baskets import basket_pairs

    def compute() -> pd.DataFrame:
        with store_source(store) as source:
            return basket_pairs(source, **_where(options))

    return kept(cache, ("sales.baskets", tuple(sorted(options.items()))), compute)


def competitor_frame(
    store: Store, cache: MetricsCache, *, sentiment: bool = True, **options: Any
) -> pd.DataFrame:
    """:func:`cxloop.voice.competitors.compare_brands` (or ``share_of_voice`` without sentiment)."""
    from cxloop.voice.competitors import compare_brands, share_of_voice

    def compute() -> pd.DataFrame:
        with store_source(store) as source:
            if sentiment:
                return compare_brands(store, source, **options)
            return share_of_voice(source, **options)

    return kept(cache, ("competitors", sentiment, tuple(sorted(options.items()))), compute)


def _where(options: dict[str, Any]) -> dict[str, Any]:
    """``segment``/``region`` tuples as the library's ``where``."""
    out = {k: v for k, v in options.items() if k not in ("segment", "region")}
    where = {k: list(options[k]) for k in ("segment", "region") if options.get(k)}
    return {**out, "where": where}


# -- parameters --------------------------------------------------------------------------------

Kinds = Annotated[
    list[Kind] | None,
    Query(description="Text kinds (repeat for several; default all)", examples=[["review", "ticket"]]),
]
Brands = Annotated[
    Literal["all", "own", "competitors"], Query(description="Our brand's texts, competitors', or all")
]
SentimentModel = Annotated[
    Literal["store", "vader"], Query(description="store (the store's fitted model, else VADER) or vader")
]
From = Annotated[
    dt.datetime | None,
    Query(alias="from", description="From this moment, UTC (inclusive)", examples=["2025-01-01"]),
]
To = Annotated[
    dt.datetime | None,
    Query(alias="to", description="Before this moment, UTC (exclusive)", examples=["2026-01-01"]),
]
AsOf = Annotated[
    dt.datetime | None,
    Query(description="Complete periods before this moment, UTC (default: now)", examples=["2026-01-01"]),
]
Level = Literal["category", "product"]
SalesGrain = Annotated[
    Literal["week", "month", "quarter", "year"], Query(description="Period length", examples=["month"])
]
Period = Annotated[
    dt.date | None,
    Query(description="A day in the period (default: the last complete one)", examples=["2025-11-01"]),
]
Segments = Annotated[
    list[str] | None, Query(description="Only customers of this segment (repeatable)", examples=[["smb"]])
]
Regions = Annotated[
    list[str] | None, Query(description="Only customers of this region (repeatable)", examples=[["EMEA"]])
]
Per = Annotated[
    Literal["segment", "region", "country", "channel"] | None,
    Query(description="One ranking per segment, region, country or channel"),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip")]


def _moment(as_of: dt.datetime | None, clock: Callable[[], dt.datetime]) -> dt.datetime:
    return as_of_or_now(as_of, clock)


# -- models (for the schema and its examples) ----------------------------------------------------


class SentimentSummary(BaseModel):
    """Sentiment per group (``cxloop voice sentiment --json``)."""

    model: str = Field(description="the model that scored the texts", examples=["vader"])
    rows: list[dict[str, Any]] = Field(
        description="Per group: n texts, unsupported (language the model does not read), the shares "
        "of the supported ones positive/neutral/negative, mean_score in [-1, 1]",
        examples=[[{"kind": "review", "source": "demo", "n": 2210, "unsupported": 0, "positive_share": 0.61,
                    "neutral_share": 0.08, "negative_share": 0.31, "mean_score": 0.21}]],
    )  # fmt: skip


class SentimentTexts(BaseModel):
    """One row per text with its sentiment (``cxloop voice sentiment --texts --json``)."""

    items: list[dict[str, Any]] = Field(
        examples=[[{"text_id": "review:demo:R000001", "kind": "review", "at": "2025-10-02T10:00:00",
                    "customer_id": "C000042", "brand": "Northwind", "language": "en", "supported": True,
                    "sentiment_score": -0.62, "sentiment_label": "negative", "text": "Late again."}]],
    )  # fmt: skip
    total: int = Field(examples=[5120])
    limit: int = Field(examples=[100])
    offset: int = Field(examples=[0])


class Rows(BaseModel):
    """The library's rows, as the CLI's ``--json`` prints them."""

    rows: list[dict[str, Any]]
    attrs: dict[str, Any] = Field(default_factory=dict, description="e.g. baskets: orders considered")


# -- routes: sentiment ---------------------------------------------------------------------------


@router.get(
    "/voice/sentiment", tags=["voice"], dependencies=AGGREGATES, responses=problem_responses(401, 403, 422)
)
def sentiment(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    kind: Kinds = None,
    start: From = None,
    end: To = None,
    brands: Brands = "all",
    model: SentimentModel = "store",
    by: Annotated[
        list[Literal["kind", "source", "brand", "language"]] | None,
        Query(description="Group by these (repeatable; default kind and source)", examples=[["brand"]]),
    ] = None,
) -> SentimentSummary:
    """Sentiment per text kind and source (or brand, language): n, shares positive, neutral and
    negative, mean score. Only texts never scored by the model are scored."""
    grouping = tuple(dict.fromkeys(by or ("kind", "source")))
    found = sentiment_summaries(
        store, cache, clock, (grouping,), kinds=tuple(kind or ()), start=start, end=end, brands=brands,
        model=model,
    )  # fmt: skip
    return SentimentSummary(model=found.model, rows=records(found.by[grouping]))


@router.get(
    "/voice/sentiment/texts", tags=["voice"], dependencies=ROWS, responses=problem_responses(401, 403, 422)
)
def sentiment_texts(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    kind: Kinds = None,
    start: From = None,
    end: To = None,
    brands: Brands = "all",
    model: SentimentModel = "store",
    label: Annotated[
        Literal["positive", "neutral", "negative"] | None, Query(description="Only texts with this label")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> SentimentTexts:
    """Each text with its language, sentiment score and label, in corpus order (customer-level)."""
    frame = sentiment_texts_frame(
        store, cache, clock, kinds=tuple(kind or ()), start=start, end=end, brands=brands, model=model
    )
    if label is not None:
        frame = frame[frame["sentiment_label"] == label]
    page = frame.iloc[offset : offset + limit]
    return SentimentTexts(items=records(page), total=len(frame), limit=limit, offset=offset)


# -- routes: sales -------------------------------------------------------------------------------


@router.get("/sales/top", tags=["sales"], dependencies=AGGREGATES, responses=problem_responses(401, 403, 422))
def top(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    by: Annotated[Level, Query(description="Items: category or product")] = "category",
    measure: Annotated[
        Literal["revenue", "net_revenue", "units", "orders", "customers"], Query(description="Rank by this")
    ] = "revenue",
    segment: Segments = None,
    region: Regions = None,
    per: Per = None,
    grain: SalesGrain = "month",
    period: Period = None,
    as_of: AsOf = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Items per ranking")] = 10,
) -> Rows:
    """The best-selling categories or products of a period (``cxloop sales top``)."""
    frame = sales_top(
        store, cache, level=by, measure=measure, per=per, segment=tuple(segment or ()),
        region=tuple(region or ()), grain=grain, period=period, as_of=_moment(as_of, clock), limit=limit,
    )  # fmt: skip
    return Rows(rows=records(frame))


@router.get(
    "/sales/trends", tags=["sales"], dependencies=AGGREGATES, responses=problem_responses(401, 403, 422)
)
def trends(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    by: Annotated[Level, Query(description="Items: category or product")] = "category",
    segment: Segments = None,
    region: Regions = None,
    per: Per = None,
    grain: SalesGrain = "month",
    period: Period = None,
    as_of: AsOf = None,
    min_orders: Annotated[
        int, Query(ge=0, description="Leave out items with fewer orders in the two periods together")
    ] = 20,
    absolute: Annotated[
        bool, Query(description="Test the change in orders itself, not in the share of all orders")
    ] = False,
) -> Rows:
    """Rising, falling and steady items: a period against the one before, tested
    (``cxloop sales trends``)."""
    frame = sales_trends(
        store, cache, level=by, per=per, segment=tuple(segment or ()), region=tuple(region or ()),
        grain=grain, period=period, as_of=_moment(as_of, clock), min_orders=min_orders, relative=not absolute,
    )  # fmt: skip
    return Rows(rows=records(frame))


@router.get(
    "/sales/baskets", tags=["sales"], dependencies=AGGREGATES, responses=problem_responses(401, 403, 422)
)
def baskets(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    level: Annotated[Level, Query(description="Items: category or product")] = "product",
    min_support: Annotated[
        float, Query(ge=0, le=1, description="Least share of orders holding both")
    ] = 0.001,
    min_count: Annotated[int, Query(ge=1, description="Least number of orders holding both")] = 10,
    segment: Segments = None,
    region: Regions = None,
    start: From = None,
    end: To = None,
    as_of: AsOf = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Pairs, by lift")] = 20,
) -> Rows:
    """Products (or categories) bought together: support, confidence both ways, lift, p
    (``cxloop sales baskets``)."""
    frame = sales_baskets(
        store, cache, level=level, segment=tuple(segment or ()), region=tuple(region or ()), start=start,
        end=end, as_of=_moment(as_of, clock), min_support=min_support, min_count=min_count, limit=limit,
    )  # fmt: skip
    return Rows(rows=records(frame), attrs={"baskets": int(frame.attrs.get("baskets", 0))})


# -- routes: competitors ---------------------------------------------------------------------------


@router.get(
    "/competitors", tags=["voice"], dependencies=AGGREGATES, responses=problem_responses(401, 403, 422)
)
def competitors(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    grain: Annotated[
        Literal["day", "week", "month", "quarter", "year"], Query(description="Period length")
    ] = "month",
    start: From = None,
    end: To = None,
    as_of: AsOf = None,
    kind: Annotated[
        list[Literal["review", "post"]] | None, Query(description="Only reviews or only posts (default both)")
    ] = None,
    sentiment: Annotated[bool, Query(description="Add each brand's sentiment (scored once, cached)")] = True,
) -> Rows:
    """Share of voice, rating and sentiment per brand and period, our brand beside its
    competitors (``cxloop competitors``)."""
    frame = competitor_frame(
        store, cache, sentiment=sentiment, grain=grain, start=start, end=end, as_of=_moment(as_of, clock),
        kinds=tuple(kind or ("review", "post")),
    )  # fmt: skip
    return Rows(rows=records(frame))


# -- routes: theme trends and key drivers ----------------------------------------------------------


NO_THEMES = "no themes yet: discover them first (cxloop.voice.themes.discover)"


def theme_assigner(request: Request) -> Assign:
    """How texts are themed (:data:`cxloop.voice.trends.Assign`): ``app.state.theme_assigner``
    when set (tests, other taxonomies), else the store's current curated taxonomy
    (:func:`cxloop.voice.trends.taxonomy_themes`, equal per version, so cached results follow a
    curation at once); with none, trends and drivers are a 422 saying so."""
    assign: Assign | None = getattr(request.app.state, "theme_assigner", None)
    if assign is not None:
        return assign
    from cxloop.voice.trends import taxonomy_themes

    try:
        return taxonomy_themes(request.app.state.store)
    except CxloopError:
        raise Problem(422, detail=NO_THEMES) from None


def theme_rows(
    store: Store,
    cache: MetricsCache,
    *,
    kinds: tuple[str, ...] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    brands: str = "all",
    grain: str = "month",
    quotes: int = 3,
) -> pd.DataFrame:
    """:func:`cxloop.voice.themes.theme_report` under the current taxonomy, kept until the next
    import or curation (the version is part of the key)."""
    from cxloop.voice.themes import current_taxonomy, theme_report

    taxonomy = current_taxonomy(store)
    if taxonomy is None:
        raise Problem(422, detail=NO_THEMES)

    def compute() -> pd.DataFrame:
        return theme_report(
            store, kinds=kinds or None, start=start, end=end, competitors=BRANDS[brands], grain=grain,
            quotes=quotes,
        )  # fmt: skip

    key = ("voice.themes", taxonomy.version, kinds, start, end, brands, grain, quotes)
    return kept(cache, key, compute)


class Themes(BaseModel):
    """The themes of the current taxonomy over the selected texts."""

    version: int = Field(description="taxonomy version", examples=[3])
    texts: int = Field(description="texts in the selection", examples=[5120])
    untagged: int = Field(examples=[1210])
    themes: list[dict[str, Any]] = Field(
        description="Per theme: theme_id, label, terms, texts, share (%), sentiment, quotes (raw text), "
        "trend (texts per period), keywords, curated",
        examples=[[{"theme_id": 4, "label": "Late delivery", "terms": ["late", "delivery"], "texts": 412,
                    "share": 8.1, "sentiment": -0.43, "quotes": ["Three weeks late."],
                    "trend": [{"period": "2025-11-01", "texts": 37}], "keywords": [], "curated": True}]],
    )  # fmt: skip


@router.get(
    "/voice/themes", tags=["voice"], dependencies=AGGREGATES, responses=problem_responses(401, 403, 422)
)
def voice_themes(
    store: StoreDep,
    cache: CacheDep,
    kind: Kinds = None,
    start: From = None,
    end: To = None,
    brands: Brands = "all",
    grain: Annotated[Literal["week", "month"], Query(description="Period of each theme's trend")] = "month",
    quotes: Annotated[int, Query(ge=0, le=20, description="Representative quotes per theme")] = 3,
) -> Themes:
    """Themes with their terms, size, share, sentiment, trend and representative quotes (the
    selection defaults to the texts the themes were discovered on)."""
    frame = theme_rows(
        store, cache, kinds=tuple(kind or ()), start=start, end=end, brands=brands, grain=grain, quotes=quotes
    )
    return Themes(
        version=int(frame.attrs.get("version", 0)), texts=int(frame.attrs.get("texts", 0)),
        untagged=int(frame.attrs.get("untagged", 0)), themes=records(frame),
    )  # fmt: skip


# -- routes: curating the themes (thin shells over cxloop.voice.themes, as the CLI and the pages) ---


CURATE = require(Capability.THEMES_CURATE)
Curator = Annotated[Principal, Depends(CURATE)]
CURATION_ERRORS = problem_responses(401, 403, 409, 422)


class CuratedTheme(BaseModel):
    """A theme of a taxonomy version."""

    theme_id: int = Field(examples=[4])
    label: str = Field(examples=["Late delivery"])
    terms: list[str] = Field(description="Top terms", examples=[["late", "delivery", "parcel"]])
    keywords: list[str] = Field(
        description="Keyword rules (a text holding one is the theme's)", examples=[[]]
    )
    topics: int = Field(description="Topics of the model it gathers (0: keyword rules only)", examples=[1])
    curated: bool = Field(description="Named, merged, split or ruled by a user: its label is kept")


class TaxonomyVersion(BaseModel):
    """A version of the curated taxonomy: who made it, when, what it changed, and its themes."""

    version: int = Field(examples=[5])
    created_at: dt.datetime = Field(description="When (UTC)")
    created_by: str = Field(examples=["ana@example.com"])
    action: str = Field(
        description="discover, rename, merge, split, delete, rule, remove-rule or restore",
        examples=["rename"],
    )
    what: str = Field(description="What changed, in words", examples=["theme 4 renamed “Late delivery”"])
    details: dict[str, Any] = Field(examples=[{"theme_id": 4, "label": "Late delivery"}])
    themes: list[CuratedTheme] = Field(description="Its themes (deleted ones left out)")


class VersionSummary(BaseModel):
    version: int = Field(examples=[5])
    created_at: dt.datetime
    created_by: str = Field(examples=["ana@example.com"])
    action: str = Field(examples=["rename"])
    what: str = Field(examples=["theme 4 renamed “Late delivery”"])
    details: dict[str, Any]


class CurationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RenameIn(CurationIn):
    theme: int = Field(description="The theme's id", examples=[4])
    label: str = Field(
        max_length=2000, description="Its new label (1 to 80 characters)", examples=["Late delivery"]
    )


class MergeIn(CurationIn):
    themes: list[int] = Field(max_length=100, description="Two or more theme ids; the first one's id is kept",
                              examples=[[5, 9]])  # fmt: skip
    label: str | None = Field(default=None, max_length=2000, description="Default: the first theme's label")


class SplitIn(CurationIn):
    theme: int = Field(examples=[5])
    parts: int = Field(default=2, description="Parts of a single-topic theme (2 to 10)", examples=[2])


class DeleteIn(CurationIn):
    theme: int = Field(description="Its texts stay untagged; it stays deleted after the next discovery",
                       examples=[7])  # fmt: skip


class RuleIn(CurationIn):
    keywords: list[str] = Field(max_length=100, description="Words or phrases", examples=[["charged twice"]])
    theme: int | None = Field(default=None, description="The theme the rule assigns to", examples=[4])
    label: str | None = Field(default=None, max_length=2000, description="Or: a new theme of this label")


class UnruleIn(CurationIn):
    theme: int = Field(examples=[4])
    keywords: list[str] = Field(
        max_length=100, description="Its rules to remove", examples=[["charged twice"]]
    )


class RestoreIn(CurationIn):
    version: int = Field(description="The earlier version a new version is made equal to", examples=[3])


def _version(taxonomy: Taxonomy) -> TaxonomyVersion:
    return TaxonomyVersion(
        version=taxonomy.version, created_at=taxonomy.created_at, created_by=taxonomy.created_by,
        action=taxonomy.action, what=version_change(taxonomy.action, taxonomy.details),
        details=taxonomy.details,
        themes=[
            CuratedTheme(theme_id=t.theme_id, label=t.label, terms=list(t.terms), keywords=list(t.keywords),
                         topics=len(t.topics), curated=t.curated)
            for t in taxonomy.active
        ],
    )  # fmt: skip


def curated(change: Callable[[], Taxonomy]) -> TaxonomyVersion:
    """Make the change; the new version, or the core's refusal as a problem: 422 naming the
    field at fault (the request body's field of that name), 409 when the themes changed
    meanwhile (nothing is written either way)."""
    try:
        return _version(change())
    except CurationError as exc:
        if exc.field is None:
            raise Problem(422, detail=exc.reason) from None
        error = {"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}
        raise Problem(
            422, detail=f"body.{exc.field}: {exc.reason}", field=exc.field, errors=[error]
        ) from None
    except ConcurrentChange as exc:
        raise Problem(409, detail=str(exc)) from None
    except CxloopError as exc:
        raise Problem(422, detail=str(exc)) from None


@router.get(
    "/voice/themes/versions", tags=["voice"], dependencies=AGGREGATES, responses=problem_responses(401, 403)
)
def theme_versions(store: StoreDep) -> list[VersionSummary]:
    """Every version of the curated taxonomy, newest first: who, when, what changed."""
    from cxloop.voice.themes import history

    return [
        VersionSummary(**{k: h[k] for k in ("version", "created_at", "created_by", "action", "details")},
                       what=version_change(str(h["action"]), dict(h["details"])))
        for h in history(store)
    ]  # fmt: skip


@router.post("/voice/themes/rename", tags=["voice"], status_code=201, responses=CURATION_ERRORS)
def rename_theme(body: RenameIn, store: StoreDep, clock: ClockDep, who: Curator) -> TaxonomyVersion:
    """Give a theme a name of one's own (kept across re-discovery); the new taxonomy version."""
    from cxloop.voice.themes import rename

    return curated(lambda: rename(store, body.theme, body.label, by=who.user.email, clock=clock))


@router.post("/voice/themes/merge", tags=["voice"], status_code=201, responses=CURATION_ERRORS)
def merge_themes(body: MergeIn, store: StoreDep, clock: ClockDep, who: Curator) -> TaxonomyVersion:
    """Merge themes into the first one (its id kept, and its label unless `label`)."""
    from cxloop.voice.themes import merge

    return curated(lambda: merge(store, body.themes, label=body.label, by=who.user.email, clock=clock))


@router.post("/voice/themes/split", tags=["voice"], status_code=201, responses=CURATION_ERRORS)
def split_theme(body: SplitIn, store: StoreDep, clock: ClockDep, who: Curator) -> TaxonomyVersion:
    """Split a theme: a merged one back into its topics, another into `parts` fitted on its texts."""
    from cxloop.voice.themes import split

    return curated(lambda: split(store, body.theme, parts=body.parts, by=who.user.email, clock=clock))


@router.post("/voice/themes/delete", tags=["voice"], status_code=201, responses=CURATION_ERRORS)
def delete_theme(body: DeleteIn, store: StoreDep, clock: ClockDep, who: Curator) -> TaxonomyVersion:
    """Delete a theme: its texts stay untagged, and it stays deleted when discovery finds it again."""
    from cxloop.voice.themes import delete

    return curated(lambda: delete(store, body.theme, by=who.user.email, clock=clock))


@router.post("/voice/themes/rules", tags=["voice"], status_code=201, responses=CURATION_ERRORS)
def add_theme_rule(body: RuleIn, store: StoreDep, clock: ClockDep, who: Curator) -> TaxonomyVersion:
    """Keyword rules for a theme, or (no `theme`) for a new theme of `label` made of rules."""
    from cxloop.voice.themes import add_rule

    def change() -> Taxonomy:
        return add_rule(
            store, body.keywords, theme_id=body.theme, label=body.label, by=who.user.email, clock=clock
        )

    return curated(change)


@router.post("/voice/themes/rules/remove", tags=["voice"], status_code=201, responses=CURATION_ERRORS)
def remove_theme_rule(body: UnruleIn, store: StoreDep, clock: ClockDep, who: Curator) -> TaxonomyVersion:
    """Remove keyword rules from a theme: its texts go back to the model."""
    from cxloop.voice.themes import remove_rule

    return curated(lambda: remove_rule(store, body.theme, body.keywords, by=who.user.email, clock=clock))


@router.post("/voice/themes/restore", tags=["voice"], status_code=201, responses=CURATION_ERRORS)
def restore_version(body: RestoreIn, store: StoreDep, clock: ClockDep, who: Curator) -> TaxonomyVersion:
    """Restore an earlier version: a new version equal to it (the history keeps every version)."""
    from cxloop.voice.themes import restore

    return curated(lambda: restore(store, body.version, by=who.user.email, clock=clock))


AssignDep = Annotated[Assign, Depends(theme_assigner)]


def trend_report(
    store: Store,
    cache: MetricsCache,
    assign: Assign,
    *,
    as_of: dt.datetime,
    kinds: tuple[str, ...] = (),
    grain: str = "week",
    start: dt.datetime | None = None,
    partial: bool = False,
    periods: int | None = None,
) -> TrendReport:
    """:func:`cxloop.voice.trends.store_trend_report` as ``cxloop voice trends`` calls it."""
    from cxloop.voice.corpus import KINDS
    from cxloop.voice.trends import store_trend_report

    shown = periods or (26 if grain == "week" else 12)

    def compute() -> TrendReport:
        return store_trend_report(
            store, assign=assign, as_of=as_of, kinds=kinds or KINDS, grain=grain, start=start,
            include_partial=partial, periods=shown,
        )  # fmt: skip

    return kept(cache, ("voice.trends", assign, as_of, kinds, grain, start, partial, shown), compute)


def drivers_report(
    store: Store,
    cache: MetricsCache,
    assign: Assign,
    *,
    as_of: dt.datetime,
    start: dt.datetime | None = None,
    segment: str | None = None,
    by_segment: bool = False,
    min_answers: int = 10,
) -> DriversReport:
    """:func:`cxloop.voice.drivers.store_key_drivers` as ``cxloop voice drivers`` calls it."""
    from cxloop.voice.drivers import store_key_drivers

    def compute() -> DriversReport:
        return store_key_drivers(
            store, assign=assign, as_of=as_of, start=start, segment=segment, by_segment=by_segment,
            min_n=min_answers,
        )  # fmt: skip

    return kept(cache, ("voice.drivers", assign, as_of, start, segment, by_segment, min_answers), compute)


class Trends(BaseModel):
    """``cxloop voice trends --json``."""

    grain: str = Field(examples=["week"])
    as_of: dt.datetime = Field(examples=["2026-01-01T00:00:00"])
    trends: list[dict[str, Any]] = Field(
        description="Per period and theme: texts, total, share (%), sentiment",
        examples=[[{"period": "2025-12-22T00:00:00", "theme_id": "delivery", "label": "Delivery", "texts": 41,
                    "total": 310, "share": 13.2, "sentiment": -0.41}]],
    )  # fmt: skip
    emerging: list[dict[str, Any]] = Field(description="Spikes and new themes against their own past")
    changes: list[dict[str, Any]] = Field(description="What changed in the last period, by rank")
    notes: list[str]


class Drivers(BaseModel):
    """``cxloop voice drivers --json``."""

    as_of: dt.datetime = Field(examples=["2026-01-01T00:00:00"])
    fix_first: list[dict[str, Any]] = Field(
        examples=[[{"order": 1, "segment": "all", "theme_id": "delivery", "label": "Delivery",
                    "metric": "nps", "gap": -38.2, "ci_low": -47.0, "ci_high": -29.4, "detractor_share": 31.0,
                    "priority": 11.8}]],
    )  # fmt: skip
    drivers: list[dict[str, Any]] = Field(description="Every (segment, metric, theme) with and without")
    notes: list[str]


@router.get(
    "/voice/trends", tags=["voice"], dependencies=AGGREGATES, responses=problem_responses(401, 403, 422)
)
def voice_trends(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    assign: AssignDep,
    kind: Kinds = None,
    grain: Annotated[
        Literal["week", "month"], Query(description="week (Monday to Sunday, UTC) or month")
    ] = "week",
    periods: Annotated[
        int | None, Query(ge=1, le=520, description="Show the last N periods (default 26 weeks or 12 months)")
    ] = None,
    start: From = None,
    partial: Annotated[bool, Query(description="Include the period as_of falls in")] = False,
    as_of: AsOf = None,
) -> Trends:
    """Theme volume, share and sentiment per period, the emerging issues and what changed in the
    last period (our brand's texts)."""
    moment = _moment(as_of, clock)
    report = trend_report(
        store, cache, assign, as_of=moment, kinds=tuple(kind or ()), grain=grain, start=start,
        partial=partial, periods=periods,
    )  # fmt: skip
    return Trends(
        grain=report.grain, as_of=moment, trends=records(report.trends), emerging=records(report.emerging),
        changes=records(report.changes), notes=list(report.notes),
    )  # fmt: skip


@router.get(
    "/voice/drivers", tags=["voice"], dependencies=AGGREGATES, responses=problem_responses(401, 403, 422)
)
def voice_drivers(
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    assign: AssignDep,
    segment: Annotated[str | None, Query(description="Only the answers of this customer segment")] = None,
    by_segment: Annotated[bool, Query(description="Overall, then each customer segment")] = False,
    start: From = None,
    min_answers: Annotated[int, Query(ge=2, description="Answers needed with and without a theme")] = 10,
    as_of: AsOf = None,
) -> Drivers:
    """Key drivers: NPS, CSAT and rating with and without each theme (gap, 95% interval), the
    share of detractors each theme accounts for, and the issues to fix first."""
    if segment is not None and by_segment:
        raise Problem(422, detail="query.segment: use segment or by_segment, not both")
    moment = _moment(as_of, clock)
    report = drivers_report(
        store, cache, assign, as_of=moment, start=start, segment=segment, by_segment=by_segment,
        min_answers=min_answers,
    )  # fmt: skip
    return Drivers(
        as_of=moment,
        fix_first=records(report.fix_first),
        drivers=records(report.drivers),
        notes=list(report.notes),
    )
