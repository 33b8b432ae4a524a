"""Benchmark: sentiment quality and speed (issue 5, "Voice of the customer").

Run from the project root (the venv active)::

    python -m benchmarks.voice_sentiment quality            # Alexa and Olist, VADER vs cxloop
    python -m benchmarks.voice_sentiment speed              # 1M texts, 1 vs 2 worker processes
    python -m benchmarks.voice_sentiment speed --texts 100000   # smoke run

**quality.** Texts and labels: the Amazon Alexa reviews (``reviews_amazon_alexa``) and the Olist
reviews with a title or comment (``olist``), labelled by their stars: 1-2 negative, 3 neutral,
4-5 positive. Olist texts carry the language the preset gives them (``pt``); Alexa texts are
detected. Methods, on the same texts:

* ``vader``: plain VADER, as cxloop ships it without a fitted model (``SentimentModel()``):
  Portuguese is *unsupported*, which counts as a wrong answer;
* ``vader-forced``: VADER told every text is English (what a naive pipeline returns);
* ``cxloop``: :func:`cxloop.voice.sentiment_model.train` — what ``fit_model`` runs on a store —
  under 5-fold cross-validation (``StratifiedGroupKFold``, identical texts kept in one fold, so
  no text is ever both trained on and scored), then :func:`cxloop.voice.sentiment.score_texts`
  on the held-out fold; ``cxloop_char`` the same with character n-grams too.

Reported: accuracy, macro-F1 over the three labels, coverage (share scored), and cxloop ÷ VADER.

**speed.** 1M texts synthesised from the real ones: each joins two texts drawn (seeded) from the
same set, half Alexa, half Olist, so that nearly every text is distinct and the language must be
detected (no hints: the slow path). The model is fitted on all the Alexa and Olist texts
(English and Portuguese classifiers). Each case runs in its own process: ``score_texts`` with
``workers=1`` (in-process) and ``workers=2`` (a spawned pool; its start-up counted); texts/s,
the ratio, and peak RSS of the process and of its largest worker. Target: >= 1.7x.

Exit status 1 when the target is missed or cxloop does not beat VADER on both measures.
Results in ``benchmarks/results/voice_sentiment_{quality,speed}.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
TARGET_RATIO = 1.7
SEED = 42


def _label(stars: pd.Series) -> np.ndarray:
    from cxloop.voice.sentiment_model import label_of_rating

    return np.array([label_of_rating(float(s)) for s in stars])


def data_sets() -> dict[str, pd.DataFrame]:
    """``text``, ``label``, ``language`` (hint or None) per set, empty texts left out."""
    alexa = pd.read_csv(DATA / "reviews_amazon_alexa" / "amazon_alexa.tsv", sep="\t", encoding="utf-8-sig")
    alexa = pd.DataFrame({"text": alexa["verified_reviews"].fillna(""), "label": _label(alexa["rating"])})
    alexa["language"] = None
    olist = pd.read_csv(DATA / "olist" / "olist_order_reviews_dataset.csv")
    title, body = (
        olist["review_comment_title"].fillna("").str.strip(),
        olist["review_comment_message"].fillna(""),
    )
    text = (title + "\n\n" + body.str.strip()).str.strip()  # as the corpus joins them
    olist = pd.DataFrame({"text": text, "label": _label(olist["review_score"]), "language": "pt"})
    out = {}
    for name, frame in (("amazon_alexa", alexa), ("olist", olist)):
        out[name] = frame[frame["text"].str.strip() != ""].reset_index(drop=True)
    return out


def _scores(truth: np.ndarray, predicted: list[str | None]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    answer = np.array([p if p is not None else "unsupported" for p in predicted])
    return {
        "accuracy": float(accuracy_score(truth, answer)),
        "macro_f1": float(
            f1_score(truth, answer, labels=["negative", "neutral", "positive"], average="macro")
        ),
        "coverage": float(np.mean([p is not None for p in predicted])),
    }


def quality(folds: int) -> dict[str, Any]:
    from cxloop.voice.sentiment import SentimentModel, score_texts
    from cxloop.voice.sentiment_model import TrainingOptions

    results: dict[str, Any] = {}
    for name, frame in data_sets().items():
        texts, truth, hints = frame["text"].tolist(), frame["label"].to_numpy(), frame["language"].tolist()
        started = time.perf_counter()
        vader = score_texts(texts, SentimentModel(), languages=hints, workers=1)["label"].tolist()
        forced = score_texts(texts, SentimentModel(), languages=["en"] * len(texts), workers=1)
        vader_seconds = time.perf_counter() - started
        results[name] = {
            "texts": len(texts),
            "distinct_texts": len(set(texts)),
            "labels": {k: int(v) for k, v in pd.Series(truth).value_counts().items()},
            "vader": _scores(truth, vader),
            "vader_forced": _scores(truth, forced["label"].tolist()),
            "vader_seconds": vader_seconds,
        }
        for method, char in (("cxloop", False), ("cxloop_char", True)):
            options = TrainingOptions(char_ngrams=char)
            results[name].update(_cross_validated(method, options, texts, truth, hints, folds))
    return results


def _cross_validated(
    method: str, options: Any, texts: list[str], truth: np.ndarray, hints: list[str | None], folds: int
) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedGroupKFold

    from cxloop.voice.language import plain
    from cxloop.voice.sentiment import score_texts, training_languages
    from cxloop.voice.sentiment_model import train

    predicted: list[str | None] = [None] * len(texts)
    groups = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=SEED).split(texts, truth, groups)
    adopted: list[list[str]] = []
    started = time.perf_counter()
    for train_rows, test_rows in split:
        # What fit_model does with a store's rated texts.
        plains = [plain(texts[i]) for i in train_rows]
        languages = training_languages(plains, [hints[i] for i in train_rows], options)
        model = train(plains, [str(truth[i]) for i in train_rows], languages, options)
        adopted.append(sorted(model.classifiers))
        held_out = score_texts([texts[i] for i in test_rows], model, workers=1,
                               languages=[hints[i] for i in test_rows])  # fmt: skip
        for k, i in enumerate(test_rows):
            predicted[i] = held_out["label"][k]
    return {
        method: _scores(truth, predicted),
        f"{method}_classifiers_per_fold": adopted,
        f"{method}_seconds": time.perf_counter() - started,
    }


def print_quality(results: dict[str, Any]) -> bool:
    ok = True
    print(f"{'data set':14} {'method':13} {'accuracy':>9} {'macro-F1':>9} {'coverage':>9}")
    for name, r in results.items():
        for method in ("vader", "vader_forced", "cxloop", "cxloop_char"):
            m = r[method]
            print(f"{name:14} {method:13} {m['accuracy']:9.3f} {m['macro_f1']:9.3f} {m['coverage']:9.3f}")
        ours = r["cxloop"]
        for method in ("vader", "vader_forced"):
            base = r[method]
            acc = ours["accuracy"] / base["accuracy"] if base["accuracy"] else float("inf")
            f1 = ours["macro_f1"] / base["macro_f1"] if base["macro_f1"] else float("inf")
            print(f"{name:14} {'cxloop/' + method:13}"
                  f" {acc:8.2f}x {f1:8.2f}x")  # fmt: skip
            ok &= ours["accuracy"] > base["accuracy"] and ours["macro_f1"] > base["macro_f1"]
        print(f"{name:14} classifiers adopted per fold: {r['cxloop_classifiers_per_fold']}")
    return ok


# --- speed ---------------------------------------------------------------------------------------


def synthetic_texts(n: int) -> list[str]:
    """``n`` texts, each two real texts of one set joined, half Alexa, half Olist (seeded)."""
    rng = np.random.default_rng(SEED)
    sets = [frame["text"].to_numpy(dtype=object) for frame in data_sets().values()]
    out: list[str] = []
    for k, pool in enumerate(sets):
        size = n // 2 + (n % 2 if k == 0 else 0)
        a, b = rng.integers(0, len(pool), size), rng.integers(0, len(pool), size)
        out.extend(f"{x} {y}" for x, y in zip(pool[a], pool[b], strict=True))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def model_path(workdir: Path) -> Path:
    """The model fitted on every Alexa and Olist text, written once."""
    path = workdir / "voice_sentiment_model.npz"
    if not path.exists():
        from cxloop.voice.language import plain
        from cxloop.voice.sentiment import training_languages
        from cxloop.voice.sentiment_model import TrainingOptions, train

        frames = pd.concat(data_sets().values(), ignore_index=True)
        plains, options = [plain(t) for t in frames["text"]], TrainingOptions()
        languages = training_languages(plains, frames["language"].tolist(), options)
        model = train(plains, frames["label"].tolist(), languages, options)
        path.write_bytes(model.to_bytes())
    return path


def speed_case(texts: int, workers: int, model_file: Path) -> dict[str, Any]:
    """One case, in this process: score ``texts`` synthetic texts with ``workers``."""
    from cxloop.voice.sentiment import SentimentModel, score_texts

    model = SentimentModel.from_bytes(model_file.read_bytes())
    corpus = synthetic_texts(texts)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    scored = score_texts(corpus, model, workers=workers)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    return {
        "cpu_seconds": cpu,
        "texts_per_cpu_second": len(corpus) / cpu,
        "texts": len(corpus),
        "distinct": len(set(corpus)),
        "workers": workers,
        "seconds": seconds,
        "texts_per_second": len(corpus) / seconds,
        "supported_share": float(scored["supported"].mean()),
        "languages": {str(k): int(v) for k, v in scored["language"].value_counts().head(5).items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "model": model.name,
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def speed(texts: int, workdir: Path) -> dict[str, Any]:
    model_file = model_path(workdir)
    cases = {}
    for workers in (1, 2):
        run = subprocess.run(
            [sys.executable, "-m", "benchmarks.voice_sentiment", "speed-case", "--texts", str(texts),
             "--workers", str(workers), "--model", str(model_file)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        cases[f"workers_{workers}"] = json.loads(run.stdout)
        print(f"  {workers} worker(s): {cases[f'workers_{workers}']['seconds']:.1f} s", flush=True)
    one, two = cases["workers_1"], cases["workers_2"]
    return {**cases, "ratio": two["texts_per_second"] / one["texts_per_second"], "target": TARGET_RATIO}


def print_speed(result: dict[str, Any]) -> bool:
    for key in ("workers_1", "workers_2"):
        c = result[key]
        print(
            f"{c['workers']} worker(s): {c['texts']:,} texts ({c['distinct']:,} distinct)"
            f" in {c['seconds']:.1f} s = {c['texts_per_second']:,.0f} texts/s;"
            f" peak RSS {c['peak_rss_mb']:.0f} MB"
            f" (largest worker {c['worker_peak_rss_mb']:.0f} MB); CPU {c['cpu_seconds']:.0f} s"
            f" = {c['texts_per_cpu_second']:,.0f} texts per CPU-second; scored {c['supported_share']:.1%};"
            f" languages {c['languages']}"
        )
    print(f"2 workers / 1: {result['ratio']:.2f}x (target >= {TARGET_RATIO}x)")
    print(f"load average at the end: {os.getloadavg()} (2 cores, shared)")
    return bool(result["ratio"] >= TARGET_RATIO)


def _write(name: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "python": platform.python_version(), "at": time.strftime("%F %T")}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    meta["commit"] = commit.stdout.strip()
    (RESULTS / f"voice_sentiment_{name}.json").write_text(json.dumps({**meta, **result}, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--folds", type=int, default=5)
    s = sub.add_parser("speed")
    s.add_argument("--texts", type=int, default=1_000_000)
    s.add_argument("--workdir", type=Path, default=RESULTS / "cache")
    case = sub.add_parser("speed-case")
    case.add_argument("--texts", type=int, required=True)
    case.add_argument("--workers", type=int, required=True)
    case.add_argument("--model", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "speed-case":
        print(json.dumps(speed_case(args.texts, args.workers, args.model)))
        return 0
    if args.command == "quality":
        result = quality(args.folds)
        _write("quality", result)
        return 0 if print_quality(result) else 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    result = speed(args.texts, args.workdir)
    _write("speed", result)
    return 0 if print_speed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
