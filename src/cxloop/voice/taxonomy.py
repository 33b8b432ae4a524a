"""The curated theme taxonomy: themes over a model's topics, what users changed, and how it
survives a new discovery.

A :class:`Theme` gathers one or more topics of the current model (``topics``: their indices;
several after a merge), may carry keyword rules (``keywords``), and is either automatic (its
label follows its top terms) or ``curated`` (a user named, merged, split or ruled it: its label is
kept). A deleted theme stays as a tombstone (``deleted``): its topics tag nothing, and a new
discovery that finds the same topic again keeps it deleted.

Every change makes a new :class:`Taxonomy` version (who, when, what); the functions here are pure
and return the new list of themes; :mod:`cxloop.voice.themes` numbers and stores the versions.
A change they refuse raises :class:`CurationError`, whose ``field`` names the input at fault
(``theme``, ``themes``, ``label``, ``keywords``, ``parts``; ``version`` for a restore), so a form
can show the reason there.

**Surviving re-discovery** (:func:`reconcile`): each topic of the new model is compared with each
topic of the previous model by the cosine of their components over the terms the two vocabularies
share. A new topic whose best cosine reaches ``MATCH_COSINE`` (0.5) joins the theme that held that
old topic (so a merge, a name, a deletion or a split carries over, and two new topics matching the
two halves of a merged theme both join it); a new topic matching nothing becomes a new automatic
theme. A curated theme left without topics survives only if it has keyword rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from cxloop.errors import ConfigError
from cxloop.voice.themes_discover import label_of
from cxloop.voice.themes_model import FloatArray, ThemeModel

MATCH_COSINE: Final = 0.5
TERMS: Final = 10


class CurationError(ConfigError):
    """A curation refused: ``reason``, and the ``field`` it is about (``theme``: the theme acted
    on; ``themes``: the themes to merge; ``label``; ``keywords``; ``parts``; ``version``: the
    version to restore; None: the change as a whole)."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(reason)


@dataclass(frozen=True)
class Theme:
    theme_id: int
    label: str
    topics: tuple[int, ...] = ()
    keywords: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    curated: bool = False
    deleted: bool = False


@dataclass(frozen=True)
class Taxonomy:
    """One version of the themes, over the topics of model ``model_id``."""

    version: int
    model_id: str
    themes: tuple[Theme, ...]
    created_at: dt.datetime
    created_by: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> tuple[Theme, ...]:
        return tuple(t for t in self.themes if not t.deleted)

    def theme(self, theme_id: int) -> Theme:
        for t in self.themes:
            if t.theme_id == theme_id and not t.deleted:
                return t
        known = ", ".join(str(t.theme_id) for t in self.active)
        raise CurationError(
            f"no theme {theme_id} in taxonomy version {self.version}; the themes are {known}", field="theme"
        )


def automatic(model: ThemeModel, first_id: int = 1) -> tuple[Theme, ...]:
    """One automatic theme per topic of ``model``."""
    return tuple(
        _with_terms(Theme(theme_id=first_id + j, label="", topics=(j,)), model) for j in range(model.topics)
    )


def rename(themes: Sequence[Theme], theme_id: int, label: str) -> tuple[Theme, ...]:
    label = _label(label)
    _find(themes, theme_id)
    return tuple(replace(t, label=label, curated=True) if t.theme_id == theme_id else t for t in themes)


def merge(
    themes: Sequence[Theme], theme_ids: Sequence[int], model: ThemeModel, label: str | None = None
) -> tuple[Theme, ...]:
    """The themes ``theme_ids`` as one, with the first one's id (and label unless ``label``)."""
    ids = list(dict.fromkeys(theme_ids))
    if len(ids) < 2:
        raise CurationError("merge needs at least two different themes", field="themes")
    parts = [_find(themes, i, field="themes") for i in ids]
    target = parts[0]
    merged = replace(
        target,
        label=_label(label) if label is not None else target.label,
        topics=tuple(sorted({j for p in parts for j in p.topics})),
        keywords=tuple(dict.fromkeys(k for p in parts for k in p.keywords)),
        curated=True,
    )
    merged = _with_terms(merged, model, keep_label=True)
    return tuple(merged if t.theme_id == target.theme_id else t for t in themes if t.theme_id not in ids[1:])


