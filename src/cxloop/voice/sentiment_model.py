"""Sentiment models: VADER for English, and classifiers learned from a store's own rated reviews.

A :class:`SentimentModel` reads the languages it has a classifier for and, unless one is trained
for English, reads English with VADER (Hutto and Gilbert 2014, "VADER: a parsimonious rule-based
model for sentiment analysis of social media text", ICWSM; the compound score is the score, and
±0.05 the published neutral band). Any other language is *unsupported*: no score rather than a
wrong one.

A :class:`Classifier` is logistic regression over TF-IDF word 1-2-grams (optionally character
2-5-grams within words too, see :class:`TrainingOptions`), trained on texts whose author rated
them: 1-2 stars negative, 3 neutral, 4-5 positive (:func:`label_of_rating`). For English, VADER's
scores are three more features. Classes are weighted by the square root of their inverse
frequency (rare complaints count more, without flattening the majority). The score is
P(positive) - P(negative), in [-1, 1]; the label is the most probable class. Settings were
chosen by 5-fold cross-validation on the Amazon Alexa and Olist reviews (docs/voice.md).

A model is stored as plain arrays (vocabulary, idf weights, coefficients) in a NumPy ``.npz``
without pickles, so loading one from the database runs no code; its name carries a hash of
those arrays, so a new fit is a new model and cached scores of the old one are never mixed in.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import version
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

#: Bumped when text cleaning, language rules or labelling change what a model returns.
METHOD_VERSION: Final = 1
LABELS: Final = ("negative", "neutral", "positive")
#: VADER's neutral band on the compound score (Hutto and Gilbert 2014).
VADER_NEUTRAL: Final = 0.05
#: Scale of VADER's scores among an English classifier's TF-IDF features (docs/voice.md).
VADER_WEIGHT: Final = 10.0

FloatArray = npt.NDArray[np.float64]


def label_of_rating(rating: float) -> str:
    """The label a 1-5 star rating stands for: 1-2 negative, 3 neutral, 4-5 positive."""
    return "negative" if rating < 2.5 else "neutral" if rating < 3.5 else "positive"


def label_of_score(score: float, kind: str, low: float, high: float) -> str | None:
    """The label a customer's own score stands for: a 1-5 star rating as above, and on other
    scales the same cut points (lowest two fifths negative, middle fifth neutral); NPS 0-6
    negative, 7-8 neutral, 9-10 positive (detractors, passives, promoters). None for kinds whose
    direction is not known (CES, custom)."""
    if kind == "nps":
        return "negative" if score <= 6 else "neutral" if score <= 8 else "positive"
    if kind not in ("rating", "csat") or high <= low:
        return None
    return label_of_rating(1 + 4 * (score - low) / (high - low))


def vader_features(texts: Sequence[str]) -> FloatArray:
    """VADER's compound, positive and negative scores of each text (columns in that order)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyse = SentimentIntensityAnalyzer().polarity_scores
    out = np.empty((len(texts), 3))
    for i, text in enumerate(texts):
        found = analyse(text)
        out[i] = found["compound"], found["pos"], found["neg"]
    return out


@dataclass(frozen=True)
class TrainingOptions:
    """How classifiers are fitted (defaults chosen by cross-validation, docs/voice.md)."""

    c: float = 1.0  # inverse L2 regularisation strength
    class_weight_power: float = 0.5  # 0: no weighting, 1: fully balanced
    min_texts: int = 200  # fewer distinct rated texts in a language: no classifier for it
    min_per_class: int = 10  # and at least two labels with this many texts each
    max_texts: int = 30_000  # per language; a seeded sample beyond that
    max_features: int = 100_000  # per kind of n-gram
    # Character 2-5-grams as well as words: +0.02-0.03 macro-F1 on Alexa and Olist, but scoring
    # 5-9x slower (scikit-learn builds them in Python); off by default (docs/voice.md).
    char_ngrams: bool = False
    seed: int = 0


def _vectorizer(kind: str, options: TrainingOptions, vocabulary: Sequence[str] | None = None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    common: dict[str, Any] = {
        "sublinear_tf": True,
        "strip_accents": "unicode",
        "dtype": np.float32,
        "max_features": options.max_features,
        "min_df": 2,
    }
    if vocabulary is not None:
        common.update(vocabulary={term: i for i, term in enumerate(vocabulary)}, max_features=None, min_df=1)
    if kind == "word":
        return TfidfVectorizer(ngram_range=(1, 2), **common)
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common)


