"""Restoring an earlier version of the curated themes (docs/voice.md, "Curation and versions"): a
new version equal to the chosen one, recorded with who and when, the history untouched; a
deleted theme comes back for tagging, the theme report and trends; refusals name the field and
write nothing; and the CLI's ``cxloop voice themes curate restore``."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import test_voice_themes
from cxloop.demo_store import load_demo
from cxloop.store.store import Store
from cxloop.voice import themes, themes_store
from cxloop.voice.taxonomy import CurationError
from cxloop.voice.trends import store_trend_report, taxonomy_themes
from test_voice_themes import AS_OF, CXLOOP, clock

CUTOFF = dt.datetime(2025, 7, 1)
# A copy of demo_file (below) per test, as in tests/test_voice_themes.py.
demo = test_voice_themes.demo


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600-customer demo with themes discovered on its tickets before July 2025."""
    path = tmp_path_factory.mktemp("restore") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=600, seed=5, as_of=AS_OF)
        themes.discover(store, kinds=["ticket"], end=CUTOFF, k=6, by="ana", clock=lambda: clock(1))
    return path


def current(store: Store) -> themes.Taxonomy:
    taxonomy = themes.current_taxonomy(store)
    assert taxonomy is not None
    return taxonomy


def a_quote_of(store: Store) -> tuple[int, str]:
    """The largest theme and one of its quotes (a text the model gives that theme)."""
    report = themes.theme_report(store, sentiment=False)
    return int(report["theme_id"].iloc[0]), str(report["quotes"].iloc[0][0])


def trend_themes(store: Store) -> set[int]:
    report = store_trend_report(store, as_of=dt.datetime(2026, 1, 1), kinds=["ticket"], grain="month")
    return {int(t) for t in report.trends["theme_id"].unique()}


def test_restoring_a_version_brings_a_deleted_theme_back(demo: Store) -> None:
    theme, quote = a_quote_of(demo)
    other = next(t.theme_id for t in current(demo).active if t.theme_id != theme)
    renamed = themes.rename(demo, other, "Login problems", by="ana", clock=lambda: clock(2))
    assert theme in trend_themes(demo)
    deleted = themes.delete(demo, theme, by="bo", clock=lambda: clock(3))
    assert pd.isna(themes.tag(demo, [quote])["theme_id"].iloc[0])
    assert theme not in set(themes.text_themes(demo, kinds=["ticket"])["theme_id"])
    assert theme not in trend_themes(demo)

    restored = themes.restore(demo, renamed.version, by="cy", clock=lambda: clock(4))

    # a new version, equal to the one restored (model and themes), saying which one it restored
    assert restored.version == deleted.version + 1 == 4
    assert restored.themes == renamed.themes and restored.model_id == renamed.model_id
    assert current(demo) == restored
    assert (restored.action, restored.created_by, restored.created_at) == ("restore", "cy", clock(4))
    assert restored.details["version"] == renamed.version
    # the history is kept, not rewritten: the deletion is still there, as it was
    history = themes.history(demo)
    assert [(h["version"], h["action"], h["created_by"]) for h in history] == [
        (4, "restore", "cy"), (3, "delete", "bo"), (2, "rename", "ana"), (1, "discover", "ana"),
    ]  # fmt: skip
    assert themes_store.load_version(demo, 3) == deleted
    # tagging, the theme report and trends see the theme again
    assert int(themes.tag(demo, [quote])["theme_id"].iloc[0]) == theme
    assert theme in set(themes.text_themes(demo, kinds=["ticket"])["theme_id"])
    report = themes.theme_report(demo, sentiment=False).set_index("theme_id")
    assert theme in report.index and report.loc[other, "label"] == "Login problems"
    assert taxonomy_themes(demo).version == restored.version
    assert theme in trend_themes(demo)
    # and curation goes on from the restored version
    again = themes.rename(demo, theme, "Back again", by="ana", clock=lambda: clock(5))
    assert again.version == 5 and again.theme(theme).label == "Back again"


def test_restoring_a_version_before_a_discovery_brings_its_model_back(demo: Store) -> None:
    first = current(demo)
    merged = themes.merge(demo, [t.theme_id for t in first.active[:2]], label="Both", by="ana")
    later = themes.discover(demo, kinds=["ticket"], by="ana", clock=lambda: clock(3))
    assert later.model_id != first.model_id

    restored = themes.restore(demo, merged.version, by="ana", clock=lambda: clock(4))

    assert restored.model_id == first.model_id and restored.themes == merged.themes
    assert restored.details == {"version": merged.version, "previous_model": later.model_id}
    tagged = themes.tag(demo, ["I cannot log in to my account"])  # tags against the restored model
    assert len(tagged) == 1
    # the next discovery carries the restored curation over, as after any change
    after = themes.discover(demo, kinds=["ticket"], by="ana", clock=lambda: clock(5))
    assert after.details["previous_model"] == first.model_id
    assert any(t.label == "Both" for t in after.active)


def test_a_refused_restore_names_the_version_and_writes_nothing(demo: Store) -> None:
    with pytest.raises(CurationError, match="version 1 is the current version") as refused:
        themes.restore(demo, 1, by="ana")
    assert refused.value.field == "version"
    with pytest.raises(CurationError, match="no taxonomy version 2; none is earlier"):
        themes.restore(demo, 2, by="ana")
    themes.delete(demo, current(demo).active[0].theme_id, by="ana", clock=lambda: clock(2))
    for version, reason in ((0, "no taxonomy version 0; the earlier ones are 1 to 1"),
                            (7, "no taxonomy version 7; the earlier ones are 1 to 1"),
                            (2, "version 2 is the current version")):  # fmt: skip
        with pytest.raises(CurationError, match=reason) as refused:
            themes.restore(demo, version, by="ana")
        assert refused.value.field == "version"
    assert [h["version"] for h in themes.history(demo)] == [2, 1]


def test_the_cli_restores_a_version(demo: Store) -> None:
    url = str(demo.engine.url.database)
    theme = current(demo).active[0].theme_id
    themes.delete(demo, theme, by="ana", clock=lambda: clock(2))
    demo.close()

    def cxloop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CXLOOP, "--db", url, "voice", "themes", "curate", *args], capture_output=True, text=True,
            timeout=300, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip

    done = cxloop("restore", "1", "--by", "cy")
    assert done.returncode == 0, done.stderr
    assert "themes version 3 (restore by cy)" in done.stdout
    refused = cxloop("restore", "3")
    assert refused.returncode == 1 and "version 3 is the current version" in refused.stderr
    history = json.loads(cxloop("history", "--json").stdout)
    assert [(h["action"], h["created_by"]) for h in history] == [
        ("restore", "cy"), ("delete", "ana"), ("discover", "ana"),
    ]  # fmt: skip
    assert history[0]["details"]["version"] == 1
    with Store.open(url) as store:
        assert theme in {t.theme_id for t in current(store).active}
