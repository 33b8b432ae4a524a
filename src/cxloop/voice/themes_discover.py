"""Discovering topics in texts: TF-IDF + NMF, the number of topics chosen automatically.

1. Texts are cleaned and counted (:mod:`cxloop.voice.themes_text`): words and bigrams seen in at
   least ``min_df`` texts and at most ``max_df`` of them, the ``max_features`` most frequent.
   Weights are sublinear TF-IDF rows of unit length (:func:`cxloop.voice.themes_model.weigh`).
2. **How many topics** (unless ``k`` is given): NMF is fitted for each candidate k from ``k_min``
   to ``k_max`` (default ``sqrt(n / 2)``, at most 25) on a seeded sample of at most
   ``choose_sample`` texts, and each fit is scored by *topic quality* (Dieng, Ruiz and Blei 2020,
   "Topic modeling in embedding spaces", TACL 8): the mean NPMI coherence of each topic's ten top
   terms (how much more often they occur in the same text than by chance, in [-1, 1]; Bouma 2009)
   times the *diversity* of the topics (the share of distinct terms among all top-ten lists). The
   chosen k is the **largest** whose quality is at least ``tolerance`` (0.9) of the best: coherence
   alone prefers a few broad topics, and a theme too broad is harder to fix (curation can merge
   themes in one step, while splitting needs a new fit).
3. NMF (Frobenius loss, deterministic NNDSVD start, coordinate descent) with the chosen k is
   fitted on a seeded sample of at most ``fit_sample`` texts; every text's weights are then
   computed against those components (:meth:`ThemeModel.weights`), as tagging does later.
4. A text belongs to its topic of largest weight when that weight reaches the topic's
   ``min_weight``: ``min_weight_share`` (0.2) of the median weight of the topic's texts (texts
   that barely touch any topic stay untagged rather than join the nearest one).

Each topic has its top terms and a label made of them (:func:`label_of`). Seeded: the same texts
and options give the same model.

``method="semantic"`` replaces steps 2-4 by sentence embeddings and k-means
(:mod:`cxloop.voice.themes_semantic`, the ``semantic`` extra); the model has the same shape
(terms per topic, thresholds), plus the cluster centroids that tagging uses.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.extmath import randomized_svd

from cxloop.errors import ConfigError
from cxloop.voice.themes_model import FloatArray, ThemeModel, best, weigh
from cxloop.voice.themes_text import counter, stop_words

MIN_TEXTS: Final = 20
K_LIMIT: Final = 60
METHODS: Final = ("nmf", "semantic")


@dataclass(frozen=True)
class DiscoveryOptions:
    """How topics are discovered (see the module docstring)."""

    k: int | None = None
    seed: int = 0
    k_min: int = 5
    k_max: int | None = None
    tolerance: float = 0.8
    choose_sample: int = 3_000
    fit_sample: int = 20_000
    min_df: int = 2
    max_df: float = 0.5
    max_features: int = 20_000
    min_weight_share: float = 0.2
    #: ``nmf`` (TF-IDF + NMF, the default) or ``semantic`` (sentence embeddings + k-means, the
    #: ``semantic`` extra: :mod:`cxloop.voice.themes_semantic`); the options below are its own.
    method: str = "nmf"
    batch_size: int = 64
    max_tokens: int = 128
    outlier_quantile: float = 0.01
    min_similarity: float = 0.3

    def check(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.k is not None and not 2 <= self.k <= K_LIMIT:
            raise ConfigError(f"k must be between 2 and {K_LIMIT} themes, not {self.k}")
        if not 2 <= self.k_min <= (self.k_max or K_LIMIT) <= K_LIMIT:
            raise ConfigError(f"k_min and k_max must satisfy 2 <= k_min <= k_max <= {K_LIMIT}")
        if not 0 < self.tolerance <= 1:
            raise ConfigError(f"tolerance must be in (0, 1], not {self.tolerance}")
        if self.batch_size < 1 or not 16 <= self.max_tokens <= 256:
            raise ConfigError("batch_size must be at least 1 and max_tokens between 16 and 256")
        if not 0 <= self.outlier_quantile < 0.5 or not 0 <= self.min_similarity < 1:
            raise ConfigError("outlier_quantile must be in [0, 0.5) and min_similarity in [0, 1)")


def discover_topics(
    texts: Sequence[str],
    options: DiscoveryOptions = DiscoveryOptions(),
    *,
    extra_stop_words: Iterable[str] = (),
) -> ThemeModel:
    """A topic model of ``texts`` (see the module docstring); ``model_id`` is a digest of the
    texts and options. ``details`` says the k chosen and each candidate's quality."""
    options.check()
    if len(texts) < MIN_TEXTS:
        raise ConfigError(
            f"too few texts to discover themes: {len(texts)} in the selection, at least {MIN_TEXTS}"
        )
    if options.method == "semantic":
        from cxloop.voice.themes_semantic import discover_clusters

        return discover_clusters(texts, options, extra_stop_words=extra_stop_words)
    stops, vocabulary, counts, idf = terms(texts, options, extra_stop_words)
    matrix = weigh(counts, idf)
    rng = np.random.default_rng(options.seed)
    scores: dict[int, float] = {}
    k = options.k
    if k is None:
        k, scores = choose_k(matrix, options, rng)
    fit_rows = _sample(matrix, options.fit_sample, rng)
    components = fit_components(fit_rows, min(k, *fit_rows.shape), options)
    components = components[np.linalg.norm(components, axis=1) > 0]
    components = components / np.linalg.norm(components, axis=1, keepdims=True)
    model = ThemeModel(
        model_id="",
        vocabulary=vocabulary,
        stop_words=tuple(stops),
        idf=idf,
        components=components.astype(np.float32),
        min_weight=np.zeros(len(components), np.float32),
    )
    w = model.weights(matrix)
    topic, weight = best(w, model.min_weight)
    min_weight = np.array(
        [options.min_weight_share * float(np.median(weight[topic == j])) if np.any(topic == j) else 0.0
         for j in range(model.topics)],
        np.float32,
    )  # fmt: skip
    details: dict[str, Any] = {
        "method": "tfidf-nmf",
        "texts": len(texts),
        "terms": len(vocabulary),
        "k": model.topics,
        "k_chosen": "given" if options.k is not None else "topic quality",
        "quality": {str(key): round(value, 4) for key, value in scores.items()},
        "options": asdict(options),
    }
    digest = hashlib.sha256()
    digest.update(repr(sorted(details.items())).encode())
    digest.update(components.tobytes())
    return ThemeModel(
        model_id=f"nmf-{digest.hexdigest()[:12]}",
        vocabulary=vocabulary,
        stop_words=tuple(stops),
        idf=idf,
        components=model.components,
        min_weight=min_weight,
        details=details,
    )


