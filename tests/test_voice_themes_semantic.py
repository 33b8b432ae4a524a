"""The semantic theme option (sentence embeddings + k-means): the real all-MiniLM-L6-v2 model from
the ``semantic`` extra, on real texts (the demo's tickets, a support-tickets sample).

The extra is part of ``dev``, so CI runs these (under ``CI=true`` a missing extra fails them);
elsewhere, without it, they skip and say so. What runs everywhere: the option fails clearly
without the extra. Each distinct text is embedded once per module (``cached_embeddings``): the
tests are about what is done with the embeddings, and the model's speed is the benchmark's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import need
from cxloop.demo_store import load_demo
from cxloop.errors import ConfigError
from cxloop.store.store import Store
from cxloop.voice import themes, themes_semantic
from cxloop.voice.themes_discover import DiscoveryOptions, discover_topics
from cxloop.voice.themes_model import ThemeModel

FIXTURE = Path(__file__).parent / "fixtures" / "voice" / "support_tickets_300.csv"
AS_OF = dt.date(2025, 12, 31)
CXLOOP = str(Path(sys.executable).parent / "cxloop")
SEMANTIC = DiscoveryOptions(method="semantic")


def clock(day: int) -> dt.datetime:
    return dt.datetime(2026, 1, day, 9, 0)


@pytest.fixture(scope="module")
def encoder_ready() -> Iterator[None]:
    problem = themes_semantic.available()
    need(problem is None, f"the semantic extra is not installed ({problem})")
    with themes_semantic.cached_embeddings():
        yield


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory, encoder_ready: None) -> Path:
    path = tmp_path_factory.mktemp("semantic") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=2_000, seed=7, as_of=AS_OF)
    return path


@pytest.fixture
def demo(demo_file: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_file, path)
    with Store.open(str(path)) as store:
        yield store


def support_texts() -> list[str]:
    frame = pd.read_csv(FIXTURE)
    return (frame["title"].fillna("") + "\n\n" + frame["body"].fillna("")).str.strip().tolist()


def test_without_the_extra_the_option_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    themes_semantic._encoder.cache_clear()
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails: not installed
    try:
        with pytest.raises(ConfigError, match=r"pip install 'cxloop\[semantic\]'"):
            discover_topics(support_texts(), SEMANTIC)
        assert "cxloop[semantic]" in (themes_semantic.available() or "")
    finally:
        themes_semantic._encoder.cache_clear()
    with pytest.raises(ConfigError, match="method must be one of nmf, semantic"):
        discover_topics(support_texts(), DiscoveryOptions(method="bert"))


def test_semantic_themes_of_the_demo_tickets_are_readable_and_tag_new_texts(demo: Store) -> None:
    taxonomy = themes.discover(demo, kinds=["ticket"], method="semantic", clock=lambda: clock(1))
    report = themes.theme_report(demo, grain="month", sentiment=False)

    labels = " | ".join(report["label"])
    expected = {
        "delivery": ("delivery", "tracking", "parcel", "delivered", "damaged", "courier"),
        "returns": ("return", "exchange", "refund"),
        "defects": ("defective", "broke", "stopped working", "quality", "cheap"),
        "billing": ("invoice", "charged", "payment", "refund", "failed"),
        "login": ("log", "password", "account"),
    }
    for concept, words in expected.items():
        assert any(w in labels for w in words), f"no {concept} theme among: {labels}"
    assert 5 <= len(taxonomy.active) <= 25
    assert all(len(label) <= 60 and not any(c.isdigit() for c in label) for label in report["label"])
    assert all(1 <= len(q) <= 3 for q in report["quotes"]) and all(len(t) >= 3 for t in report["terms"])
    assert report["texts"].sum() + report.attrs["untagged"] == report.attrs["texts"]
    assert report.attrs["untagged"] < 0.05 * report.attrs["texts"]  # outliers only
    model = themes_store_model(demo)
    assert model.semantic and model.encoder == "all-MiniLM-L6-v2" and model.centroids is not None
    assert model.centroids.shape == (model.topics, 384)
    assert model.details["method"] == "embeddings-kmeans" and model.details["k_chosen"] == "topic quality"

    tagged = themes.tag(
        demo,
        [
            "The courier says my package was dropped off but I never received it.",
            "I can't sign in: the reset link in the e-mail does not work.",
            "12345",
        ],
    )
    assert any(
        w in tagged["label"].iloc[0] for w in ("tracking", "delivered", "courier", "delivery", "parcel")
    )
    assert any(w in tagged["label"].iloc[1] for w in ("log", "password", "account", "email"))
    assert pd.isna(tagged["theme_id"].iloc[2])  # nothing left once cleaned: no theme
    assert tagged["weight"].iloc[:2].between(0, 1).all()
    assignments = themes.text_themes(demo, kinds=["ticket"])
    assert list(assignments.columns) == ["text_id", "theme_id", "label", "weight", "by"]


def themes_store_model(store: Store) -> ThemeModel:
    from cxloop.voice import themes_store

    taxonomy = themes.current_taxonomy(store)
    assert taxonomy is not None
    return themes_store.load_model(store, taxonomy.model_id)


def test_semantic_discovery_is_deterministic_and_stored_as_plain_arrays(encoder_ready: None) -> None:
    texts = support_texts()

    first = discover_topics(texts, SEMANTIC)
    second = discover_topics(texts, SEMANTIC)

    assert first.model_id == second.model_id and first.model_id.startswith("sem-")
    assert first.centroids is not None and second.centroids is not None
    assert np.array_equal(first.centroids, second.centroids)
    restored = ThemeModel.from_bytes(first.to_bytes())  # np.load(allow_pickle=False) inside
    assert restored.semantic and restored.encoder == first.encoder
    assert np.array_equal(restored.assign(texts[:50])[0], first.assign(texts[:50])[0])
    assert first.topics == max(
        int(k)
        for k, q in first.details["quality"].items()
        if q >= 0.8 * max(first.details["quality"].values())
    )
    assert discover_topics(texts, DiscoveryOptions(method="semantic", k=6)).topics == 6
    # Each text is its nearest centroid's only: one weight per row, outliers only untagged.
    topic, _, w = first.assign(texts)
    assert ((w > 0).sum(axis=1) <= 1).all() and np.mean(topic >= 0) > 0.95


def test_curation_works_on_a_semantic_model_and_survives_a_switch_of_method(demo: Store) -> None:
    first = themes.discover(demo, kinds=["ticket"], method="semantic", k=6, by="ana", clock=lambda: clock(1))
    a, b, c, *_ = (t.theme_id for t in first.active)

    themes.rename(demo, a, "First issue", by="ana", clock=lambda: clock(2))
    merged = themes.merge(demo, [b, c], label="Merged", by="ana", clock=lambda: clock(3))
    single = themes.split(demo, a, parts=2, by="ana", clock=lambda: clock(4))

    assert len(merged.theme(b).topics) == 2
    assert len(single.active) == len(merged.active) + 1 and single.model_id != first.model_id
    assert single.theme(a).label == "First issue"
    split_model = themes_store_model(demo)
    assert split_model.semantic and split_model.centroids is not None
    assert split_model.centroids.shape[0] == split_model.topics == 7
    report = themes.theme_report(demo, sentiment=False)
    assert {"First issue", "Merged"} <= set(report["label"])
    # The default method after a semantic one: topics are matched by their terms, names carry over.
    after = themes.discover(demo, kinds=["ticket"], by="ana", clock=lambda: clock(5))
    assert after.details["previous_model"] == single.model_id and len(after.details["matches"]) >= 3
    assert not themes_store_model(demo).semantic


def test_the_cli_discovers_with_the_semantic_method(demo: Store) -> None:
    url = str(demo.engine.url.database)
    demo.close()

    def cxloop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CXLOOP, "--db", url, "voice", "themes", *args], capture_output=True, text=True, timeout=600,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip

    found = cxloop(
        "discover", "--kind", "ticket", "--method", "semantic", "--k", "7", "--no-sentiment", "--json"
    )
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert len(rows) == 7 and all(r["terms"] and r["quotes"] for r in rows)
    assert "Loading weights" not in found.stderr
    bad = cxloop("discover", "--method", "bert")
    assert bad.returncode == 2 and "nmf or semantic" in bad.stderr
