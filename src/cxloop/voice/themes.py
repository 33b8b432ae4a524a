"""Themes: what customers talk and complain about, discovered, curated by users, and tagged on
every text.

The API (what trends, drivers, competitors and the shells call):

* :func:`text_themes` ``(store, source=None, *, kinds, start, end, competitors) -> DataFrame``:
  **per-text theme assignments** under the current curated taxonomy, one row per tagged text:
  ``text_id`` (as :func:`cxloop.voice.corpus.corpus`), ``theme_id`` (int), ``label``, ``weight``
  (in [0, 1]; 1.0 for a keyword rule) and ``by`` (``model`` | ``rule``). Untagged texts have no
  row; a text has at most one theme. Nothing is fitted: texts are tagged against the stored model
  (:mod:`cxloop.voice.tagging`), so new texts get themes at once. ``frame.attrs`` says the
  taxonomy ``version``, ``model_id`` and ``texts`` (all texts of the selection).
* :func:`tag` ``(store, texts) -> DataFrame``: the same for any texts (``theme_id``, ``label``,
  ``weight``, ``by`` per text, untagged ones included with ``theme_id`` NA).
* :func:`discover` ``(store, source=None, *, kinds, start, end, competitors, k=None,
  method=None, by, clock) -> Taxonomy``: fits a topic model on the selected texts (TF-IDF + NMF,
  k chosen automatically: :mod:`cxloop.voice.themes_discover`; or ``method="semantic"``,
  sentence embeddings + k-means: :mod:`cxloop.voice.themes_semantic`), keeps it, and writes a new
  taxonomy version that carries the previous curation over (:func:`cxloop.voice.taxonomy.reconcile`).
* :func:`theme_report` ``(store, source=None, *, kinds, start, end, competitors, grain, sentiment,
  quotes) -> DataFrame``: one row per theme: ``theme_id``, ``label``, ``terms``, ``texts`` (size),
  ``share`` (% of the selection's texts), ``sentiment`` (mean score from
  :mod:`cxloop.voice.sentiment`, None when off or unscored), ``quotes`` (the texts of largest
  weight, distinct, raw: escaping is the shell's job), ``trend`` (texts per week or month,
  zeros included), plus ``keywords``, ``curated``. The selection defaults to the model's own.
* Curation, each writing a new version (who: ``by``; when: ``clock``): :func:`rename`,
  :func:`merge`, :func:`split`, :func:`delete`, :func:`add_rule`, :func:`remove_rule`,
  :func:`restore` (a new version equal to an earlier one: a change undone, history kept);
  :func:`current_taxonomy`, :func:`history`. A refused change raises
  :class:`cxloop.voice.taxonomy.CurationError` (a ``ConfigError`` naming the ``field`` at fault)
  and writes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from typing import Any, Final

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from cxloop.errors import ConfigError
from cxloop.metrics.source import Source, store_source
from cxloop.store.store import Store
from cxloop.voice import taxonomy as tx
from cxloop.voice import themes_store
from cxloop.voice.corpus import KINDS, corpus_frame
from cxloop.voice.tagging import tag_texts
from cxloop.voice.taxonomy import CurationError, Taxonomy
from cxloop.voice.themes_discover import DiscoveryOptions, discover_topics, fit_components, nndsvd
from cxloop.voice.themes_model import ThemeModel, best
from cxloop.voice.themes_text import clean

__all__ = [
    "CurationError",
    "DiscoveryOptions",
    "Taxonomy",
    "add_rule",
    "current_taxonomy",
    "delete",
    "discover",
    "history",
    "merge",
    "remove_rule",
    "rename",
    "restore",
    "split",
    "summarise",
    "tag",
    "text_themes",
    "theme_report",
]

Clock = Callable[[], dt.datetime]
GRAINS: Final = ("week", "month")
QUOTE_CHARS: Final = 500


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which texts: kinds, ``[start, end)``, brands (``competitors`` None: all)."""

    kinds: tuple[str, ...] = KINDS
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    competitors: bool | None = None

    def frame(self, source: Source) -> pd.DataFrame:
        return corpus_frame(
            source, kinds=self.kinds, start=self.start, end=self.end, competitors=self.competitors
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "competitors": self.competitors,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Selection:
        def when(value: Any) -> dt.datetime | None:
            return dt.datetime.fromisoformat(value) if value else None

        return cls(
            tuple(data.get("kinds") or KINDS),
            when(data.get("start")),
            when(data.get("end")),
            data.get("competitors"),
        )


def discover(
    store: Store,
    source: Source | None = None,
    *,
    kinds: Iterable[str] = KINDS,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    competitors: bool | None = None,
    k: int | None = None,
    method: str | None = None,
    options: DiscoveryOptions | None = None,
    by: str = "cxloop",
    clock: Clock = utc_now,
) -> Taxonomy:
    """Discover themes in the selected texts and write a new taxonomy version (module docstring).
    ``method``: ``nmf`` (the default) or ``semantic`` (the ``semantic`` extra)."""
    selection = Selection(tuple(dict.fromkeys(kinds)), start, end, competitors)
    options = options or DiscoveryOptions()
    if k is not None:
        options = dataclasses.replace(options, k=k)
    if method is not None:
        options = dataclasses.replace(options, method=method)
    with _source(store, source) as src:
        frame = selection.frame(src)
    brands = [str(b) for b in frame["brand"].dropna().unique()]
    with threadpool_limits(1, user_api="blas"):
        fitted = discover_topics(frame["text"].tolist(), options, extra_stop_words=brands)
    model = dataclasses.replace(fitted, details={**fitted.details, "selection": selection.to_json()})
    previous = themes_store.load_version(store)
    details: dict[str, Any] = {"k": model.topics, "texts": len(frame), "selection": selection.to_json()}
    if previous is None:
        themes = tx.automatic(model)
    else:
        old = themes_store.load_model(store, previous.model_id)
        themes, matched = tx.reconcile(previous.themes, old, model)
        details.update(matched, previous_model=previous.model_id)
    now = clock()
    themes_store.save_model(store, model, now)
    return themes_store.save_version(
        store,
        model_id=model.model_id,
        themes=themes,
        by=by,
        action="discover",
        details=details,
        now=now,
        expected=previous.version if previous else None,
    )


def current_taxonomy(store: Store) -> Taxonomy | None:
    """The latest taxonomy version, or None when themes were never discovered."""
    return themes_store.load_version(store)


def history(store: Store) -> list[dict[str, Any]]:
    """Every taxonomy version, newest first (version, model_id, created_at, created_by, action, details)."""
    return themes_store.history(store)


def tag(store: Store, texts: Sequence[str], *, version: int | None = None) -> pd.DataFrame:
    """Theme of each text under the current taxonomy, or taxonomy version ``version`` (see
    :func:`cxloop.voice.tagging.tag_texts`)."""
    model, taxonomy = _current(store, version)
    return tag_texts(list(texts), model, taxonomy)


def text_themes(
    store: Store,
    source: Source | None = None,
    *,
    kinds: Iterable[str] = KINDS,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    competitors: bool | None = None,
) -> pd.DataFrame:
    """Per-text theme assignments: ``text_id``, ``theme_id``, ``label``, ``weight``, ``by``."""
    model, taxonomy = _current(store)
    with _source(store, source) as src:
        frame = Selection(tuple(kinds), start, end, competitors).frame(src)
    out = _assignments(frame, model, taxonomy)
    out.attrs = {"version": taxonomy.version, "model_id": taxonomy.model_id, "texts": len(frame)}
    return out


def theme_report(
    store: Store,
    source: Source | None = None,
    *,
    kinds: Iterable[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    competitors: bool | None = None,
    grain: str = "month",
    sentiment: bool = True,
    quotes: int = 3,
) -> pd.DataFrame:
    """One row per theme of the current taxonomy over the selected texts (module docstring).
    With no ``kinds``, the selection is the one themes were discovered on."""
    model, taxonomy = _current(store)
    if kinds is None:
        selection = Selection.from_json(model.details.get("selection", {}))
        selection = dataclasses.replace(
            selection,
            start=start or selection.start,
            end=end or selection.end,
            competitors=competitors if competitors is not None else selection.competitors,
        )
    else:
        selection = Selection(tuple(kinds), start, end, competitors)
    with _source(store, source) as src:
        if sentiment:
            from cxloop.voice.sentiment import corpus_sentiment

            frame = corpus_sentiment(
                store, src, kinds=selection.kinds, start=selection.start, end=selection.end,
                competitors=selection.competitors,
            )  # fmt: skip
        else:
            frame = selection.frame(src)
    assignments = _assignments(frame, model, taxonomy)
    report = summarise(frame, assignments, taxonomy.active, grain=grain, quotes=quotes)
    report.attrs = {
        "version": taxonomy.version,
        "model_id": taxonomy.model_id,
        "texts": len(frame),
        "untagged": len(frame) - len(assignments),
        "selection": selection.to_json(),
    }
    return report


def summarise(
    texts: pd.DataFrame,
    assignments: pd.DataFrame,
    themes: Sequence[tx.Theme],
    *,
    grain: str = "month",
    quotes: int = 3,
) -> pd.DataFrame:
    """The theme report from frames: ``texts`` (``text_id``, ``at``, ``text``, optionally
    ``sentiment_score``) and ``assignments`` (``text_id``, ``theme_id``, ``weight``)."""
    if grain not in GRAINS:
        raise ConfigError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")
    columns = ["text_id", "at", "text"] + (["sentiment_score"] if "sentiment_score" in texts else [])
    tagged = assignments.merge(texts[columns], on="text_id", how="inner")
    tagged["period"] = _period(tagged["at"], grain)
    periods = _period(texts["at"], grain)
    axis = (
        pd.date_range(periods.min(), periods.max(), freq="W-MON" if grain == "week" else "MS")
        if len(periods)
        else pd.DatetimeIndex([])
    )
    rows = []
    for theme in themes:
        mine = tagged[tagged["theme_id"] == theme.theme_id]
        score = mine["sentiment_score"].dropna() if "sentiment_score" in mine else pd.Series(dtype=float)
        counts = mine.groupby("period").size().reindex(axis, fill_value=0)
        ranked = mine.sort_values(["weight", "text_id"], ascending=[False, True], kind="stable")
        rows.append(
            {
                "theme_id": theme.theme_id,
                "label": theme.label,
                "terms": list(theme.terms),
                "texts": len(mine),
                "share": round(100 * len(mine) / len(texts), 2) if len(texts) else 0.0,
                "sentiment": round(float(score.mean()), 4) if len(score) else None,
                "quotes": _quotes(ranked["text"], quotes),
                "trend": [{"period": p.date().isoformat(), "texts": int(n)} for p, n in counts.items()],
                "keywords": list(theme.keywords),
                "curated": theme.curated,
            }
        )
    report = pd.DataFrame(rows, columns=[
        "theme_id", "label", "terms", "texts", "share", "sentiment", "quotes", "trend", "keywords", "curated",
    ])  # fmt: skip
    return report.sort_values(
        ["texts", "theme_id"], ascending=[False, True], ignore_index=True, kind="stable"
    )


# --- curation --------------------------------------------------------------------------------


def rename(store: Store, theme_id: int, label: str, *, by: str, clock: Clock = utc_now) -> Taxonomy:
    taxonomy = _taxonomy(store)
    themes = tx.rename(taxonomy.themes, theme_id, label)
    label = next(t.label for t in themes if t.theme_id == theme_id)  # as cleaned
    return _save(store, taxonomy, themes, by, "rename", {"theme_id": theme_id, "label": label}, clock)


def merge(
    store: Store, theme_ids: Sequence[int], *, label: str | None = None, by: str, clock: Clock = utc_now
) -> Taxonomy:
    model, taxonomy = _current(store)
    themes = tx.merge(taxonomy.themes, theme_ids, model, label)
    if label is not None:
        label = next(t.label for t in themes if t.theme_id == theme_ids[0])  # as cleaned
    return _save(store, taxonomy, themes, by, "merge", {"theme_ids": list(theme_ids), "label": label}, clock)


def delete(store: Store, theme_id: int, *, by: str, clock: Clock = utc_now) -> Taxonomy:
    taxonomy = _taxonomy(store)
    themes = tx.delete(taxonomy.themes, theme_id)
    return _save(store, taxonomy, themes, by, "delete", {"theme_id": theme_id}, clock)


def add_rule(
    store: Store,
    keywords: Sequence[str],
    *,
    theme_id: int | None = None,
    label: str | None = None,
    by: str,
    clock: Clock = utc_now,
) -> Taxonomy:
    """Keyword rules for a theme (or a new rule-only theme named ``label``): texts containing a
    keyword are that theme's, whatever the model says."""
    taxonomy = _taxonomy(store)
    themes = tx.add_rule(taxonomy.themes, keywords, theme_id=theme_id, label=label)
    details = {"theme_id": theme_id or themes[-1].theme_id, "keywords": list(keywords)}
    if theme_id is None:
        details["label"] = themes[-1].label
    return _save(store, taxonomy, themes, by, "rule", details, clock)


def remove_rule(
    store: Store, theme_id: int, keywords: Sequence[str], *, by: str, clock: Clock = utc_now
) -> Taxonomy:
    """Theme ``theme_id`` without the keyword rules ``keywords``: its texts go back to the model."""
    taxonomy = _taxonomy(store)
    themes = tx.remove_rule(taxonomy.themes, theme_id, keywords)
    details = {"theme_id": theme_id, "keywords": list(keywords)}
    return _save(store, taxonomy, themes, by, "remove-rule", details, clock)


def restore(store: Store, version: int, *, by: str, clock: Clock = utc_now) -> Taxonomy:
    """A new version equal to the earlier version ``version``: its model and its themes (labels,
    merges, deletions, rules), so a mistaken change is undone without rewriting the history; the
    new version says which one it restored (``action`` ``restore``, ``details`` ``{"version"}``).
    Restoring a version made before a discovery brings that discovery's model back too."""
    taxonomy = _taxonomy(store)
    if version == taxonomy.version:
        raise CurationError(f"version {version} is the current version: nothing to restore", field="version")
    if not 1 <= version < taxonomy.version:
        latest = taxonomy.version - 1
        known = f"the earlier ones are 1 to {latest}" if latest else "none is earlier"
        raise CurationError(f"no taxonomy version {version}; {known}", field="version")
    earlier = _taxonomy(store, version)
    themes_store.load_model(store, earlier.model_id)  # still in the store, or refused here
    details = {"version": version, "previous_model": taxonomy.model_id}
    return themes_store.save_version(
        store, model_id=earlier.model_id, themes=earlier.themes, by=by, action="restore", details=details,
        now=clock(), expected=taxonomy.version,
    )  # fmt: skip


def split(
    store: Store,
    theme_id: int,
    source: Source | None = None,
    *,
    parts: int = 2,
    by: str,
    clock: Clock = utc_now,
) -> Taxonomy:
    """A theme split in two or more: a merged theme back into its topics; a theme of one topic
    into ``parts`` sub-topics fitted (NMF, seeded; k-means on embeddings for a semantic model) on
    its texts from the model's selection, which makes a derived model (the topic's row replaced
    by the first part, the others added)."""
    model, taxonomy = _current(store)
    theme = taxonomy.theme(theme_id)
    if len(theme.topics) >= 2:
        themes = tx.split_topics(taxonomy.themes, theme_id, model)
        return _save(store, taxonomy, themes, by, "split", {"theme_id": theme_id}, clock)
    if not theme.topics:
        raise CurationError(
            f"theme {theme_id} is made of keyword rules only: there is nothing to split", field="theme"
        )
    if not 2 <= parts <= 10:
        raise CurationError(f"parts must be between 2 and 10, not {parts}", field="parts")
    with _source(store, source) as src:
        frame = Selection.from_json(model.details.get("selection", {})).frame(src)
    texts = frame["text"].tolist()
    if model.semantic:
        from cxloop.voice.themes_semantic import split_cluster

        derived, added = split_cluster(model, texts, theme.topics[0], parts)
        return _save_split(store, taxonomy, theme_id, parts, model, derived, added, by, clock)
    with threadpool_limits(1, user_api="blas"):
        matrix = model.tfidf(texts)
        topic, _ = best(model.weights(matrix), model.min_weight)
        rows = sp.csr_matrix(matrix[topic == theme.topics[0]])
        if rows.shape[0] < 2 * parts:
            raise CurationError(
                f"theme {theme_id} has {rows.shape[0]} texts: too few to split in {parts}", field="parts"
            )
        derived, added = _split_model(model, theme.topics[0], rows, parts)
    return _save_split(store, taxonomy, theme_id, parts, model, derived, added, by, clock)


def _save_split(
    store: Store, taxonomy: Taxonomy, theme_id: int, parts: int, model: ThemeModel, derived: ThemeModel,
    added: list[int], by: str, clock: Clock,
) -> Taxonomy:  # fmt: skip
    themes = tx.split_added(taxonomy.themes, theme_id, derived, added)
    now = clock()
    themes_store.save_model(store, derived, now)
    return themes_store.save_version(
        store, model_id=derived.model_id, themes=themes, by=by, action="split",
        details={"theme_id": theme_id, "parts": parts, "previous_model": model.model_id}, now=now,
        expected=taxonomy.version,
    )  # fmt: skip


def _split_model(
    model: ThemeModel, topic: int, rows: sp.csr_matrix, parts: int
) -> tuple[ThemeModel, list[int]]:
    options = DiscoveryOptions(
        **{k: v for k, v in model.details.get("options", {}).items() if k in _OPTION_NAMES}
    )
    start = nndsvd(randomized_svd(rows, parts, random_state=options.seed), parts)
    sub = fit_components(rows, parts, options, start=start)
    sub = sub[np.linalg.norm(sub, axis=1) > 0]
    if len(sub) < 2:
        raise CurationError("the theme's texts do not separate into parts", field="parts")
    sub = sub / np.linalg.norm(sub, axis=1, keepdims=True)
    components = np.vstack([model.components, sub[1:]]).astype(np.float32)
    components[topic] = sub[0]
    added = list(range(model.topics, model.topics + len(sub) - 1))
    floor = float(model.min_weight[topic])
    min_weight = np.concatenate([model.min_weight, np.full(len(added), floor, np.float32)])
    details = {**model.details, "split_from": model.model_id, "split_topic": topic, "k": len(components)}
    return (
        dataclasses.replace(
            model,
            model_id=f"{model.model_id}-s{topic}x{parts}",
            components=components,
            min_weight=min_weight.astype(np.float32),
            details=details,
        ),
        added,
    )


_OPTION_NAMES: Final = {f.name for f in dataclasses.fields(DiscoveryOptions)}


# --- helpers ---------------------------------------------------------------------------------


def _assignments(frame: pd.DataFrame, model: ThemeModel, taxonomy: Taxonomy) -> pd.DataFrame:
    tags = tag_texts(frame["text"].tolist(), model, taxonomy)
    tags.insert(0, "text_id", frame["text_id"].to_numpy())
    tags = tags[tags["theme_id"].notna()].reset_index(drop=True)
    tags["theme_id"] = tags["theme_id"].astype("int64")
    return tags


def _current(store: Store, version: int | None = None) -> tuple[ThemeModel, Taxonomy]:
    taxonomy = _taxonomy(store, version)
    return themes_store.load_model(store, taxonomy.model_id), taxonomy


def _taxonomy(store: Store, version: int | None = None) -> Taxonomy:
    taxonomy = themes_store.load_version(store, version)
    if taxonomy is None:
        raise ConfigError("no themes yet: discover them first (cxloop voice themes discover)")
    return taxonomy


def _save(
    store: Store, taxonomy: Taxonomy, themes: Sequence[tx.Theme], by: str, action: str,
    details: dict[str, Any], clock: Clock,
) -> Taxonomy:  # fmt: skip
    return themes_store.save_version(
        store, model_id=taxonomy.model_id, themes=themes, by=by, action=action, details=details,
        now=clock(), expected=taxonomy.version,
    )  # fmt: skip


def _quotes(texts: pd.Series, n: int) -> list[str]:
    """The first ``n`` texts that differ once cleaned (not only in an order number or a name)."""
    seen: set[str] = set()
    out: list[str] = []
    for text in texts:
        key = " ".join(clean(text).split())
        if key not in seen:
            seen.add(key)
            out.append(text[:QUOTE_CHARS])
        if len(out) == n:
            break
    return out


def _period(at: pd.Series, grain: str) -> pd.Series:
    stamps = pd.to_datetime(at)
    if grain == "week":
        monday = stamps.dt.normalize() - pd.to_timedelta(stamps.dt.day_of_week, unit="D")
        return monday.astype("datetime64[ns]")
    return stamps.dt.to_period("M").dt.start_time.astype("datetime64[ns]")


def _source(store: Store, source: Source | None) -> Any:
    return nullcontext(source) if source is not None else store_source(store)