def delete(themes: Sequence[Theme], theme_id: int) -> tuple[Theme, ...]:
    _find(themes, theme_id)
    return tuple(replace(t, deleted=True, curated=True) if t.theme_id == theme_id else t for t in themes)


def add_rule(
    themes: Sequence[Theme], keywords: Sequence[str], *, theme_id: int | None = None, label: str | None = None
) -> tuple[Theme, ...]:
    """Keyword rules for theme ``theme_id``, or for a new rule-only theme named ``label``."""
    words = tuple(dict.fromkeys(w for w in (_keyword(k) for k in keywords) if w))
    if not words:
        raise CurationError("a rule needs at least one keyword", field="keywords")
    if theme_id is None:
        if label is None:
            raise CurationError("a rule needs a theme: its id, or a label for a new theme", field="theme")
        new = Theme(theme_id=next_id(themes), label=_label(label), keywords=words, curated=True)
        return (*themes, new)
    target = _find(themes, theme_id)
    updated = replace(target, keywords=tuple(dict.fromkeys((*target.keywords, *words))), curated=True)
    return tuple(updated if t.theme_id == theme_id else t for t in themes)


def remove_rule(themes: Sequence[Theme], theme_id: int, keywords: Sequence[str]) -> tuple[Theme, ...]:
    """Theme ``theme_id`` without the keyword rules ``keywords`` (each must be one of its rules).
    A theme made of rules only keeps at least one: delete the theme instead."""
    target = _find(themes, theme_id)
    words = tuple(dict.fromkeys(w for w in (_keyword(k) for k in keywords) if w))
    if not words:
        raise CurationError("name the keyword rule to remove", field="keywords")
    unknown = [w for w in words if w not in target.keywords]
    if unknown:
        have = ", ".join(repr(k) for k in target.keywords) or "none"
        raise CurationError(
            f"theme {theme_id} has no keyword rule {unknown[0]!r}; its rules are {have}", field="keywords"
        )
    left = tuple(k for k in target.keywords if k not in words)
    if not left and not target.topics:
        raise CurationError(
            f"theme {theme_id} is made of keyword rules only: delete the theme rather than its last rule",
            field="keywords",
        )
    updated = replace(target, keywords=left, curated=True)
    return tuple(updated if t.theme_id == theme_id else t for t in themes)


def split_topics(themes: Sequence[Theme], theme_id: int, model: ThemeModel) -> tuple[Theme, ...]:
    """A theme of several topics split back into one theme per topic (the first keeps its id,
    label and rules; the others get automatic labels)."""
    target = _find(themes, theme_id)
    if len(target.topics) < 2:
        raise CurationError(
            f"theme {theme_id} holds one topic: split it into parts by fitting again", field="theme"
        )
    first = _with_terms(replace(target, topics=target.topics[:1], curated=True), model, keep_label=True)
    start = next_id(themes)
    rest = [
        _with_terms(Theme(theme_id=start + n, label="", topics=(j,), curated=True), model)
        for n, j in enumerate(target.topics[1:])
    ]
    out = [first if t.theme_id == theme_id else t for t in themes]
    return (*out, *rest)


def split_added(
    themes: Sequence[Theme], theme_id: int, model: ThemeModel, new_topics: Sequence[int]
) -> tuple[Theme, ...]:
    """After the theme's single topic was replaced by parts (the first at its old index, the
    rest appended as ``new_topics``): one theme per part, the first keeping id, label and rules."""
    target = _find(themes, theme_id)
    first = _with_terms(replace(target, curated=True), model, keep_label=True)
    start = next_id(themes)
    rest = [
        _with_terms(Theme(theme_id=start + n, label="", topics=(j,), curated=True), model)
        for n, j in enumerate(new_topics)
    ]
    return (*[first if t.theme_id == theme_id else t for t in themes], *rest)


