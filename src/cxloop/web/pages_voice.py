"""The voice-of-the-customer pages: sentiment (``/voice``), competitors (``/voice/competitors``),
sales preferences (``/sales``), theme trends and drivers, and the theme explorer
(``/voice/themes``), all aggregates (``dashboards.read``). The explorer's curation forms (rename,
merge, split, delete, keyword rules, restoring a version) need ``themes.curate``: each is a POST
that calls one function of :mod:`cxloop.voice.themes` and redirects back, or shows the core's
refusal at the field it names.

Thin shells over :mod:`cxloop.voice` through the voice API's computations and cache
(:mod:`cxloop.web.api_voice`): results are kept until the next import, sentiment scores in the
store. Charts come from :mod:`cxloop.web.voice_view`; each has its table and a CSV
(``?download=…``). A refusal of the library (too few texts, no sales) is said on the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from cxloop.errors import CxloopError
from cxloop.metrics.cache import MetricsCache
from cxloop.store.store import Store
from cxloop.voice.taxonomy import CurationError, Taxonomy
from cxloop.voice.trends import Assign
from cxloop.web import voice_view
from cxloop.web.api_voice import (
    NO_THEMES,
    CacheDep,
    competitor_frame,
    drivers_report,
    sales_baskets,
    sales_top,
    sales_trends,
    sentiment_summaries,
    theme_assigner,
    theme_rows,
    trend_report,
)
from cxloop.web.auth import require
from cxloop.web.charts import Table
from cxloop.web.dashboard import query_string
from cxloop.web.deps import Clock, ClockDep, StoreDep, business
from cxloop.web.errors import Problem
from cxloop.web.pages_dashboard import csv_download
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)
READ = require(Capability.DASHBOARDS_READ)
Who = Annotated[Principal, Depends(READ)]


def _page(request: Request, template: str, context: dict[str, Any]) -> Response:
    return render(request, template, context)


def _download(tables: dict[str, Table], name: str, prefix: str) -> Response:
    return csv_download(tables[name], f"{prefix}-{name}")


@router.get("/voice")
def voice_page(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    who: Who,
    download: Literal["sources", "brands"] | None = None,
) -> Response:
    """Sentiment per source and per brand."""
    context: dict[str, Any] = {"title": "Voice of the customer", "error": None}
    try:
        found = sentiment_summaries(store, cache, clock, (("kind", "source"), ("brand",)))
    except Problem as exc:
        context["error"] = exc.detail
        return _page(request, "voice.html", context)
    href = {name: "/voice" + query_string({"download": name}) for name in ("sources", "brands")}
    charts = [
        voice_view.sentiment_chart(
            found.by[("kind", "source")], ("kind", "source"), chart_id="sources",
            title="Sentiment per source", csv_href=href["sources"],
        ),
        voice_view.sentiment_chart(
            found.by[("brand",)], ("brand",), chart_id="brands",
            title="Sentiment per brand", csv_href=href["brands"],
        ),
    ]  # fmt: skip
    if download:
        return _download({"sources": charts[0].table, "brands": charts[1].table}, download, "voice")
    context.update(charts=charts, texts=found.texts, model=found.model, themes_error=NO_THEMES)
    assign = _assigner(request)
    if assign is not None:
        try:
            report = trend_report(store, cache, assign, as_of=clock(), grain="week")
        except Problem as exc:
            context["themes_error"] = exc.detail
        else:
            context.update(
                themes_error=None,
                emerging=voice_view.rows_of(voice_view.emerging_table(report.emerging))[:10],
                changes=voice_view.rows_of(voice_view.changes_table(report.changes))[:10],
            )
    return _page(request, "voice.html", context)


@router.get("/voice/competitors")
def competitors_page(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    who: Who,
    grain: Literal["week", "month", "quarter"] = "month",
    download: Literal["share", "rating", "sentiment", "latest"] | None = None,
) -> Response:
    """Share of voice over time; rating and sentiment per brand side by side."""
    from cxloop.voice.competitors import overview

    context: dict[str, Any] = {"title": "Competitors", "error": None, "grain": grain,
                               "grains": ["week", "month", "quarter"]}  # fmt: skip
    try:
        frame = competitor_frame(store, cache, grain=grain, as_of=clock())
    except Problem as exc:
        context["error"] = exc.detail
        return _page(request, "voice_competitors.html", context)

    def href(name: str) -> str:
        return "/voice/competitors" + query_string({"grain": grain, "download": name})

    charts = [
        voice_view.per_brand_lines(frame, "share", chart_id="share", title=f"Share of voice per {grain}",
                                   y_title="% of mentions", csv_href=href("share")),
        voice_view.per_brand_lines(frame, "rating", chart_id="rating", title=f"Mean rating per {grain}",
                                   y_title="stars (1-5)", csv_href=href("rating")),
        voice_view.per_brand_lines(frame, "sentiment", chart_id="sentiment", title=f"Sentiment per {grain}",
                                   y_title="mean score (-1 to 1)", csv_href=href("sentiment")),
    ]  # fmt: skip
    latest = voice_view.latest_table(overview(frame))
    if download:
        tables = {"share": charts[0].table, "rating": charts[1].table, "sentiment": charts[2].table,
                  "latest": latest}  # fmt: skip
        return _download(tables, download, "competitors")
    context.update(
        charts=charts,
        latest=voice_view.rows_of(latest),
        latest_period=voice_view.period_label(frame["period"].max()) if len(frame) else None,
        latest_csv=href("latest"),
    )
    return _page(request, "voice_competitors.html", context)


@router.get("/sales")
def sales_page(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    who: Who,
    grain: Literal["week", "month", "quarter", "year"] = "month",
    level: Literal["category", "product"] = "category",
    download: Literal["top", "trends", "baskets"] | None = None,
) -> Response:
    """Top sellers, rising and falling items, products bought together."""
    context: dict[str, Any] = {"title": "Sales", "error": None, "grain": grain, "level": level,
                               "grains": ["week", "month", "quarter", "year"]}  # fmt: skip
    now = clock()
    try:
        top = sales_top(store, cache, level=level, measure="revenue", grain=grain, as_of=now, limit=10)
        moves = sales_trends(store, cache, level=level, grain=grain, as_of=now)
        pairs = sales_baskets(store, cache, level=level, as_of=now, limit=20)
    except (Problem, CxloopError) as exc:
        context["error"] = getattr(exc, "detail", None) or str(exc)
        return _page(request, "voice_sales.html", context)

    def href(name: str) -> str:
        return "/sales" + query_string({"grain": grain, "level": level, "download": name})

    chart = voice_view.top_chart(top, level=level, measure="revenue", csv_href=href("top"))
    trend_table = Table.from_frame(moves)
    basket_table = Table.from_frame(pairs)
    if download:
        return _download(
            {"top": chart.table, "trends": trend_table, "baskets": basket_table}, download, "sales"
        )
    rows = voice_view.rows_of(trend_table)
    context.update(
        top_chart=chart,
        rising=[r for r in rows if r.get("trend") == "rising"][:10],
        falling=[r for r in rows if r.get("trend") == "falling"][:10],
        steady=sum(r.get("trend") == "steady" for r in rows),
        trend_count=len(rows),
        when=(rows[0]["period"], rows[0]["previous_period"]) if rows else None,
        pairs=voice_view.rows_of(basket_table),
        baskets=int(pairs.attrs.get("baskets", 0)),
        trends_csv=href("trends"),
        baskets_csv=href("baskets"),
    )
    return _page(request, "voice_sales.html", context)


def _assigner(request: Request) -> Assign | None:
    try:
        return theme_assigner(request)
    except Problem:
        return None


@router.get("/voice/trends")
def trends_page(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    who: Who,
    grain: Literal["week", "month"] = "week",
    download: Literal["trends", "emerging", "changes"] | None = None,
) -> Response:
    """Each theme's share and volume per week or month, the emerging issues, what changed."""
    context: dict[str, Any] = {
        "title": "Theme trends",
        "error": None,
        "grain": grain,
        "grains": ["week", "month"],
    }
    assign = _assigner(request)
    try:
        if assign is None:
            raise Problem(422, detail=NO_THEMES)
        report = trend_report(store, cache, assign, as_of=clock(), grain=grain)
    except Problem as exc:
        context["error"] = exc.detail
        return _page(request, "voice_trends.html", context)

    def href(name: str) -> str:
        return "/voice/trends" + query_string({"grain": grain, "download": name})

    charts = [
        voice_view.theme_trend_chart(report.trends, measure="share", chart_id="share",
                                     title=f"Share of texts per theme, per {grain}", csv_href=href("trends")),
        voice_view.theme_trend_chart(report.trends, measure="texts", chart_id="texts",
                                     title=f"Texts per theme, per {grain}", csv_href=href("trends")),
    ]  # fmt: skip
    emerging = voice_view.emerging_table(report.emerging)
    changes = voice_view.changes_table(report.changes)
    if download:
        return _download(
            {"trends": charts[0].table, "emerging": emerging, "changes": changes}, download, "voice"
        )
    context.update(
        charts=charts,
        emerging=voice_view.rows_of(emerging),
        changes=voice_view.rows_of(changes),
        notes=list(report.notes),
        emerging_csv=href("emerging"),
        changes_csv=href("changes"),
    )
    return _page(request, "voice_trends.html", context)


