"""Themes: discovery on real texts (the demo's tickets, a support-tickets sample), tagging new
texts without fitting again, curation and its versions, and curation surviving re-discovery."""

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
import sqlalchemy as sa

from cxloop.demo_store import load_demo
from cxloop.errors import ConfigError
from cxloop.store.store import Store
from cxloop.voice import themes, themes_store
from cxloop.voice.taxonomy import automatic
from cxloop.voice.themes_discover import DiscoveryOptions, discover_topics
from cxloop.voice.themes_model import ThemeModel
from cxloop.voice.themes_text import clean

FIXTURE = Path(__file__).parent / "fixtures" / "voice" / "support_tickets_300.csv"
AS_OF = dt.date(2025, 12, 31)
CUTOFF = dt.datetime(2025, 6, 1)
CXLOOP = str(Path(sys.executable).parent / "cxloop")


def clock(day: int) -> dt.datetime:
    return dt.datetime(2026, 1, day, 9, 0)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("themes") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=2_000, seed=7, as_of=AS_OF)
    return path


@pytest.fixture
def demo(demo_file: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_file, path)
    with Store.open(str(path)) as store:
        yield store


def support_tickets() -> pd.DataFrame:
    frame = pd.read_csv(FIXTURE)
    frame["text"] = (frame["title"].fillna("") + "\n\n" + frame["body"].fillna("")).str.strip()
    return frame


def theme_of(store: Store, text: str) -> int:
    return int(themes.tag(store, [text])["theme_id"].iloc[0])


def test_cleaning_removes_ids_contacts_greetings_and_signatures() -> None:
    text = (
        "Hi Anna, order O00000123 (paid 73.98 EUR on 2025-01-02) never came, see "
        "https://track.example.com/x?id=9 or write to a.b@example.com @Northwind. Thanks, Hugo"
    )

    cleaned = clean(text)

    for gone in ("anna", "o00000123", "73.98", "2025", "http", "example", "northwind", "hugo", "thanks"):
        assert gone not in cleaned
    assert "never came" in cleaned
    assert clean("It stopped working. Regards, Ella Virtanen").strip() == "it stopped working."
    assert clean("Very disappointing.").strip() == "very disappointing."


def test_the_demo_tickets_show_their_themes_with_readable_labels(demo: Store) -> None:
    taxonomy = themes.discover(demo, kinds=["ticket"], clock=lambda: clock(1))
    report = themes.theme_report(demo, grain="month")

    labels = " | ".join(report["label"])
    expected = {
        "delivery": ("delivery", "tracking", "parcel", "delivered", "damaged"),
        "returns": ("return",),
        "defects": ("defective", "broke", "stopped working", "quality", "cheap"),
        "billing": ("invoice", "charged", "payment", "refund", "failed"),
        "login": ("log", "password"),
    }
    for concept, words in expected.items():
        assert any(w in labels for w in words), f"no {concept} theme among: {labels}"
    assert 5 <= len(taxonomy.active) <= 25
    assert all(len(label) <= 60 and not any(c.isdigit() for c in label) for label in report["label"])
    assert report["texts"].sum() + report.attrs["untagged"] == report.attrs["texts"]
    assert report["share"].sum() == pytest.approx(
        100 * report["texts"].sum() / report.attrs["texts"], abs=0.1
    )
    top = report.iloc[0]
    assert all(1 <= len(q) <= 3 and len({clean(x) for x in q}) == len(q) for q in report["quotes"])
    assert max(len(q) for q in report["quotes"]) == 3  # distinct once ids and names are cleaned away
    assert sum(p["texts"] for p in top["trend"]) == top["texts"]
    assert -1 <= top["sentiment"] <= 1
    assert (report["sentiment"].dropna() < 0).mean() > 0.7  # tickets are complaints


def test_discovery_is_deterministic_and_the_model_is_plain_arrays() -> None:
    texts = support_tickets()["text"].tolist()

    first = discover_topics(texts)
    second = discover_topics(texts)

    assert first.model_id == second.model_id
    assert np.array_equal(first.components, second.components)
    restored = ThemeModel.from_bytes(first.to_bytes())  # np.load(allow_pickle=False) inside
    assert restored.vocabulary == first.vocabulary
    assert np.array_equal(restored.components, first.components)
    assert np.array_equal(restored.assign(texts[:50])[0], first.assign(texts[:50])[0])
    assert first.details["k_chosen"] == "topic quality"
    assert first.topics == max(
        int(k)
        for k, q in first.details["quality"].items()
        if q >= 0.8 * max(first.details["quality"].values())
    )
    assert not any(ch.isdigit() for term in first.vocabulary for ch in term)
    assert discover_topics(texts, DiscoveryOptions(k=6)).topics == 6