@dataclass(frozen=True)
class Classifier:
    """One language's TF-IDF and logistic regression, as plain arrays.

    With ``uses_vader`` (English) VADER's compound, positive and negative scores, times
    :data:`VADER_WEIGHT`, are three more features: the words the store's reviews teach are added
    to VADER's general lexicon rather than replacing it, which keeps texts unlike the reviews
    (tickets, posts) from being read by a handful of review phrases (docs/voice.md).
    """

    arrays: Mapping[str, npt.NDArray[Any]]  # word_terms, word_idf, char_terms, char_idf, coef, intercept
    classes: tuple[str, ...]
    n_train: int
    uses_vader: bool = False

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        options: TrainingOptions,
        vader: FloatArray | None = None,
    ) -> Classifier:
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(labels)
        word = _vectorizer("word", options)
        char = _vectorizer("char", options) if options.char_ngrams else None
        parts = [word.fit_transform(texts)] + ([] if char is None else [char.fit_transform(texts)])
        if vader is not None:
            parts.append(sp.csr_matrix(vader * VADER_WEIGHT))
        features = sp.hstack(parts).tocsr()
        classes, counts = np.unique(y, return_counts=True)
        power = options.class_weight_power
        weights = {
            str(c): (len(y) / (len(classes) * n)) ** power for c, n in zip(classes, counts, strict=True)
        }
        # Newton-CG: measured 7x faster than L-BFGS here on TF-IDF features, same fit.
        model = LogisticRegression(C=options.c, max_iter=1000, class_weight=weights, solver="newton-cg")
        model.fit(features, y)
        arrays = {
            "word_terms": np.asarray(word.get_feature_names_out(), dtype=str),
            "word_idf": np.asarray(word.idf_, dtype=np.float32),
            "char_terms": np.asarray([] if char is None else char.get_feature_names_out(), dtype=str),
            "char_idf": np.asarray([] if char is None else char.idf_, dtype=np.float32),
            "coef": np.asarray(model.coef_, dtype=np.float32),
            "intercept": np.asarray(model.intercept_, dtype=np.float32),
        }
        return cls(arrays, tuple(str(c) for c in model.classes_), len(texts), vader is not None)

    @cached_property
    def _vectorizers(self) -> list[Any]:
        out = []
        for kind in ("word", "char"):
            if self.arrays[f"{kind}_terms"].size:
                vectorizer = _vectorizer(kind, TrainingOptions(), list(self.arrays[f"{kind}_terms"]))
                vectorizer.idf_ = self.arrays[f"{kind}_idf"]
                out.append(vectorizer)
        return out

    def probabilities(self, texts: Sequence[str], vader: FloatArray | None = None) -> FloatArray:
        """P(class) per text, one column per :attr:`classes` (as scikit-learn's predict_proba).
        ``vader``: the texts' :func:`vader_features` when :attr:`uses_vader`."""
        parts = [vectorizer.transform(texts) for vectorizer in self._vectorizers]
        if self.uses_vader:
            if vader is None:
                raise ValueError("this classifier needs the texts' VADER features")
            parts.append(sp.csr_matrix(vader * VADER_WEIGHT))
        features = sp.hstack(parts).tocsr()
        z = np.asarray(features @ self.arrays["coef"].T, dtype=np.float64) + self.arrays["intercept"]
        if z.shape[1] == 1:  # two classes: a logistic on the second
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1.0 - p, p])
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def predict(self, texts: Sequence[str], vader: FloatArray | None = None) -> tuple[FloatArray, list[str]]:
        """Score P(positive) - P(negative) and the most probable label of each text."""
        probs = self.probabilities(texts, vader)
        column = {c: i for i, c in enumerate(self.classes)}
        zero = np.zeros(len(texts))
        score = (probs[:, column["positive"]] if "positive" in column else zero) - (
            probs[:, column["negative"]] if "negative" in column else zero
        )
        labels = [self.classes[i] for i in probs.argmax(axis=1)]
        return np.clip(score, -1.0, 1.0), labels


@dataclass(frozen=True)
class SentimentModel:
    """Classifiers by language; English by VADER unless a classifier reads it."""

    classifiers: Mapping[str, Classifier] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)  # how it was trained, for people

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages this model scores (ISO 639-1)."""
        return tuple(sorted({*self.classifiers, "en"}))

    @cached_property
    def name(self) -> str:
        """Name and version, the cache key of its scores: ``vader-3.3.2+cx1`` for plain VADER,
        ``tfidf-lr-<hash>+cx1`` for fitted classifiers (the hash of their arrays)."""
        if not self.classifiers:
            return f"vader-{_vader_version()}+cx{METHOD_VERSION}"
        return f"tfidf-lr-{self._digest()[:12]}+cx{METHOD_VERSION}"

    def _meta(self) -> dict[str, Any]:
        return {
            "format": 1,
            "method_version": METHOD_VERSION,
            "vader": _vader_version(),
            "langid": version("py3langid"),
            "classifiers": {
                lang: {"classes": list(c.classes), "n_train": c.n_train, "uses_vader": c.uses_vader}
                for lang, c in sorted(self.classifiers.items())
            },
            "details": dict(self.details),
        }

    def _digest(self) -> str:
        digest = hashlib.sha256(json.dumps(self._meta()["classifiers"], sort_keys=True).encode())
        digest.update(f"{METHOD_VERSION}:{_vader_version()}:{version('py3langid')}".encode())
        for lang, classifier in sorted(self.classifiers.items()):
            for key, array in sorted(classifier.arrays.items()):
                digest.update(f"{lang}/{key}:{array.dtype.str}:{array.shape}".encode())
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def to_bytes(self) -> bytes:
        """The model as a NumPy ``.npz`` of plain arrays (no pickles)."""
        arrays: dict[str, npt.NDArray[Any]] = {"meta": np.asarray(json.dumps(self._meta(), sort_keys=True))}
        for lang, classifier in self.classifiers.items():
            arrays.update({f"{lang}/{k}": v for k, v in classifier.arrays.items()})
        buffer = io.BytesIO()
        np.savez_compressed(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SentimentModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            classifiers = {
                lang: Classifier(
                    {k: npz[f"{lang}/{k}"] for k in _ARRAY_KEYS},
                    tuple(info["classes"]),
                    int(info["n_train"]),
                    bool(info["uses_vader"]),
                )
                for lang, info in meta["classifiers"].items()
            }
        return cls(classifiers, meta.get("details", {}))


_ARRAY_KEYS: Final = ("word_terms", "word_idf", "char_terms", "char_idf", "coef", "intercept")


def _vader_version() -> str:
    return version("vaderSentiment")


def vader_labels(scores: FloatArray) -> list[str]:
    """VADER's labels: compound ≥ 0.05 positive, ≤ -0.05 negative, neutral between."""
    return [
        "positive" if s >= VADER_NEUTRAL else "negative" if s <= -VADER_NEUTRAL else "neutral" for s in scores
    ]