@router.get("/voice/drivers")
def drivers_page(
    request: Request,
    store: StoreDep,
    clock: ClockDep,
    cache: CacheDep,
    who: Who,
    segment: str | None = None,
    download: Literal["drivers", "fix"] | None = None,
) -> Response:
    """Each theme's score gap with its interval, the fix-first list, per customer segment."""
    context: dict[str, Any] = {"title": "Key drivers", "error": None, "segment": segment or ""}
    assign = _assigner(request)
    try:
        if assign is None:
            raise Problem(422, detail=NO_THEMES)
        segments = cache.get(("voice.segments",), lambda: _segments(store))
        if segment and segment not in segments:
            raise Problem(
                422, detail=f"segment {segment!r} is not in the data; choose from {', '.join(segments)}"
            )
        report = drivers_report(store, cache, assign, as_of=clock(), segment=segment or None)
    except Problem as exc:
        context["error"] = exc.detail
        return _page(request, "voice_drivers.html", context)

    def href(name: str) -> str:
        return "/voice/drivers" + query_string({"segment": segment or None, "download": name})

    shown = segment or "all"
    metrics = list(dict.fromkeys(report.drivers["metric"])) if len(report.drivers) else []
    charts = [
        voice_view.drivers_chart(report.drivers, metric=m, segment=_segment_label(report.drivers, shown),
                                 csv_href=href("drivers"))
        for m in metrics
    ]  # fmt: skip
    drivers = Table.from_frame(report.drivers)
    fix = voice_view.fix_first_table(report.fix_first)
    if download:
        return _download({"drivers": drivers, "fix": fix}, download, "drivers")
    context.update(
        charts=charts, segments=segments, fix=voice_view.rows_of(fix), notes=list(report.notes),
        fix_csv=href("fix"),
    )  # fmt: skip
    return _page(request, "voice_drivers.html", context)