def test_too_few_texts_or_a_bad_k_are_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="too few texts"):
        discover_topics(["late delivery"] * 5)
    with pytest.raises(ConfigError, match="k must be between"):
        discover_topics(["late delivery"] * 50, DiscoveryOptions(k=1))


def test_new_texts_are_tagged_without_fitting_again(demo: Store) -> None:
    themes.discover(demo, kinds=["ticket"], end=CUTOFF, clock=lambda: clock(1))
    models = "SELECT count(*) FROM theme_models"

    tagged = themes.tag(
        demo,
        [
            "The tracking says my parcel was delivered but nothing is at my door.",
            "I cannot log in, the password reset email never arrives.",
            "zzz qqq",
        ],
    )

    labels = tagged["label"].tolist()
    assert any(w in labels[0] for w in ("tracking", "delivered", "courier", "door"))
    assert any(w in labels[1] for w in ("log", "password"))
    assert pd.isna(tagged["theme_id"].iloc[2]) and tagged["by"].iloc[2] is None
    assignments = themes.text_themes(demo, kinds=["ticket"], start=CUTOFF)  # written after the fit
    assert len(assignments) > 0.85 * assignments.attrs["texts"]
    assert list(assignments.columns) == ["text_id", "theme_id", "label", "weight", "by"]
    assert assignments["weight"].between(0, 1.5).all()
    with demo.engine.connect() as conn:
        assert conn.execute(sa.text(models)).scalar() == 1


def test_curation_is_versioned_with_who_and_when(demo: Store) -> None:
    first = themes.discover(demo, kinds=["ticket"], k=5, by="ana", clock=lambda: clock(1))
    a, b, c, d, e = (t.theme_id for t in first.active)

    themes.rename(demo, a, "Login problems", by="ana", clock=lambda: clock(2))
    merged = themes.merge(demo, [b, c], label="Account changes", by="bo", clock=lambda: clock(3))
    themes.delete(demo, d, by="bo", clock=lambda: clock(4))
    ruled = themes.add_rule(
        demo, ["newsletter", "unsubscribe"], label="Newsletter", by="ana", clock=lambda: clock(5)
    )
    unmerged = themes.split(demo, b, by="ana", clock=lambda: clock(6))
    single = themes.split(demo, e, parts=2, by="ana", clock=lambda: clock(7))

    history = themes.history(demo)
    assert [h["version"] for h in history] == [7, 6, 5, 4, 3, 2, 1]
    assert [h["action"] for h in history] == [
        "split",
        "split",
        "rule",
        "delete",
        "merge",
        "rename",
        "discover",
    ]
    assert [h["created_by"] for h in history] == ["ana", "ana", "ana", "bo", "bo", "ana", "ana"]
    assert history[0]["created_at"] == clock(7)
    assert merged.theme(b).label == "Account changes" and len(merged.theme(b).topics) == 2
    with pytest.raises(ConfigError, match=f"no theme {c}"):
        merged.theme(c)
    assert len(unmerged.active) == len(ruled.active) + 1
    assert len(single.active) == len(unmerged.active) + 1 and single.model_id != first.model_id
    assert single.theme(e).label == first.theme(e).label and single.theme(a).label == "Login problems"
    old = themes_store.load_version(demo, 2)
    assert (
        old is not None
        and old.theme(a).label == "Login problems"
        and old.theme(b).label == first.theme(b).label
    )
    report = themes.theme_report(demo, sentiment=False)
    assert d not in set(report["theme_id"])
    assert "Newsletter" in set(report["label"])
    with pytest.raises(ConfigError, match="at least two"):
        themes.merge(demo, [a], by="ana")
    with pytest.raises(ConfigError, match="label must have 1 to 80"):
        themes.rename(demo, a, "  ", by="ana")


def test_a_keyword_rule_wins_over_the_model(demo: Store) -> None:
    taxonomy = themes.discover(demo, kinds=["ticket"], clock=lambda: clock(1))
    text = "I unsubscribed from the newsletter but I still get emails every week."
    by_model = theme_of(demo, text)
    other = next(t.theme_id for t in taxonomy.active if t.theme_id != by_model)

    themes.add_rule(demo, ["Newsletter"], theme_id=other, by="ana", clock=lambda: clock(2))

    tagged = themes.tag(demo, [text, "No newsletters please"])
    assert tagged["theme_id"].iloc[0] == other and tagged["by"].iloc[0] == "rule"
    assert tagged["weight"].iloc[0] == 1.0
    assert tagged["by"].iloc[1] != "rule"  # whole words only


