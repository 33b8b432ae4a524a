"""Theme trends and key drivers on many texts: cxloop against a bare pandas count, in one run.

    python -m benchmarks.voice_trends            # 1,000,000 texts
    python -m benchmarks.voice_trends 100000     # smoke run

Synthetic, seeded texts over 130 weeks: four kinds (ticket, review, post, survey), 20 themes
(one per text), scores for survey answers and reviews, 100,000 customers in three segments. The
baselines are the least any implementation must do: join the texts to their themes and count per
week and theme (for trends), or average the scores per theme and metric (for drivers). Each case
runs three times; the best time is kept. The machine is shared: read ratios, not seconds.
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from cxloop.voice.drivers import key_drivers
from cxloop.voice.trends import period_start, trend_report

AS_OF = dt.datetime(2026, 1, 1)


def synthetic(n: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    at = pd.Timestamp("2023-07-03") + pd.to_timedelta(rng.integers(0, 910 * 86_400, n), unit="s")
    ids = np.char.add("t", np.arange(n).astype(str))
    kind = rng.choice(["ticket", "review", "post", "survey"], n, p=[0.5, 0.2, 0.1, 0.2])
    survey_kind = rng.choice(["nps", "csat"], n)
    score_kind = pd.Series(np.where(kind == "review", "rating", survey_kind)).where(kind != "ticket")
    score_kind = score_kind.where(kind != "post")
    nps = (score_kind == "nps").to_numpy()
    texts = pd.DataFrame(
        {
            "text_id": ids,
            "at": at,
            "kind": kind,
            "customer_id": np.char.add("c", rng.integers(0, 100_000, n).astype(str)),
            "score": np.where(nps, rng.integers(0, 11, n), rng.integers(1, 6, n)).astype(float),
            "scale_min": np.where(nps, 0, 1),
            "scale_max": np.where(nps, 10, 5),
            "score_kind": score_kind,
            "sentiment_score": rng.uniform(-1, 1, n),
        }
    )
    theme = rng.integers(0, 20, n)
    labels = np.char.add("theme ", theme.astype(str))
    tags = pd.DataFrame({"text_id": ids, "theme_id": theme, "label": labels})
    customers = pd.DataFrame(
        {
            "customer_id": np.char.add("c", np.arange(100_000).astype(str)),
            "segment": rng.choice(["consumer", "small_business", "enterprise"], 100_000),
        }
    )
    return texts, tags, customers


def best_of(run: Callable[[], object], times: int = 3) -> float:
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(n: int) -> None:
    texts, tags, customers = synthetic(n)

    def count_baseline() -> None:
        frame = texts[["text_id", "at"]].merge(tags[["text_id", "theme_id"]], on="text_id")
        frame.groupby([period_start(frame["at"], "week"), "theme_id"]).size()

    def mean_baseline() -> None:
        scored = texts[texts["score_kind"].notna()][["text_id", "score_kind", "score", "customer_id"]]
        frame = scored.merge(tags[["text_id", "theme_id"]], on="text_id")
        frame.groupby(["score_kind", "theme_id"])["score"].agg(["mean", "var", "size"])

    cases: list[tuple[str, Callable[[], object], str]] = [
        ("count per week and theme (baseline)", count_baseline, "count"),
        ("trend report, by kind (4 strata)", lambda: trend_report(texts, tags, as_of=AS_OF), "count"),
        (
            "trend report, kinds pooled",
            lambda: trend_report(texts.drop(columns="kind"), tags, as_of=AS_OF),
            "count",
        ),
        ("mean score per theme and metric (baseline)", mean_baseline, "mean"),
        ("key drivers, overall", lambda: key_drivers(texts, tags, as_of=AS_OF), "mean"),
        (
            "key drivers, overall and per segment",
            lambda: key_drivers(texts, tags, as_of=AS_OF, customers=customers, by_segment=True),
            "mean",
        ),
    ]
    print(f"{n:,} texts, 20 themes, 130 weeks; best of 3")
    base: dict[str, float] = {}
    for name, run, family in cases:
        seconds = best_of(run)
        base.setdefault(family, seconds)
        print(f"  {name:45s} {seconds:7.2f} s  {seconds / base[family]:5.1f}x the baseline")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {peak:,.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