def _segment_label(drivers: Any, wanted: str) -> str:
    """The ``segment`` value the report gives its rows (``all`` overall, else the segment)."""
    values = list(dict.fromkeys(drivers["segment"])) if len(drivers) else []
    return wanted if wanted in values else (values[0] if values else wanted)


def _segments(store: Any) -> list[str]:
    """The customer segments in the data, for the selector."""
    from cxloop.metrics.source import store_source, to_pandas

    with store_source(store) as source:
        table = source.table("customers")
        found = to_pandas(table.select(value=table["segment"]).filter(table["segment"].notnull()).distinct())
    return sorted(str(v) for v in found["value"])


@router.get("/voice/themes")
def themes_page(
    request: Request,
    store: StoreDep,
    cache: CacheDep,
    who: Who,
    grain: Literal["week", "month"] = "month",
    download: Literal["themes"] | None = None,
    saved: int | None = None,
) -> Response:
    """The theme explorer: each theme's terms, size, share, sentiment, trend and quotes; with
    ``themes.curate``, the forms that curate the taxonomy; its version history."""
    return _themes(request, store, cache, who, grain=grain, download=download, saved=saved)


def _themes(
    request: Request,
    store: Store,
    cache: MetricsCache,
    who: Principal,
    *,
    grain: str = "month",
    download: str | None = None,
    saved: int | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    from cxloop.voice.themes import current_taxonomy, history

    context: dict[str, Any] = {"title": "Themes", "error": None, "grain": grain, "grains": ["week", "month"],
                               "form": form or {}, "saved": None}  # fmt: skip
    try:
        frame = theme_rows(store, cache, grain=grain)
    except Problem as exc:
        context["error"] = exc.detail
        return render(request, "voice_themes.html", context, status_code=status_code)
    href = "/voice/themes" + query_string({"grain": grain, "download": "themes"})
    chart = voice_view.themes_chart(frame, csv_href=href)
    if download:
        return _download({"themes": chart.table}, download, "voice")
    versions = voice_view.version_rows(history(store))
    taxonomy = current_taxonomy(store)
    context.update(
        themes_chart=chart,
        themes=voice_view.theme_cards(frame),
        texts=int(frame.attrs.get("texts", 0)),
        untagged=int(frame.attrs.get("untagged", 0)),
        version=frame.attrs.get("version"),
        versions=versions,
        saved=next((v for v in versions if v["version"] == saved), None),
        can_curate=who.can(Capability.THEMES_CURATE),
        local=business(request).local,
        choices=taxonomy.active if taxonomy is not None else (),
    )
    return render(request, "voice_themes.html", context, status_code=status_code)


# -- curation: thin shells over cxloop.voice.themes (rename, merge, split, delete, rules, restore) ---

CURATE = require(Capability.THEMES_CURATE)
Curator = Annotated[Principal, Depends(CURATE)]
Grain = Annotated[Literal["week", "month"], Form()]
Text = Annotated[str, Form(max_length=2000)]


@dataclass(frozen=True)
class Curation:
    """What every curation form's POST shares: the curator (``themes.curate``; the session's
    CSRF token is checked with it), the store, the clock, and the explorer to answer with."""

    request: Request
    store: Store
    cache: MetricsCache
    clock: Clock
    who: Principal
    grain: str

    @property
    def by(self) -> str:
        return self.who.user.email

    def answer(self, form: dict[str, Any], change: Callable[[], Taxonomy]) -> Response:
        """Make the change, then go back to the explorer (303); a refusal re-renders the
        explorer with the reason at the field it names (422), the form filled in as it was sent.
        The core writes a version whole or not at all, so a refused change leaves nothing behind."""
        try:
            taxonomy = change()
        except CurationError as exc:
            failed = {**form, "error": exc.reason, "field": exc.field}
        except CxloopError as exc:
            failed = {**form, "error": str(exc), "field": None}
        else:
            return RedirectResponse(
                "/voice/themes" + query_string({"grain": self.grain, "saved": taxonomy.version}),
                status_code=303,
            )
        return _themes(
            self.request, self.store, self.cache, self.who, grain=self.grain, form=failed, status_code=422
        )


def curation(
    request: Request, store: StoreDep, cache: CacheDep, clock: ClockDep, who: Curator, grain: Grain = "month"
) -> Curation:
    return Curation(request, store, cache, clock, who, grain)


Curating = Annotated[Curation, Depends(curation)]


def _whole(value: str, field: str, reason: str) -> int:
    """A whole number from a form field, or the refusal ``reason`` at ``field``."""
    try:
        return int(value.strip())
    except ValueError:
        raise CurationError(reason, field=field) from None


def _theme_id(value: str, field: str = "theme") -> int:
    """A theme id from a form field (the core says whether the theme exists)."""
    return _whole(value, field, "choose a theme")


def _words(value: str) -> list[str]:
    """Keywords from a form field: words or phrases separated by commas or new lines."""
    return [w.strip() for w in value.replace("\n", ",").split(",") if w.strip()]


@router.post("/voice/themes/rename")
def rename_theme(c: Curating, theme_id: Text = "", label: Text = "") -> Response:
    """Give a theme a name of one's own (kept across re-discovery)."""
    from cxloop.voice.themes import rename

    form = {"action": "rename", "theme_id": theme_id, "label": label}
    return c.answer(form, lambda: rename(c.store, _theme_id(theme_id), label, by=c.by, clock=c.clock))


@router.post("/voice/themes/merge")
def merge_themes(
    c: Curating, theme_id: Text = "", other: Annotated[list[str] | None, Form()] = None, label: Text = ""
) -> Response:
    """Merge the checked themes into ``theme_id`` (which keeps its id, and its label unless one
    is given)."""
    from cxloop.voice.themes import merge

    others = other or []

    def change() -> Taxonomy:
        ids = [_theme_id(theme_id)] + [_theme_id(o, "themes") for o in others]
        return merge(c.store, ids, label=label.strip() or None, by=c.by, clock=c.clock)

    return c.answer({"action": "merge", "theme_id": theme_id, "other": others, "label": label}, change)


@router.post("/voice/themes/split")
def split_theme(c: Curating, theme_id: Text = "", parts: Text = "2") -> Response:
    """Split a theme: a merged one back into its topics, another into ``parts`` fitted on its texts."""
    from cxloop.voice.themes import split

    def change() -> Taxonomy:
        count = _whole(parts, "parts", "parts must be a whole number from 2 to 10")
        return split(c.store, _theme_id(theme_id), parts=count, by=c.by, clock=c.clock)

    return c.answer({"action": "split", "theme_id": theme_id, "parts": parts}, change)


@router.post("/voice/themes/delete")
def delete_theme(c: Curating, theme_id: Text = "") -> Response:
    """Delete a theme: its texts stay untagged, and it stays deleted when discovery finds it again."""
    from cxloop.voice.themes import delete

    form = {"action": "delete", "theme_id": theme_id}
    return c.answer(form, lambda: delete(c.store, _theme_id(theme_id), by=c.by, clock=c.clock))


@router.post("/voice/themes/rules")
def add_theme_rule(c: Curating, keywords: Text = "", theme_id: Text = "", label: Text = "") -> Response:
    """Keyword rules for a theme, or for a new theme of ``label`` made of rules (no theme chosen)."""
    from cxloop.voice.themes import add_rule

    def change() -> Taxonomy:
        target = _theme_id(theme_id) if theme_id.strip() else None
        name = None if target else label
        return add_rule(c.store, _words(keywords), theme_id=target, label=name, by=c.by, clock=c.clock)

    return c.answer({"action": "rule", "keywords": keywords, "theme_id": theme_id, "label": label}, change)


@router.post("/voice/themes/rules/remove")
def remove_theme_rule(c: Curating, theme_id: Text = "", keyword: Text = "") -> Response:
    """Remove one keyword rule from a theme: its texts go back to the model."""
    from cxloop.voice.themes import remove_rule

    def change() -> Taxonomy:
        return remove_rule(c.store, _theme_id(theme_id), [keyword], by=c.by, clock=c.clock)

    return c.answer({"action": "remove-rule", "theme_id": theme_id, "keyword": keyword}, change)


@router.post("/voice/themes/restore")
def restore_version(c: Curating, version: Text = "") -> Response:
    """Restore an earlier version of the taxonomy: a new version equal to it (history kept)."""
    from cxloop.voice.themes import restore

    def change() -> Taxonomy:
        return restore(c.store, _whole(version, "version", "choose a version"), by=c.by, clock=c.clock)

    return c.answer({"action": "restore", "version": version}, change)
