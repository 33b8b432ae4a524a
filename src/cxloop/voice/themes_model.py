"""A fitted topic model as plain arrays: enough to tag new texts without fitting again.

A text is read as its TF-IDF vector over the model's ``vocabulary`` (counts from
:func:`cxloop.voice.themes_text.counter`, sublinear term frequency ``1 + ln(tf)``, times ``idf``,
scaled to unit length). Its topic weights ``w >= 0`` solve the non-negative least squares
``min ||x - w H||`` for the fixed ``components`` H (one unit-length row per topic), by
scikit-learn's coordinate descent (``non_negative_factorization(update_H=False)``), exactly as
discovery assigns its own texts. The text's topic is the one of largest weight, if that weight
reaches the topic's ``min_weight``; otherwise (or with no known term) it has none.

A **semantic** model (``centroids`` set: :mod:`cxloop.voice.themes_semantic`) reads a text as its
sentence embedding instead: its weight is its cosine with the nearest cluster centroid, on that
cluster only (zero for the others), so a merged theme's weight is that cosine when the nearest
centroid is one of its clusters. Its ``components`` are class-based TF-IDF term weights of the
clusters, so top terms, labels and the matching of topics across discoveries work the same way.

Kept in the store (``theme_models.data``) as a NumPy ``.npz`` of plain arrays (strings, floats),
read back with ``allow_pickle=False``: never a pickle.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.decomposition import non_negative_factorization

from cxloop.errors import ConfigError
from cxloop.voice.themes_text import counter

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: Coordinate-descent settings shared by discovery and tagging (same weights either way).
PROJECTION_TOL = 1e-4
PROJECTION_MAX_ITER = 200


@dataclass(frozen=True)
class ThemeModel:
    """Vocabulary, idf and topic components (unit rows), with per-topic weight thresholds."""

    model_id: str
    vocabulary: tuple[str, ...]
    stop_words: tuple[str, ...]
    idf: FloatArray
    components: FloatArray
    min_weight: FloatArray
    details: dict[str, Any] = field(default_factory=dict)
    #: Unit cluster centroids in embedding space (topics x dimensions): a semantic model.
    centroids: FloatArray | None = None
    #: The sentence encoder of a semantic model (its embeddings only mean something to it).
    encoder: str = ""

    @property
    def topics(self) -> int:
        return int(self.components.shape[0])

    @property
    def semantic(self) -> bool:
        return self.centroids is not None

    def top_terms(self, topic: int, n: int = 10) -> list[str]:
        row = self.components[topic]
        order = np.argsort(-row, kind="stable")[:n]
        return [self.vocabulary[i] for i in order if row[i] > 0]

    def tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Unit-length TF-IDF rows of ``texts`` over the model's vocabulary."""
        counts = counter(list(self.stop_words), vocabulary=self.vocabulary).transform(texts)
        return weigh(sp.csr_matrix(counts, dtype=np.float32), self.idf)

    def weights(self, matrix: sp.csr_matrix) -> FloatArray:
        """Topic weights of TF-IDF rows (see the module docstring)."""
        if matrix.shape[0] == 0:
            return np.zeros((0, self.topics), np.float32)
        w, _, _ = non_negative_factorization(
            matrix,
            H=self.components,
            n_components=self.topics,
            update_H=False,
            solver="cd",
            tol=PROJECTION_TOL,
            max_iter=PROJECTION_MAX_ITER,
        )
        return np.asarray(w, np.float32)

    def text_weights(self, texts: Sequence[str]) -> FloatArray:
        """Topic weights of ``texts``: NMF weights of their TF-IDF rows, or for a semantic model
        the cosine with the nearest centroid (see the module docstring)."""
        if self.centroids is None:
            return self.weights(self.tfidf(texts))
        from cxloop.voice.themes_semantic import centroid_weights, model_embed

        return centroid_weights(model_embed(self, texts), self.centroids)

    def assign(self, texts: Sequence[str]) -> tuple[IntArray, FloatArray, FloatArray]:
        """Each text's topic (-1: none), the weight of that topic, and all weights."""
        w = self.text_weights(texts)
        return (*best(w, self.min_weight), w)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        semantic: dict[str, Any] = {} if self.centroids is None else {
            "centroids": self.centroids, "encoder": np.array(self.encoder, dtype=np.str_),
        }  # fmt: skip
        np.savez_compressed(
            buffer,
            vocabulary=np.array(self.vocabulary, dtype=np.str_),
            stop_words=np.array(self.stop_words, dtype=np.str_),
            idf=self.idf,
            components=self.components,
            min_weight=self.min_weight,
            details=np.array(json.dumps(self.details, sort_keys=True), dtype=np.str_),
            model_id=np.array(self.model_id, dtype=np.str_),
            **semantic,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ThemeModel:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                return cls(
                    model_id=str(arrays["model_id"]),
                    vocabulary=tuple(str(t) for t in arrays["vocabulary"]),
                    stop_words=tuple(str(t) for t in arrays["stop_words"]),
                    idf=arrays["idf"].astype(np.float32),
                    components=arrays["components"].astype(np.float32),
                    min_weight=arrays["min_weight"].astype(np.float32),
                    details=json.loads(str(arrays["details"])),
                    centroids=arrays["centroids"].astype(np.float32) if "centroids" in arrays else None,
                    encoder=str(arrays["encoder"]) if "encoder" in arrays else "",
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"the stored theme model cannot be read ({exc}): discover themes again"
            ) from exc


def weigh(counts: sp.csr_matrix, idf: FloatArray) -> sp.csr_matrix:
    """Sublinear TF (1 + ln tf) times idf, rows scaled to unit length (empty rows stay empty)."""
    matrix = counts.astype(np.float32, copy=True)
    matrix.data = 1.0 + np.log(matrix.data)
    matrix = sp.csr_matrix(matrix @ sp.diags(idf.astype(np.float32)))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ matrix, dtype=np.float32)


def best(w: FloatArray, min_weight: FloatArray) -> tuple[IntArray, FloatArray]:
    """The topic of largest weight per row and that weight; -1 where it is under the threshold."""
    if w.shape[1] == 0:
        return np.full(w.shape[0], -1, np.int64), np.zeros(w.shape[0], np.float32)
    topic = np.argmax(w, axis=1).astype(np.int64)
    weight = w[np.arange(w.shape[0]), topic]
    none = (weight <= 0) | (weight < min_weight[topic])
    topic[none] = -1
    return topic, np.where(none, np.float32(0), weight).astype(np.float32)
