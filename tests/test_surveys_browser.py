"""A survey answered in a real browser: headless Chromium against `cxloop serve` — open the link,
give the score, the comment, see the thank-you page, and the NPS KPI moves at once."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from test_web_browser import browser, shoot  # noqa: F401 - the browser fixture
from test_web_server import CXLOOP, server

FIXTURE = Path(__file__).parent / "fixtures" / "surveys" / "after_order.toml"


def run(db: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([CXLOOP, "--db", db, *args], input=stdin, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def manager_token(db: str) -> str:
    """A manager, Mia, and an API token of hers (made before a server opens the DuckDB file)."""
    run(
        db,
        "users",
        "create",
        "mia@example.com",
        "--role",
        "manager",
        "--password-stdin",
        stdin="p" * 16 + "\n",
    )
    made = run(db, "tokens", "create", "--user", "mia@example.com", "--role", "manager", "--json")
    return str(json.loads(made)["token"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A live survey served by `cxloop serve`, and a manager's API token (made before the server
    starts: the DuckDB file has one writer)."""
    folder = tmp_path_factory.mktemp("survey-browser")
    db = str(folder / "survey.duckdb")
    run(db, "surveys", "create", str(FIXTURE), "--live")
    token = manager_token(db)
    with server("--db", db, "serve", cwd=folder) as (base, log):
        yield {"base": base, "auth": {"Authorization": f"Bearer {token}"}, "log": log}


def nps(site: dict[str, Any]) -> list[dict[str, Any]]:
    got = httpx2.get(site["base"] + "/api/v1/kpis/nps/values?grain=year", headers=site["auth"], timeout=120)
    assert got.status_code == 200, got.text
    return [row for row in got.json() if row.get("n")]


def test_a_customer_answers_on_a_phone_and_the_nps_moves(browser: Any, site: dict[str, Any]) -> None:  # noqa: F811
    made = httpx2.post(
        site["base"] + "/api/v1/surveys/after-order/links",
        json={"customer_ids": ["C1"], "channel": "email"},
        headers=site["auth"],
        timeout=30,
    )
    assert made.status_code == 201, made.text
    [link] = made.json()
    assert nps(site) == []

    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.goto(link["url"])
    page.get_by_text("How likely are you to recommend Acme?").wait_for()
    page.get_by_label("9", exact=True).focus()  # the scale works from the keyboard
    page.keyboard.press("Space")
    assert page.get_by_label("9", exact=True).is_checked()
    shoot(page, "survey-score")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("What did you like most?").fill("Quick delivery <script>alert(1)</script>")
    page.get_by_label("Fast").check()
    page.get_by_role("button", name="Send").click()
    page.get_by_role("heading", name="Thank you!").wait_for()
    shoot(page, "survey-thanks")
    context.close()

    [moved] = nps(site)
    assert moved["n"] == 1 and moved["value"] == pytest.approx(100.0)
    assert problems == []
