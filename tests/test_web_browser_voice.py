"""The voice-of-the-customer pages in a real browser: headless Chromium (Debian's /usr/bin/chromium)
driven by Playwright against `cxloop serve` on a demo store holding a review whose brand and text
are markup — the page draws its charts, and shows that text as text (no script runs).

Fixtures follow tests/test_web_browser.py; without Chromium or Playwright these tests skip,
saying why (under ``CI=true`` they fail instead).
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

import test_web_browser
from cxloop import Store
from test_web_browser import PASSWORD, shoot, sign_in
from test_web_server import CXLOOP, server
from test_web_voice import HOSTILE, SMUGGLED, hostile_review, smuggle_quotes

# The browser and page fixtures of tests/test_web_browser.py (Debian's Chromium, console errors kept).
browser = test_web_browser.browser
page = test_web_browser.page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A demo business with a hostile competitor review, served by `cxloop serve`, and an analyst."""
    folder = tmp_path_factory.mktemp("browser-voice")
    db = str(folder / "demo.duckdb")
    today = dt.date.today().isoformat()
    for args, stdin in (
        (["demo", "--customers", "300", "--seed", "5", "--as-of", today], None),
        (["users", "create", "ana@example.com", "--role", "analyst", "--password-stdin"], PASSWORD + "\n"),
    ):
        done = subprocess.run([CXLOOP, "--db", db, *args], input=stdin, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    with Store.open(db) as store:
        midnight = dt.datetime.combine(dt.date.today(), dt.time())
        hostile_review(store, posted_at=midnight - dt.timedelta(days=20))
        smuggle_quotes(store, midnight - dt.timedelta(days=10))
    with server("--db", db, "serve", cwd=folder) as (base, log):
        yield {"base": base, "log": log}


def watch_dialogs(page: Any) -> list[str]:
    """The messages of alert/confirm dialogs the page opens (a script injected by text would)."""
    dialogs: list[str] = []

    def seen(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    return dialogs


def test_voice_shows_hostile_text_as_text_and_draws_its_charts(page: Any, site: dict[str, Any]) -> None:
    dialogs = watch_dialogs(page)
    sign_in(page, site["base"], "/voice")
    page.wait_for_selector("[data-chart='brands'][data-drawn='true']")
    page.wait_for_selector("[data-chart='sources'][data-drawn='true']")
    brands = page.locator("#brands-chart")
    brands.locator("summary").click()
    cells = brands.locator("td").all_inner_texts()
    assert HOSTILE in cells  # the markup shown as the characters it is
    assert page.locator("#brands-chart td script, #brands-chart td img").count() == 0
    shoot(page, "voice")
    assert dialogs == []
    assert page.problems == [], "the browser reported errors (a Content-Security-Policy violation?)"


def test_competitors_draws_share_of_voice(page: Any, site: dict[str, Any]) -> None:
    dialogs = watch_dialogs(page)
    sign_in(page, site["base"], "/voice/competitors")
    page.wait_for_selector("[data-chart='share'][data-drawn='true']")
    assert HOSTILE in page.locator("#latest td").all_inner_texts()
    shoot(page, "voice-competitors")
    assert dialogs == []
    assert page.problems == []


def test_theme_explorer_shows_quotes_as_text_and_draws_its_chart(page: Any, site: dict[str, Any]) -> None:
    dialogs = watch_dialogs(page)
    sign_in(page, site["base"], "/voice/themes")
    page.wait_for_selector("[data-chart='themes'][data-drawn='true']")
    assert SMUGGLED in page.locator("#themes q").all_inner_texts()
    assert page.locator("#themes q script").count() == 0
    assert page.locator("#themes svg.sparkline").count() > 0
    shoot(page, "voice-themes")
    assert dialogs == []
    assert page.problems == []


def test_a_curator_renames_and_merges_themes_in_the_browser(page: Any, site: dict[str, Any]) -> None:
    """The analyst (``themes.curate``) renames a theme and merges it with another through the
    explorer's forms; each change shows at once; merging a theme with itself is refused at the
    field; restoring the version before the merge brings the merged theme back."""
    dialogs = watch_dialogs(page)
    sign_in(page, site["base"], "/voice/themes")
    page.wait_for_selector("[data-chart='themes'][data-drawn='true']")
    labels = page.locator("#themes tbody th")
    before = labels.count()
    choices = [
        (o.get_attribute("value"), o.inner_text())
        for o in page.locator("#rename-theme option").all()
        if o.get_attribute("value") and "Zyzzyva" not in o.inner_text()
    ]
    (a, _), (b, b_text) = choices[:2]

    page.select_option("#rename-theme", value=a)
    page.fill("#rename-label", "Refunds & returns")
    page.locator("#rename-form button[type=submit]").click()
    page.wait_for_selector("#saved")
    assert "renamed “Refunds & returns”" in page.locator("#saved").inner_text()
    assert any(t.startswith("Refunds & returns") for t in labels.all_inner_texts())

    page.select_option("#merge-theme", value=a)
    page.check(f"#merge-themes input[value='{a}']")
    page.locator("#merge-form button[type=submit]").click()
    page.wait_for_selector("#merge-themes-error")
    assert "at least two different themes" in page.locator("#merge-themes-error").inner_text()
    assert page.locator("#merge-themes").get_attribute("aria-invalid") == "true"
    assert labels.count() == before  # nothing changed

    page.uncheck(f"#merge-themes input[value='{a}']")
    page.check(f"#merge-themes input[value='{b}']")
    page.fill("#merge-label", "Refunds, returns and more")
    page.locator("#merge-form button[type=submit]").click()
    page.wait_for_selector("#saved")
    page.wait_for_selector("[data-chart='themes'][data-drawn='true']")
    shown = labels.all_inner_texts()
    assert labels.count() == before - 1
    assert any(t.startswith("Refunds, returns and more") for t in shown)
    assert not any(t.startswith(b_text.split(" · ", 1)[1]) for t in shown)
    assert "merged as “Refunds, returns and more”" in page.locator("#versions tbody tr").first.inner_text()
    shoot(page, "voice-themes-curated")

    # undo the merge: restore the version before it (the rename), from the history's own button
    renamed = page.locator("#versions tbody tr").nth(1)
    version = renamed.locator("td").first.inner_text()
    renamed.get_by_role("button", name=f"Restore version {version}").click()
    page.wait_for_selector("#saved")
    assert f"restored version {version}" in page.locator("#saved").inner_text()
    page.wait_for_selector("[data-chart='themes'][data-drawn='true']")
    assert labels.count() == before
    assert any(t.startswith("Refunds & returns") for t in labels.all_inner_texts())
    assert page.locator("#versions tbody tr").first.locator("td").last.inner_text() == "current"
    assert dialogs == []
    # the refused merge answered 422 (Chromium reports the status); nothing else went wrong
    assert [p for p in page.problems if "status of 422" not in p] == []
    assert len(page.problems) == 1
