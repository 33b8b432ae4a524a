"""Tagging texts with the curated themes, without fitting anything.

1. **Rules first**: a text containing one of a theme's keywords (case-insensitive, whole words
   or phrases) is that theme's, with weight 1; when rules of several themes match, the theme
   of the smallest id wins.
2. **Then the model**: the text's topic weights (:meth:`ThemeModel.weights`) are summed per theme
   (a merged theme adds its topics' weights); the theme of largest weight is the text's if that
   weight reaches the smallest ``min_weight`` of the theme's topics. A text whose largest weight
   is a deleted theme's stays untagged (it was about what the user removed).

``weight`` is the model's: the coefficient of the theme's unit topic vectors in the text's unit
TF-IDF vector, so in [0, 1] in practice (1.0 for a rule); for a semantic model, the cosine of the
text's embedding with the nearest cluster centroid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from cxloop.voice.taxonomy import Taxonomy, Theme
from cxloop.voice.themes_model import FloatArray, ThemeModel

COLUMNS = ("theme_id", "label", "weight", "by")
BATCH = 20_000


def tag_texts(texts: Sequence[str], model: ThemeModel, taxonomy: Taxonomy) -> pd.DataFrame:
    """One row per text, in order: ``theme_id`` (nullable Int64), ``label``, ``weight`` and
    ``by`` (``rule`` | ``model``; None when untagged)."""
    themes = list(taxonomy.themes)
    theme_ids = np.full(len(texts), -1, np.int64)
    weights = np.zeros(len(texts), np.float64)
    by = np.full(len(texts), None, object)
    if len(texts) and model.topics and any(t.topics for t in themes):
        mapping, floors = _theme_matrix(themes, model)
        with threadpool_limits(1, user_api="blas"):
            for start in range(0, len(texts), BATCH):
                chunk = texts[start : start + BATCH]
                w = model.text_weights(chunk) @ mapping
                best = np.argmax(w, axis=1)
                value = w[np.arange(len(best)), best]
                ok = (
                    (value > 0) & (value >= floors[best]) & ~np.array([themes[i].deleted for i in best], bool)
                )
                rows = np.arange(start, start + len(chunk))
                theme_ids[rows[ok]] = np.array([themes[i].theme_id for i in best[ok]], np.int64)
                weights[rows[ok]] = value[ok]
                by[rows[ok]] = "model"
    for theme, pattern in _rules(themes):
        for n, text in enumerate(texts):
            if by[n] != "rule" and pattern.search(text):
                theme_ids[n], weights[n], by[n] = theme.theme_id, 1.0, "rule"
    labels = {t.theme_id: t.label for t in themes}
    tagged = theme_ids >= 0
    return pd.DataFrame(
        {
            "theme_id": pd.Series(theme_ids).where(tagged).astype("Int64"),
            "label": pd.Series([labels.get(int(i)) if i >= 0 else None for i in theme_ids], dtype=object),
            "weight": np.round(weights, 4),
            "by": pd.Series(by, dtype=object),
        }
    )


def _theme_matrix(themes: Sequence[Theme], model: ThemeModel) -> tuple[FloatArray, npt.NDArray[np.float64]]:
    """Topics x themes 0/1 matrix, and each theme's weight floor."""
    mapping = np.zeros((model.topics, len(themes)), np.float32)
    floors = np.full(len(themes), np.inf)
    for n, theme in enumerate(themes):
        topics = [j for j in theme.topics if j < model.topics]
        mapping[topics, n] = 1.0
        if topics:
            floors[n] = float(np.min(model.min_weight[topics]))
    return mapping, floors


def _rules(themes: Sequence[Theme]) -> list[tuple[Theme, re.Pattern[str]]]:
    """Each ruled theme's pattern, smallest id first (a text keeps the first rule it matches)."""
    ruled = sorted((t for t in themes if t.keywords and not t.deleted), key=lambda t: t.theme_id)
    return [
        (t, re.compile(r"(?<!\w)(?:" + "|".join(_phrase(k) for k in t.keywords) + r")(?!\w)", re.IGNORECASE))
        for t in ruled
    ]


def _phrase(keyword: str) -> str:
    return r"\s+".join(re.escape(word) for word in keyword.split())