def reconcile(
    previous: Sequence[Theme], old: ThemeModel, new: ThemeModel
) -> tuple[tuple[Theme, ...], dict[str, Any]]:
    """The previous themes carried over to the topics of the ``new`` model (module docstring),
    and what matched: ``{"matches": {new topic: [old topic, cosine]}}``."""
    cosine = topic_cosines(old, new)
    holder = {j: t.theme_id for t in previous for j in t.topics}
    by_id = {t.theme_id: replace(t, topics=()) for t in previous}
    gained: dict[int, list[int]] = {}
    matches: dict[str, list[float]] = {}
    unmatched: list[int] = []
    for j in range(new.topics):
        i = int(np.argmax(cosine[:, j])) if cosine.shape[0] else -1
        if i >= 0 and cosine[i, j] >= MATCH_COSINE and i in holder:
            gained.setdefault(holder[i], []).append(j)
            matches[str(j)] = [i, round(float(cosine[i, j]), 3)]
        else:
            unmatched.append(j)
    themes: list[Theme] = []
    for t in previous:
        topics = tuple(gained.get(t.theme_id, ()))
        if not topics and not t.keywords:
            continue
        kept = replace(by_id[t.theme_id], topics=topics)
        themes.append(_with_terms(kept, new, keep_label=t.curated) if topics else kept)
    start = next_id(previous)
    themes += [
        _with_terms(Theme(theme_id=start + n, label="", topics=(j,)), new) for n, j in enumerate(unmatched)
    ]
    return tuple(themes), {"matches": matches, "new_topics": unmatched}


def topic_cosines(old: ThemeModel, new: ThemeModel) -> FloatArray:
    """Cosine of every old topic (rows) with every new topic (columns) over their shared terms."""
    index = {term: n for n, term in enumerate(new.vocabulary)}
    pairs = [(i, index[term]) for i, term in enumerate(old.vocabulary) if term in index]
    if not pairs:
        return np.zeros((old.topics, new.topics), np.float32)
    old_cols, new_cols = (np.array(c) for c in zip(*pairs, strict=True))
    a = old.components[:, old_cols]
    b = new.components[:, new_cols]
    # Components are unit rows over their whole vocabulary: divide by the norms of the shared
    # part only if it is not empty.
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    na[na == 0] = 1
    nb[nb == 0] = 1
    return np.asarray((a / na) @ (b / nb).T, np.float32)


def next_id(themes: Sequence[Theme]) -> int:
    return max((t.theme_id for t in themes), default=0) + 1


def theme_terms(theme: Theme, model: ThemeModel, n: int = TERMS) -> tuple[str, ...]:
    """Top terms of a theme: of the sum of its topics' components."""
    if not theme.topics:
        return theme.keywords[:n]
    row = model.components[list(theme.topics)].sum(axis=0)
    order = np.argsort(-row, kind="stable")[:n]
    return tuple(model.vocabulary[i] for i in order if row[i] > 0)


def _with_terms(theme: Theme, model: ThemeModel, *, keep_label: bool = False) -> Theme:
    terms = theme_terms(theme, model)
    label = theme.label if keep_label and theme.label else label_of(terms)
    return replace(theme, terms=terms, label=label)


def _find(themes: Sequence[Theme], theme_id: int, *, field: str = "theme") -> Theme:
    for t in themes:
        if t.theme_id == theme_id and not t.deleted:
            return t
    known = ", ".join(str(t.theme_id) for t in themes if not t.deleted)
    raise CurationError(
        f"no theme {theme_id}; the themes are {known or 'none: discover themes first'}", field=field
    )


def _label(label: str) -> str:
    cleaned = " ".join(label.split())
    if not cleaned or len(cleaned) > 80:
        raise CurationError(f"a theme label must have 1 to 80 characters, not {len(cleaned)}", field="label")
    return cleaned


def _keyword(word: str) -> str:
    cleaned = " ".join(word.lower().split())
    if len(cleaned) > 80:
        raise CurationError(
            f"a keyword must have at most 80 characters: {cleaned[:20]!r}...", field="keywords"
        )
    return cleaned
