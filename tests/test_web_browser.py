"""The pages in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright
against `cxloop serve` on a demo store — sign in, read the dashboard, drill down to the rows.

Each test saves screenshots under ``test-artifacts/screenshots`` (``CXLOOP_ARTIFACTS`` overrides
the folder) for people to look at. Without Chromium or Playwright these tests skip, saying why;
under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import need
from test_web_server import CXLOOP, cli, server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("CXLOOP_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
PASSWORD = "correct horse battery staple"
# Chromium inside a sandboxed, offline machine: no sandbox (root), no background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)")
    need(
        importlib.util.find_spec("playwright") is not None,
        "playwright is not installed (pip install -e '.[dev]')",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A demo business served by `cxloop serve`, an analyst to sign in, and a copy of the store for
    the CLI (the server holds the DuckDB file)."""
    folder = tmp_path_factory.mktemp("browser")
    db, copy = str(folder / "demo.duckdb"), str(folder / "cli.duckdb")
    today = dt.date.today().isoformat()
    # Real processes: the server must find the DuckDB file unlocked.
    for args, stdin in (
        (["demo", "--customers", "400", "--seed", "5", "--as-of", today], None),
        (["users", "create", "ana@example.com", "--role", "analyst", "--password-stdin"], PASSWORD + "\n"),
    ):
        done = subprocess.run([CXLOOP, "--db", db, *args], input=stdin, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    shutil.copy(db, copy)
    with server("--db", db, "serve", cwd=folder) as (base, log):
        yield {"base": base, "cli_db": copy, "log": log}


@pytest.fixture
def page(browser: Any, site: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(120_000)  # a loaded 2-core machine computes the dashboard slowly
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    opened.on("pageerror", lambda e: problems.append(str(e)))
    opened.problems = problems
    yield opened
    context.close()


def shoot(page: Any, name: str) -> None:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Any, base: str, next_path: str = "/") -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.url.split("?")[0] == base + next_path.split("?")[0], page.url


def kpi_show(db: str, kpi: str) -> list[dict[str, Any]]:
    shown = cli(db, f"kpi show {kpi} --json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


def tile_value(page: Any, kpi: str) -> float | None:
    """The exact value behind a tile (its text is rounded for people); None for an empty tile."""
    shown = page.locator(f".tile[data-kpi='{kpi}'] .tile-value").get_attribute("data-value")
    return float(shown) if shown else None


def last_complete_month(rows: list[dict[str, Any]]) -> dict[str, Any]:
    this_month = dt.date.today().replace(day=1).isoformat()
    return [r for r in rows if str(r["period"])[:10] < this_month][-1]


def test_the_dashboard_shows_the_numbers_the_cli_computes(page: Any, site: dict[str, Any]) -> None:
    sign_in(page, site["base"])
    page.wait_for_selector("[data-chart='trend'][data-drawn='true']")
    shoot(page, "dashboard")

    for kpi in ("revenue", "csat", "active_customers", "retention_rate"):
        expected = last_complete_month(kpi_show(site["cli_db"], kpi))["value"]
        assert tile_value(page, kpi) == pytest.approx(expected, rel=1e-9), kpi
    summary = cli(site["cli_db"], "summary --json")
    for row in json.loads(summary.stdout):
        expected = row["value"]
        if expected is None:
            assert tile_value(page, row["kpi"]) is None, row["kpi"]
        else:
            assert tile_value(page, row["kpi"]) == pytest.approx(expected, rel=1e-9), row["kpi"]
    assert page.locator("[data-chart][data-drawn='true']").count() == 3
    assert page.problems == [], "the browser reported errors (a Content-Security-Policy violation?)"


def test_every_chart_offers_its_table_and_a_csv(page: Any, site: dict[str, Any]) -> None:
    sign_in(page, site["base"])
    trend = page.locator("#trend-chart")
    trend.locator("summary").click()
    first_row = trend.locator("tbody tr").first
    assert first_row.is_visible()
    with page.expect_download() as download:
        trend.get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0].startswith("period,value,n,ci_low,ci_high")


def test_a_manager_drills_from_the_nps_down_to_the_detractors(page: Any, site: dict[str, Any]) -> None:
    sign_in(page, site["base"], "/kpis/nps")
    page.wait_for_selector("[data-chart='trend'][data-drawn='true']")
    shoot(page, "kpi-nps")
    latest = page.locator("#values tbody tr").first
    period = latest.get_attribute("data-period")
    latest.get_by_role("link", name="detractors").click()
    page.wait_for_url(re.compile(r"/kpis/nps/rows\?"))
    shoot(page, "nps-detractors")

    classes = page.locator("#rows tbody tr td:nth-child(2)").all_inner_texts()
    expected = next(r for r in kpi_show(site["cli_db"], "nps") if str(r["period"])[:10] == period)
    assert classes and set(classes) == {"detractor"}
    heading = page.locator("main .lede").inner_text()
    assert (
        re.match(rf"{len(classes)} responses \(detractors\)", heading.replace(",", "")) or len(classes) == 100
    )
    assert expected["n"] >= len(classes)
    assert page.problems == []


def test_without_javascript_a_chart_is_its_table(browser: Any, site: dict[str, Any]) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(120_000)
    sign_in(page, site["base"])
    assert page.locator(".tile").count() >= 10
    page.locator("#cohorts-chart summary").click()
    assert page.locator("#cohorts-chart tbody tr").count() > 0
    shoot(page, "dashboard-no-js")
    context.close()


def test_an_analyst_uploads_a_file_previews_it_and_reads_its_reject_report(
    page: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    upload = tmp_path / "new-customers.csv"
    upload.write_text(
        "customer_id,name,email,segment\n"
        "W0001,Wanda <script>alert(1)</script>,wanda@example.com,smb\n"
        ",Nobody,nobody@example.com,smb\n"
    )
    sign_in(page, site["base"], "/imports")
    page.get_by_label("File", exact=True).set_input_files(str(upload))
    page.get_by_label("What it holds").select_option("customers")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#mapping")
    assert "Wanda <script>alert(1)</script>" in page.locator("#preview-rows").inner_text()
    shoot(page, "import-preview")

    page.get_by_role("button", name="Import it").click()
    page.wait_for_selector(".job-status[data-status='done']")
    shoot(page, "import-done")

    assert page.locator("[data-count='loaded']").inner_text() == "1"
    assert page.locator("#rejects tbody tr td").nth(1).inner_text() == "customer_id"
    assert page.problems == []
