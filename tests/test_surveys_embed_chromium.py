"""A survey embedded in another website, in real Chromium: a shop's page (another origin and
another site: http://localhost:P against `cxloop serve` at http://127.0.0.1:Q) shows the iframe
snippet. Where the survey allows the shop, the customer answers inside the frame, sees the
thank-you page and the answer is stored whole, although the frame (cross-site, over http) never
gets the public link's cookie back; where it does not, Chromium refuses to show the frame."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import pytest

from cxloop import Store
from cxloop.surveys import links
from cxloop.surveys.triggers import embed_snippet
from test_surveys_browser import FIXTURE, manager_token, run
from test_web_browser import browser, shoot  # noqa: F401 - the browser fixture
from test_web_server import free_port, server


def _definition(survey_id: str, origins: list[str]) -> str:
    listed = ", ".join(f'"{o}"' for o in origins)
    return (
        FIXTURE.read_text()
        .replace('id = "after-order"', f'id = "{survey_id}"')
        .replace('touchpoint = "order"', f'touchpoint = "order"\nembed_origins = [{listed}]')
    )


class _Shop(http.server.BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write((body or "not found").encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two live public surveys, one allowing the shop's origin, served by `cxloop serve`; the shop's
    own server on another port, named localhost (so it is another site, not only another origin)."""
    folder = tmp_path_factory.mktemp("survey-embed")
    db = str(folder / "survey.duckdb")
    shop_port = free_port()
    shop = f"http://localhost:{shop_port}"
    for survey_id, origins in (("framed", [shop]), ("plain", [])):
        path = folder / f"{survey_id}.toml"
        path.write_text(_definition(survey_id, origins), encoding="utf-8")
        run(db, "surveys", "create", str(path), "--live")
    token = manager_token(db)
    with Store.open(db) as store:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        tokens = {s: links.create_public_link(store, s, now=now).token for s in ("framed", "plain")}

    shop_server = http.server.ThreadingHTTPServer(("127.0.0.1", shop_port), _Shop)
    thread = threading.Thread(target=shop_server.serve_forever, daemon=True)
    thread.start()
    try:
        with server("--db", db, "serve", cwd=folder) as (base, log):
            urls = {s: links.link_url(base, t) for s, t in tokens.items()}
            _Shop.pages = {
                f"/{s}.html": (
                    "<!doctype html><html lang=en><head><meta charset=utf-8><link rel=icon href='data:,'><title>Shop</title></head>"
                    f"<body><h1>Our shop</h1>{embed_snippet(url, kind='iframe', title='Our survey')}</body></html>"
                )
                for s, url in urls.items()
            }
            yield {
                "base": base,
                "shop": shop,
                "urls": urls,
                "auth": {"Authorization": f"Bearer {token}"},
                "log": log,
            }
    finally:
        shop_server.shutdown()
        shop_server.server_close()


def test_a_customer_answers_inside_the_frame_on_the_shops_site(browser: Any, site: dict[str, Any]) -> None:  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r))
    page.goto(site["shop"] + "/framed.html")
    assert page.url.startswith("http://localhost:")

    frame = page.frame_locator("iframe[title='Our survey']")
    frame.get_by_text("How likely are you to recommend Acme?").wait_for()
    frame.get_by_label("9", exact=True).check()
    frame.get_by_role("button", name="Next").click()
    frame.get_by_label("What did you like most?").fill("Framed, and it worked")
    frame.get_by_label("Fast").check()
    frame.get_by_role("button", name="Send").click()
    frame.get_by_role("heading", name="Thank you!").wait_for()
    shoot(page, "survey-embedded-thanks")
    # a cross-site frame over http: the public link's cookie never came back, the form carried on
    details = [r for r in requests if r.method == "POST" and r.url.endswith("/more")]
    assert len(details) == 1 and "cxs_" not in (details[0].all_headers().get("cookie") or "")
    assert "reply=" in (details[0].post_data or "")
    context.close()

    got = httpx2.get(site["base"] + "/api/v1/surveys/framed/comments", headers=site["auth"], timeout=60)
    assert got.status_code == 200, got.text
    [answer] = got.json()
    assert answer["comment"] == "Framed, and it worked" and answer["score"] == 9
    assert problems == [], problems


def test_chromium_refuses_to_frame_a_survey_that_does_not_allow_the_site(
    browser: Any,  # noqa: F811
    site: dict[str, Any],
) -> None:
    page = browser.new_page()
    page.set_default_timeout(60_000)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "frame-ancestors" in m.text else None)
    page.goto(site["shop"] + "/plain.html")
    page.get_by_role("heading", name="Our shop").wait_for()

    deadline = time.monotonic() + 30
    while not refused and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert refused and "frame-ancestors 'self'" in refused[0], refused
    [framed] = [f for f in page.frames if f is not page.main_frame]
    assert "How likely" not in framed.content()
    # the same page, opened on its own, works
    page.goto(site["urls"]["plain"])
    page.get_by_text("How likely are you to recommend Acme?").wait_for()
    page.close()


def test_the_answer_page_of_the_framed_survey_names_the_shop(site: dict[str, Any]) -> None:
    got = httpx2.get(site["urls"]["framed"], timeout=60)
    assert got.headers["content-security-policy"].endswith(f"frame-ancestors 'self' {site['shop']}")
    assert Path(site["log"]).exists()