def _macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, average="macro", labels=sorted(set(truth)), zero_division=0))


def _validate(
    texts: list[str], labels: list[str], vader: FloatArray | None, options: TrainingOptions
) -> dict[str, Any]:
    """Held-out check of a language's classifier: fit on 80% of the distinct texts, score the
    other 20%, and (English) VADER on the same texts. The classifier is adopted when its
    macro-F1 beats VADER's (always, for a language VADER does not read)."""
    rng = np.random.default_rng(options.seed)
    distinct = sorted(set(texts))
    test_texts = set(rng.choice(len(distinct), max(1, len(distinct) // 5), replace=False).tolist())
    is_test = np.array([i in test_texts for i in np.searchsorted(distinct, texts)])
    train_rows, test_rows = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    truth = [labels[i] for i in test_rows]
    out: dict[str, Any] = {"held_out": len(test_rows)}
    if len({labels[i] for i in train_rows}) < 2:
        return {**out, "adopted": False}
    classifier = Classifier.fit(
        [texts[i] for i in train_rows], [labels[i] for i in train_rows], options,
        None if vader is None else vader[train_rows],
    )  # fmt: skip
    _, predicted = classifier.predict(
        [texts[i] for i in test_rows], None if vader is None else vader[test_rows]
    )
    out.update(
        accuracy=float(np.mean([a == b for a, b in zip(truth, predicted, strict=True)])),
        macro_f1=_macro_f1(truth, predicted),
    )
    if vader is None:
        return {**out, "adopted": True}
    baseline = vader_labels(vader[test_rows, 0])
    out.update(
        vader_accuracy=float(np.mean([a == b for a, b in zip(truth, baseline, strict=True)])),
        vader_macro_f1=_macro_f1(truth, baseline),
    )
    return {**out, "adopted": out["macro_f1"] > out["vader_macro_f1"]}


def train(
    texts: Sequence[str], labels: Sequence[str], languages: Sequence[str | None], options: TrainingOptions
) -> SentimentModel:
    """Fit one classifier per language that has enough labelled texts (see TrainingOptions) and
    passes the held-out check (:func:`_validate`).

    ``texts`` are plain texts (see :func:`cxloop.voice.language.plain`), ``labels`` from
    :data:`LABELS`, ``languages`` their ISO 639-1 codes (None: undetermined, left out).
    Duplicated (text, label) pairs count once.
    """
    rng = np.random.default_rng(options.seed)
    by_language: dict[str, dict[tuple[str, str], None]] = {}
    for text, label, lang in zip(texts, labels, languages, strict=True):
        if lang is not None and text:
            by_language.setdefault(lang, {})[(text, label)] = None
    classifiers: dict[str, Classifier] = {}
    counts: dict[str, dict[str, int]] = {}
    validation: dict[str, dict[str, Any]] = {}
    for lang, pairs in sorted(by_language.items()):
        rows = sorted(pairs)  # a stable order: the same data gives the same model
        if len(rows) > options.max_texts:
            rows = [rows[i] for i in sorted(rng.choice(len(rows), options.max_texts, replace=False))]
        per_label = {label: sum(1 for _, lb in rows if lb == label) for label in LABELS}
        counts[lang] = per_label
        if len(rows) < options.min_texts or sum(n >= options.min_per_class for n in per_label.values()) < 2:
            continue
        lang_texts, lang_labels = [t for t, _ in rows], [lb for _, lb in rows]
        vader = vader_features(lang_texts) if lang == "en" else None
        validation[lang] = _validate(lang_texts, lang_labels, vader, options)
        if validation[lang]["adopted"]:
            classifiers[lang] = Classifier.fit(lang_texts, lang_labels, options, vader)
    details = {"labelled_texts": counts, "validation": validation, "options": options.__dict__}
    return SentimentModel(classifiers, details)
