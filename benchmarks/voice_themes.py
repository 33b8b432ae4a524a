"""Theme discovery: quality against labelled categories, and speed on 100k texts.

    python -m benchmarks.voice_themes quality    # NMI and ARI, cxloop vs plain TF-IDF + NMF
    python -m benchmarks.voice_themes speed      # discovery on 100k texts, tagging texts/s, peak RSS

quality: on ../shared/data/support_tickets (5,431 IT tickets, labels ``category`` and
``sub_category1``) and on the demo's tickets (labels: the five categories they were generated
from), themes found by cxloop's default (k chosen automatically) against the baseline, plain
scikit-learn defaults (``TfidfVectorizer()`` + ``NMF(n_components=k, random_state=0)``, each text
its topic of largest weight) with k = the number of labelled categories and with cxloop's k.
Untagged texts count as one more cluster.

speed: 100,000 texts sampled from the support tickets and the demo's texts, each perturbed (words
dropped, numbers and names changed; seeded); discovery end to end (cleaning, TF-IDF, choosing k,
NMF, weights of every text), against the baseline fitted with the same k; then tagging the texts
with the stored model (texts/s); peak RSS of the process.

The semantic option (``method="semantic"``: sentence embeddings + k-means,
:mod:`cxloop.voice.themes_semantic`) is measured in the same run when the ``semantic`` extra is
installed (else a line says why not): its rows in quality (k chosen, and k = the labels), and in
speed its discovery (which embeds and assigns every text), tagging the first 5,000 texts again
(embedding them again: no cache) and the peak RSS of the process then. ``speed N semantic-only``
measures only that option, on ``N`` texts (its discovery on 100,000 takes about half an hour).
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import NMF
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from threadpoolctl import threadpool_limits

from cxloop.voice.themes_discover import DiscoveryOptions, discover_topics

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TICKETS = DATA / "support_tickets" / "endava_all_tickets_subset_5431.csv"


def support_tickets() -> pd.DataFrame:
    frame = pd.read_csv(TICKETS)
    frame["text"] = (frame["title"].fillna("") + "\n\n" + frame["body"].fillna("")).str.strip()
    return frame


def demo_texts(customers: int = 5_000) -> pd.DataFrame:
    """The demo's texts (corpus columns) with each ticket's category."""
    from cxloop.demo_store import load_demo
    from cxloop.metrics.source import store_source
    from cxloop.store.store import Store
    from cxloop.voice.corpus import corpus_frame

    with tempfile.TemporaryDirectory() as tmp, Store.open(str(Path(tmp) / "demo.duckdb")) as store:
        load_demo(store, customers=customers, seed=7, as_of=dt.date(2025, 12, 31))
        with store_source(store) as source:
            frame = corpus_frame(source)
        with store.engine.connect() as conn:
            cats = pd.read_sql(
                "SELECT 'ticket:' || source || ':' || ticket_id AS text_id, category FROM tickets", conn
            )
    return frame.merge(cats, on="text_id", how="left")


def baseline(texts: list[str], k: int) -> np.ndarray:
    matrix = TfidfVectorizer().fit_transform(texts)
    return np.asarray(NMF(n_components=k, random_state=0).fit_transform(matrix).argmax(axis=1))


def scores(labels: np.ndarray, found: np.ndarray) -> str:
    return (
        f"NMI {normalized_mutual_info_score(labels, found):.3f}  ARI {adjusted_rand_score(labels, found):.3f}"
    )


def quality() -> None:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)
    cases = []
    tickets = support_tickets()
    cases.append(("support tickets", tickets["text"].tolist(), {"category": tickets["category"].to_numpy(),
                  "sub_category1": tickets["sub_category1"].to_numpy()}))  # fmt: skip
    demo = demo_texts()
    demo = demo[demo["kind"] == "ticket"]
    cases.append(("demo tickets", demo["text"].tolist(), {"category": demo["category"].to_numpy()}))
    for name, texts, labels in cases:
        with threadpool_limits(1, user_api="blas"):
            start = time.perf_counter()
            model = discover_topics(texts)
            found = model.assign(texts)[0]
            seconds = time.perf_counter() - start
        print(f"\n{name}: {len(texts):,} texts; cxloop chose k={model.topics} in {seconds:.1f} s "
              f"({np.mean(found < 0):.1%} untagged)")  # fmt: skip
        for label_name, truth in labels.items():
            n_labels = len(np.unique(truth))
            with threadpool_limits(1, user_api="blas"):
                base_n = baseline(texts, n_labels)
                base_k = baseline(texts, model.topics)
            print(f"  vs {label_name} ({n_labels} labels)")
            print(f"    cxloop (k={model.topics:2d})                 {scores(truth, found)}")
            print(f"    baseline (k={n_labels:2d} = labels)        {scores(truth, base_n)}")
            print(f"    baseline (k={model.topics:2d} = cxloop's k)    {scores(truth, base_k)}")
    semantic_quality(cases)


def semantic_problem() -> str | None:
    from cxloop.voice.themes_semantic import available

    return available()


def semantic_quality(cases: list[tuple[str, list[str], dict[str, np.ndarray]]]) -> None:
    problem = semantic_problem()
    if problem:
        print(f"\nsemantic option not measured: {problem}")
        return
    from cxloop.voice.themes_semantic import cached_embeddings

    for name, texts, labels in cases:
        with cached_embeddings():  # each fit below embeds the texts once in all
            start = time.perf_counter()
            model = discover_topics(texts, DiscoveryOptions(method="semantic"))
            found = model.assign(texts)[0]
            seconds = time.perf_counter() - start
            quality_by_k = model.details["quality"]
            print(f"\n{name}: semantic chose k={model.topics} in {seconds:.1f} s "
                  f"({np.mean(found < 0):.1%} untagged; quality by k {quality_by_k})")  # fmt: skip
            for label_name, truth in labels.items():
                n_labels = len(np.unique(truth))
                at_n = discover_topics(texts, DiscoveryOptions(method="semantic", k=n_labels))
                print(f"  vs {label_name} ({n_labels} labels)")
                print(f"    semantic (k={model.topics:2d} chosen)        {scores(truth, found)}")
                at_n_found = at_n.assign(texts)[0]
                print(f"    semantic (k={n_labels:2d} = labels)        {scores(truth, at_n_found)}")


def synthetic(n: int, seed: int = 0) -> list[str]:
    """``n`` texts sampled from the support tickets and the demo's texts, each perturbed."""
    rng = np.random.default_rng(seed)
    pool = support_tickets()["text"].tolist() + demo_texts(customers=2_000)["text"].tolist()
    names = ["Ana", "Hugo", "Lina", "Marek", "Sofia", "Tomas"]
    out = []
    for i in rng.integers(0, len(pool), n):
        words = pool[i].split()
        keep = rng.random(len(words)) > 0.1
        words = [w for w, k in zip(words, keep, strict=True) if k] or words[:1]
        out.append(" ".join(words) + f" order {rng.integers(1e6)} {names[rng.integers(len(names))]}")
    return out