def terms(
    texts: Sequence[str], options: DiscoveryOptions, extra_stop_words: Iterable[str] = ()
) -> tuple[list[str], tuple[str, ...], sp.csr_matrix, FloatArray]:
    """Stop words, vocabulary, term counts (texts x terms) and idf of ``texts`` (step 1)."""
    stops = stop_words(extra_stop_words)
    min_df = min(options.min_df, max(1, len(texts) // 10))
    vectorizer = counter(stops, min_df=min_df, max_df=options.max_df, max_features=options.max_features)
    try:
        counts = sp.csr_matrix(vectorizer.fit_transform(texts), dtype=np.float32)
    except ValueError as exc:  # no term left after cleaning and stop words
        raise ConfigError(f"the texts have no words to find themes in ({exc})") from exc
    vocabulary = tuple(str(t) for t in vectorizer.get_feature_names_out())
    df = np.bincount(counts.indices, minlength=len(vocabulary))
    idf = (np.log((1 + counts.shape[0]) / (1 + df)) + 1).astype(np.float32)
    return stops, vocabulary, counts, idf


def candidates(n_texts: int, options: DiscoveryOptions) -> list[int]:
    """The k tried: every k up to 10, then steps of 2, then 3 (a fit per candidate)."""
    high = options.k_max or int(np.clip(round(np.sqrt(n_texts / 2)), options.k_min, 25))
    ks = [k for k in range(options.k_min, high + 1) if k <= 10 or (k <= 20 and k % 2 == 0) or k % 3 == 0]
    return ks if ks[-1] == high else [*ks, high]


def choose_k(
    matrix: sp.csr_matrix, options: DiscoveryOptions, rng: np.random.Generator
) -> tuple[int, dict[int, float]]:
    """The largest k whose topic quality is at least ``tolerance`` of the best, and every
    candidate's quality. One truncated SVD of the sample serves every candidate's NNDSVD start."""
    rows = _sample(matrix, options.choose_sample, rng)
    rows = sp.csr_matrix(rows[:, np.flatnonzero(np.asarray((rows > 0).sum(axis=0)).ravel() >= 2)])
    present = sp.csc_matrix((rows > 0).astype(np.float32))
    ks = [k for k in candidates(rows.shape[0], options) if k < min(rows.shape)]
    if not ks:
        return options.k_min, {}
    svd = randomized_svd(rows, ks[-1], random_state=options.seed)
    scores: dict[int, float] = {}
    for k in ks:
        components = fit_components(rows, k, options, quick=True, start=nndsvd(svd, k))
        scores[k] = coherence(components, present) * diversity(components)
    top = max(scores.values())
    return max(k for k, s in scores.items() if s >= options.tolerance * top), scores


def nndsvd(svd: tuple[FloatArray, FloatArray, FloatArray], k: int) -> tuple[FloatArray, FloatArray]:
    """The NNDSVD start (Boutsidis and Gallopoulos 2008) of rank ``k`` from a truncated SVD
    ``(U, s, Vt)`` of rank at least ``k``, as scikit-learn's ``init="nndsvd"`` computes it."""
    u, s, vt = svd
    w = np.zeros((u.shape[0], k), np.float32)
    h = np.zeros((k, vt.shape[1]), np.float32)
    w[:, 0] = np.sqrt(s[0]) * np.abs(u[:, 0])
    h[0] = np.sqrt(s[0]) * np.abs(vt[0])
    for j in range(1, k):
        x, y = u[:, j], vt[j]
        xp, yp, xn, yn = np.maximum(x, 0), np.maximum(y, 0), np.maximum(-x, 0), np.maximum(-y, 0)
        pos = np.linalg.norm(xp) * np.linalg.norm(yp)
        neg = np.linalg.norm(xn) * np.linalg.norm(yn)
        a, b, sigma = (xp, yp, pos) if pos > neg else (xn, yn, neg)
        if sigma == 0:
            continue
        scale = np.sqrt(s[j] * sigma)
        w[:, j] = scale * a / np.linalg.norm(a)
        h[j] = scale * b / np.linalg.norm(b)
    w[w < 1e-6] = 0
    h[h < 1e-6] = 0
    return w, h


def coherence(components: FloatArray, present: sp.csc_matrix, top: int = 10) -> float:
    """Mean NPMI of each topic's ``top`` terms over the texts (``present``: which text has which
    term); a pair never seen together scores -1."""
    n = present.shape[0]
    df = np.asarray(present.sum(axis=0)).ravel()
    per_topic = []
    for row in components:
        idx = np.argsort(-row, kind="stable")[:top]
        idx = idx[row[idx] > 0]
        if len(idx) < 2:
            per_topic.append(-1.0)
            continue
        cols = present[:, idx]
        together = np.asarray((cols.T @ cols).todense()) / n
        single = df[idx] / n
        i, j = np.triu_indices(len(idx), 1)
        pij = together[i, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            npmi = np.log(pij / (single[i] * single[j])) / -np.log(pij)
        npmi = np.where(pij <= 0, -1.0, np.where(pij >= 1, 1.0, npmi))
        per_topic.append(float(np.mean(npmi)))
    return float(np.mean(per_topic))


def diversity(components: FloatArray, top: int = 10) -> float:
    """The share of distinct terms among the topics' ``top`` terms."""
    tops = np.argsort(-components, axis=1, kind="stable")[:, :top]
    return len(np.unique(tops)) / tops.size


def label_of(terms: Sequence[str], n: int = 2) -> str:
    """A short label from a topic's top terms: the first ``n`` that add a word not already in the
    label, a bigram taking the place of its own word when it ranks in the top five
    ("password" -> "password reset")."""
    picked: list[str] = []
    words: set[str] = set()
    head = list(terms[:5])
    for term in terms:
        if " " not in term:
            longer = [t for t in head if " " in t and term in t.split()]
            term = longer[0] if longer else term
        if set(term.split()) <= words or len(set(term.split())) < len(term.split()):
            continue
        picked.append(term)
        words.update(term.split())
        if len(picked) == n:
            break
    return ", ".join(picked) or "(no terms)"


def _sample(matrix: sp.csr_matrix, size: int, rng: np.random.Generator) -> sp.csr_matrix:
    if matrix.shape[0] <= size:
        return matrix
    keep = np.sort(rng.choice(matrix.shape[0], size, replace=False))
    return sp.csr_matrix(matrix[keep])


def fit_components(
    matrix: sp.csr_matrix,
    k: int,
    options: DiscoveryOptions,
    *,
    quick: bool = False,
    start: tuple[FloatArray, FloatArray] | None = None,
) -> FloatArray:
    model = NMF(
        n_components=k,
        init="nndsvd" if start is None else "custom",
        solver="cd",
        max_iter=100 if quick else 400,
        tol=1e-3 if quick else 1e-4,
        random_state=options.seed,
    )
    with warnings.catch_warnings():
        # Topics are read from the top terms, which settle long before the loss does.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if start is None:
            model.fit(matrix)
        else:
            model.fit(matrix, W=start[0].copy(), H=start[1].copy())
    return np.asarray(model.components_, np.float32)