def test_a_curated_merge_survives_rediscovery(demo: Store) -> None:
    before = themes.discover(demo, kinds=["ticket"], end=CUTOFF, by="ana", clock=lambda: clock(1))
    label = "The return label you sent for order O0001 is not accepted at the drop-off point."
    exchange = "I would like to exchange the blender for a different size or colour instead of a refund."
    login = "I cannot log in to my account, the password reset email never arrives."
    parts = [theme_of(demo, label), theme_of(demo, exchange)]
    assert parts[0] != parts[1]
    merged = themes.merge(demo, parts, label="Returns", by="ana", clock=lambda: clock(2))
    themes.rename(demo, theme_of(demo, login), "Login problems", by="ana", clock=lambda: clock(3))

    after = themes.discover(demo, kinds=["ticket"], by="ana", clock=lambda: clock(4))

    assert after.model_id != before.model_id and after.version == 4
    returns = [t for t in after.active if t.label == "Returns"]
    assert len(returns) == 1 and returns[0].theme_id == parts[0] and len(returns[0].topics) >= 2
    assert theme_of(demo, label) == theme_of(demo, exchange) == parts[0]
    assert themes.tag(demo, [login])["label"].iloc[0] == "Login problems"
    assert after.details["previous_model"] == merged.model_id
    assert len(after.details["matches"]) >= len(before.active) - 2


def test_the_stored_taxonomy_on_each_backend(store: Store) -> None:
    model = discover_topics(support_tickets()["text"].tolist(), DiscoveryOptions(k=6))
    themes_store.save_model(store, model, clock(1))
    themes_store.save_model(store, model, clock(1))  # kept once
    first = themes_store.save_version(
        store, model_id=model.model_id, themes=automatic(model), by="ana", action="discover",
        details={"k": 6}, now=clock(1), expected=None,
    )  # fmt: skip

    assert themes_store.load_model(store, model.model_id).vocabulary == model.vocabulary
    loaded = themes.current_taxonomy(store)
    assert loaded is not None and loaded.themes == first.themes and loaded.created_at == clock(1)
    renamed = themes.rename(store, 1, "Access requests", by="bo", clock=lambda: clock(2))
    assert renamed.version == 2 and themes.current_taxonomy(store) == renamed
    with pytest.raises(ConfigError, match="changed meanwhile"):
        themes_store.save_version(
            store, model_id=model.model_id, themes=(), by="cy", action="rename", details={},
            now=clock(3), expected=1,
        )  # fmt: skip
    assert [h["created_by"] for h in themes.history(store)] == ["bo", "ana"]
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM themes"))
        conn.execute(sa.text("DELETE FROM theme_taxonomy"))
    with pytest.raises(ConfigError, match="discover them first"):
        themes.tag(store, ["anything"])


def test_the_cli_discovers_lists_and_curates(demo: Store, tmp_path: Path) -> None:
    url = str(demo.engine.url.database)
    demo.close()

    def cxloop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CXLOOP, "--db", url, "voice", "themes", *args], capture_output=True, text=True, timeout=300,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip

    found = cxloop("discover", "--kind", "ticket", "--k", "8", "--no-sentiment", "--json")
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert len(rows) == 8 and {"theme_id", "label", "terms", "texts", "share", "quotes", "trend"} <= set(
        rows[0]
    )
    first = rows[0]["theme_id"]
    assert cxloop("curate", "rename", str(first), "Top issue", "--by", "ana").returncode == 0
    listed = cxloop("list", "--no-sentiment")
    assert listed.returncode == 0 and "Top issue *" in listed.stdout
    bad = cxloop("curate", "delete", "999")
    assert bad.returncode == 1 and "no theme 999" in bad.stderr
    history = json.loads(cxloop("curate", "history", "--json").stdout)
    assert [h["action"] for h in history] == ["rename", "discover"] and history[0]["created_by"] == "ana"


def test_keyword_rules_are_removed_and_refusals_name_their_field() -> None:
    from cxloop.voice.taxonomy import CurationError, Theme, remove_rule

    mixed = Theme(1, "Billing", topics=(0,), keywords=("refund", "charged twice"))
    ruled = Theme(2, "Newsletter", keywords=("newsletter",), curated=True)
    out = remove_rule((mixed, ruled), 1, ["  Charged   TWICE "])
    assert out[0].keywords == ("refund",) and out[0].curated and out[1] == ruled
    assert remove_rule(out, 1, ["refund"])[0].keywords == ()  # the model's topic stays
    for theme_id, words, field, reason in (
        (1, ["late"], "keywords", "no keyword rule 'late'; its rules are 'refund', 'charged twice'"),
        (2, ["newsletter"], "keywords", "delete the theme rather than its last rule"),
        (1, [" "], "keywords", "name the keyword rule to remove"),
        (3, ["refund"], "theme", "no theme 3"),
    ):
        with pytest.raises(CurationError, match=reason) as refused:
            remove_rule((mixed, ruled), theme_id, words)
        assert refused.value.field == field and isinstance(refused.value, ConfigError)