def speed(n: int = 100_000, semantic_only: bool = False) -> None:
    texts = synthetic(n)
    print(f"{len(texts):,} texts, mean {np.mean([len(t) for t in texts]):.0f} characters")
    if not semantic_only:
        default_speed(texts)
    problem = semantic_problem()
    if problem:
        print(f"semantic option not measured: {problem}")
        return
    semantic_speed(texts)


def default_speed(texts: list[str]) -> None:
    from cxloop.voice.tagging import tag_texts
    from cxloop.voice.taxonomy import Taxonomy, automatic
    from cxloop.voice.themes_model import ThemeModel

    with threadpool_limits(1, user_api="blas"):
        wall, cpu = time.perf_counter(), time.process_time()
        model = discover_topics(texts)
        model.assign(texts)  # every text's theme, as discovery reports it
        d_wall, d_cpu = time.perf_counter() - wall, time.process_time() - cpu
        wall = time.perf_counter()
        baseline(texts, model.topics)
        b_wall = time.perf_counter() - wall
    print(f"discovery (cxloop, k={model.topics} chosen): {d_wall:.1f} s wall, {d_cpu:.1f} s CPU "
          f"(target < 60 s); baseline TF-IDF + NMF at that k: {b_wall:.1f} s "
          f"(cxloop / baseline {d_wall / b_wall:.2f}x)")  # fmt: skip
    stored = ThemeModel.from_bytes(model.to_bytes())
    taxonomy = Taxonomy(1, stored.model_id, automatic(stored), dt.datetime(2026, 1, 1), "bench", "discover")
    wall = time.perf_counter()
    tagged = tag_texts(texts, stored, taxonomy)
    t_wall = time.perf_counter() - wall
    print(f"tagging with the stored model: {len(texts) / t_wall:,.0f} texts/s (target >= 5,000); "
          f"{tagged['theme_id'].notna().mean():.1%} tagged")  # fmt: skip
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


def semantic_speed(texts: list[str]) -> None:
    from cxloop.voice.tagging import tag_texts
    from cxloop.voice.taxonomy import Taxonomy, automatic
    from cxloop.voice.themes_model import ThemeModel
    from cxloop.voice.themes_semantic import cores

    wall, cpu = time.perf_counter(), time.process_time()
    with threadpool_limits(1, user_api="blas"):
        model = discover_topics(texts, DiscoveryOptions(method="semantic"))
    d_wall, d_cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"semantic discovery (k={model.topics} chosen, {model.details['embedded']:,} distinct texts "
          f"embedded and assigned, torch on {cores()} threads): {d_wall:.1f} s wall, {d_cpu:.1f} s CPU "
          f"(target < 60 s)")  # fmt: skip
    stored = ThemeModel.from_bytes(model.to_bytes())
    taxonomy = Taxonomy(1, stored.model_id, automatic(stored), dt.datetime(2026, 1, 1), "bench", "discover")
    sample = texts[: min(len(texts), 5_000)]
    wall = time.perf_counter()
    tagged = tag_texts(sample, stored, taxonomy)
    t_wall = time.perf_counter() - wall
    print(f"semantic tagging with the stored model ({len(sample):,} texts): {len(sample) / t_wall:,.0f} "
          f"texts/s (target >= 5,000); {tagged['theme_id'].notna().mean():.1%} tagged")  # fmt: skip
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


def main(argv: list[str]) -> None:
    what = argv[0] if argv else ""
    if what == "quality":
        quality()
    elif what == "speed":
        speed(int(argv[1]) if len(argv) > 1 else 100_000, semantic_only="semantic-only" in argv[2:])
    else:
        sys.exit("usage: python -m benchmarks.voice_themes quality|speed [N [semantic-only]]")


if __name__ == "__main__":
    main(sys.argv[1:])
