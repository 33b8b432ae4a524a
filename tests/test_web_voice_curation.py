"""Curating the themes in the web (docs/web.md, "Pages"; docs/voice.md, "Curation and versions"):
the theme explorer's forms rename, merge, split and delete themes and add and remove keyword
rules through :mod:`cxloop.voice.themes`, redirect back to the explorer, which shows the change
and the version history; refusals come back at the field with the core's reason and change
nothing; labels and keywords are shown as text; only ``themes.curate`` sees the forms or may
post them; and a curation made here survives the next discovery."""

from __future__ import annotations

import datetime as dt
import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cxloop import Store
from cxloop.demo_store import load_demo
from cxloop.voice import themes, themes_store
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.auth import route_access
from cxloop.web.roles import Capability, Role
from cxloop.web.sessions import SessionPolicy, start_session
from cxloop.web.settings import WebSettings

T0 = dt.datetime(2026, 1, 5, 9, 0)
FIRST_CUTOFF = dt.datetime(2025, 9, 1)
CURATOR = "cara@example.com"
MARKUP = '<script>alert("label")</script>'
FORMS = ["rename", "merge", "split", "delete", "rules", "rules/remove", "restore"]


@pytest.fixture(scope="module")
def base_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-customer demo with themes discovered in its reviews and tickets before September
    2025 (the texts' sentiment scored and cached), and a user of each role."""
    path = tmp_path_factory.mktemp("curation") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=300, seed=3, as_of=dt.date(2026, 1, 1))
        themes.discover(store, kinds=("review", "ticket"), end=FIRST_CUTOFF, by="discovery", clock=lambda: T0)
        themes.theme_report(store)
        for role in Role:
            email = CURATOR if role is Role.ANALYST else f"{role.value}@example.com"
            accounts.create_user(store, email, role, "p" * 12, now=T0)
    return path


@pytest.fixture
def store(base_file: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "demo.duckdb"
    shutil.copy(base_file, path)
    with Store.open(str(path)) as opened:
        yield opened


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    app = create_app(store, WebSettings(database_url=store.url), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def sign_in(client: TestClient, store: Store, email: str) -> str:
    """A session for ``email`` on the client; returns its CSRF token."""
    user = accounts.find_user(store, email)
    assert user is not None
    session = start_session(store, user.id, now=T0, policy=SessionPolicy())
    client.cookies.set("cxloop_session", session.token)
    return session.csrf_token


def post(client: TestClient, csrf: str, form: str, **fields: Any) -> Any:
    return client.post(f"/voice/themes/{form}", data={"csrf_token": csrf, **fields}, follow_redirects=False)


def done(client: TestClient, response: Any) -> str:
    """The explorer a successful curation redirects to."""
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/voice/themes?")
    page = client.get(response.headers["location"])
    assert page.status_code == 200, page.text
    return str(page.text)


def current(store: Store) -> themes.Taxonomy:
    taxonomy = themes.current_taxonomy(store)
    assert taxonomy is not None
    return taxonomy


def by_size(store: Store) -> list[int]:
    """The themes' ids, largest first (as the explorer lists them)."""
    return [int(i) for i in themes.theme_report(store)["theme_id"]]


def declared(client: TestClient, prefix: str) -> dict[tuple[str, str], set[str]]:
    """What each route under ``prefix`` requires, per method and path."""
    return {
        (method, r.path): {str(q) for q in r.requirements}
        for r in route_access(client.app)  # type: ignore[arg-type]
        for method in r.methods
        if r.path.startswith(prefix)
    }


def field_error(page: str, form: str, field: str) -> str:
    """The reason shown at a form's field (the input is marked invalid and points at it)."""
    assert f'aria-describedby="{form}-{field}-error"' in page and 'aria-invalid="true"' in page
    found = re.search(rf'<p class="field-error" id="{form}-{field}-error">(.*?)</p>', page, re.S)
    assert found, f"no error at {form}-{field}"
    return found[1]


def test_a_curator_renames_merges_splits_deletes_and_rules_in_the_explorer(
    client: TestClient, store: Store
) -> None:
    csrf = sign_in(client, store, CURATOR)
    page = client.get("/voice/themes")
    assert page.status_code == 200
    assert all(
        f'action="/voice/themes/{f}"' in page.text for f in ("rename", "merge", "split", "delete", "rules")
    )
    assert '<table id="versions">' in page.text and "themes discovered" in page.text
    a, b, c, d = by_size(store)[:4]

    text = done(client, post(client, csrf, "rename", theme_id=a, label="  Refunds   received "))
    assert current(store).theme(a).label == "Refunds received"  # the core's own cleaning
    assert "Saved as taxonomy version 2: theme" in text and "Refunds received" in text

    done(client, post(client, csrf, "merge", theme_id=b, other=[c], label="Parcels and orders"))
    merged = current(store).theme(b)
    assert merged.label == "Parcels and orders" and len(merged.topics) == 2
    assert c not in {t.theme_id for t in current(store).active}

    text = done(client, post(client, csrf, "split", theme_id=b, parts="2"))
    assert len(current(store).theme(b).topics) == 1 and "split" in text
    assert len(current(store).active) == len(by_size(store))

    done(client, post(client, csrf, "delete", theme_id=d))
    assert d not in by_size(store)

    done(client, post(client, csrf, "rules", keywords="charged twice, Double charge", theme_id=a))
    assert current(store).theme(a).keywords == ("charged twice", "double charge")
    text = done(client, post(client, csrf, "rules", keywords="newsletter", theme_id="", label="Newsletter"))
    newsletter = next(t for t in current(store).active if t.label == "Newsletter")
    assert newsletter.keywords == ("newsletter",) and not newsletter.topics
    assert themes.tag(store, ["Stop the newsletter please"])["label"].iloc[0] == "Newsletter"
    assert "remove the rule “charged twice” of theme" in text.lower()
    done(client, post(client, csrf, "rules/remove", theme_id=a, keyword="charged twice"))
    assert current(store).theme(a).keywords == ("double charge",)

    history = themes.history(store)
    assert [h["action"] for h in history] == [
        "remove-rule", "rule", "rule", "delete", "split", "merge", "rename", "discover",
    ]  # fmt: skip
    assert {h["created_by"] for h in history[:-1]} == {CURATOR}
    page = client.get("/voice/themes")
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td><td><time[^>]*>([^<]*)</time></td><td>([^<]*)</td>",
                      page.text)  # fmt: skip
    assert [int(v) for v, _, _ in rows] == [h["version"] for h in history]
    assert rows[0][2] == CURATOR and rows[0][1] == "2026-01-05 09:00"
    assert "keyword rule “charged twice” removed from theme" in page.text
    assert f"themes {b}, {c} merged as “Parcels and orders”" in page.text
    # the API and the trends follow the new version at once
    api = client.get("/api/v1/voice/themes").json()
    assert api["version"] == history[0]["version"]
    assert "Refunds received" in {t["label"] for t in api["themes"]}


def test_refusals_are_shown_at_the_field_and_change_nothing(client: TestClient, store: Store) -> None:
    csrf = sign_in(client, store, CURATOR)
    before = current(store)
    a, b = by_size(store)[:2]
    themes.add_rule(store, ["zyzzyva"], label="Rule only", by="test", clock=lambda: T0)
    ruled = current(store)
    rule_only = ruled.active[-1].theme_id

    cases = [
        ("rename", {"theme_id": 999, "label": "Anything"}, "theme", "no theme 999"),
        ("rename", {"theme_id": "", "label": "Anything"}, "theme", "choose a theme"),
        ("rename", {"theme_id": a, "label": "   "}, "label", "a theme label must have 1 to 80 characters"),
        ("rename", {"theme_id": a, "label": "x" * 81}, "label", "1 to 80 characters, not 81"),
        ("merge", {"theme_id": a, "other": [a]}, "themes", "merge needs at least two different themes"),
        ("merge", {"theme_id": a, "other": [999]}, "themes", "no theme 999"),
        ("merge", {"theme_id": a}, "themes", "merge needs at least two different themes"),
        ("split", {"theme_id": rule_only, "parts": "2"}, "theme", "made of keyword rules only"),
        ("split", {"theme_id": a, "parts": "11"}, "parts", "parts must be between 2 and 10"),
        ("split", {"theme_id": a, "parts": "two"}, "parts", "parts must be a whole number"),
        ("delete", {"theme_id": 999}, "theme", "no theme 999"),
        ("rules", {"keywords": " , ", "theme_id": a}, "keywords", "a rule needs at least one keyword"),
        ("rules", {"keywords": "y" * 81, "theme_id": a}, "keywords", "at most 80 characters"),
        ("rules", {"keywords": "refund", "theme_id": 999}, "theme", "no theme 999"),
        ("rules", {"keywords": "refund", "theme_id": "", "label": ""}, "label", "1 to 80 characters"),
    ]
    for form, fields, field, reason in cases:
        response = post(client, csrf, form, **fields)
        assert response.status_code == 422, (form, fields, response.status_code)
        shown = field_error(response.text, "rule" if form == "rules" else form, field)
        assert reason in shown, (form, fields, shown)
        assert f"Nothing was changed: {shown}" in response.text
    # the form comes back as it was sent
    response = post(client, csrf, "rename", theme_id=a, label="x" * 81)
    assert f'value="{"x" * 81}"' in response.text
    assert re.search(rf'<option value="{a}" selected>', response.text)
    # a rule that is not there, the last rule of a rule-only theme: said above the rule list
    for fields, reason in (
        ({"theme_id": b, "keyword": "zyzzyva"}, f"theme {b} has no keyword rule 'zyzzyva'"),
        ({"theme_id": rule_only, "keyword": "zyzzyva"}, "delete the theme rather than its last rule"),
    ):
        response = post(client, csrf, "rules/remove", **fields)
        assert response.status_code == 422
        shown = re.search(r'<p class="field-error" id="remove-rule-error">(.*?)</p>', response.text, re.S)
        assert shown and reason in html.unescape(shown[1])
    assert current(store) == ruled and len(themes.history(store)) == before.version + 1


def test_labels_and_keywords_are_shown_as_text(client: TestClient, store: Store) -> None:
    csrf = sign_in(client, store, CURATOR)
    a = by_size(store)[0]
    done(client, post(client, csrf, "rename", theme_id=a, label=MARKUP))
    page = done(client, post(client, csrf, "rules", keywords='<img src=x onerror="alert(1)">', theme_id=a))
    assert "<script>alert" not in page and "<img src=x" not in page
    escaped = "&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;"
    # the explorer, the theme choices of every form, the rule list and the history
    assert page.count(escaped) >= 8
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    refused = post(client, csrf, "rename", theme_id=a, label=MARKUP + "x" * 80)
    assert refused.status_code == 422 and "<script>alert" not in refused.text


def test_a_viewer_sees_the_explorer_without_forms_and_may_not_post(client: TestClient, store: Store) -> None:
    routes = declared(client, "/voice/themes/")
    assert routes == {("POST", f"/voice/themes/{f}"): {Capability.THEMES_CURATE.value} for f in FORMS}
    version = current(store).version
    for role in (Role.VIEWER, Role.AGENT):
        csrf = sign_in(client, store, f"{role.value}@example.com")
        page = client.get("/voice/themes")
        assert page.status_code == 200 and '<table id="themes">' in page.text
        assert "/voice/themes/rename" not in page.text and 'id="curate"' not in page.text
        assert '<table id="versions">' in page.text and "/voice/themes/restore" not in page.text
        for form in FORMS:
            refused = post(client, csrf, form, theme_id=1, label="Mine", keywords="x", keyword="x", other=[2])
            assert refused.status_code == 403, (role, form)
    # a curator's post without the session's CSRF token is refused too
    sign_in(client, store, CURATOR)
    assert post(client, "forged", "rename", theme_id=1, label="Mine").status_code == 403
    assert current(store).version == version


def test_a_curator_restores_an_earlier_version_from_the_history(client: TestClient, store: Store) -> None:
    csrf = sign_in(client, store, CURATOR)
    a, b = by_size(store)[:2]
    quote = str(themes.theme_report(store).set_index("theme_id").loc[a, "quotes"][0])
    done(client, post(client, csrf, "rename", theme_id=b, label="Parcels"))
    page = done(client, post(client, csrf, "delete", theme_id=a))
    assert a not in by_size(store)
    # a Restore button on every row of the history but the current version's
    buttons = re.findall(r'<input type="hidden" name="version" value="(\d+)">', page)
    assert buttons == ["2", "1"] and 'aria-label="Restore version 2"' in page

    version_2 = themes_store.load_version(store, 2)
    assert version_2 is not None

    page = done(client, post(client, csrf, "restore", version="2", grain="week"))

    restored = current(store)
    assert restored.version == 4 and restored.themes == version_2.themes
    assert a in by_size(store) and restored.theme(b).label == "Parcels"
    assert themes.tag(store, [quote])["theme_id"].iloc[0] == a
    assert "Saved as taxonomy version 4: restored version 2." in page
    assert [(h["action"], h["created_by"]) for h in themes.history(store)[:3]] == [
        ("restore", CURATOR), ("delete", CURATOR), ("rename", CURATOR),
    ]  # fmt: skip
    assert f"<td>{CURATOR}</td><td>restored version 2</td><td>current</td>" in page
    assert client.get("/api/v1/voice/themes").json()["version"] == 4

    # refusals: said above the history, nothing written
    for version, reason in (("", "choose a version"), ("99", "no taxonomy version 99; the earlier ones are 1 to 3"),
                            ("4", "version 4 is the current version")):  # fmt: skip
        refused = post(client, csrf, "restore", version=version)
        assert refused.status_code == 422
        shown = re.search(r'<p class="field-error" id="restore-error">(.*?)</p>', refused.text, re.S)
        assert shown and reason in shown[1], (version, refused.text[-2000:])
        assert f"Nothing was changed: {shown[1]}" in refused.text
    assert current(store) == restored


def test_a_curation_made_in_the_web_survives_rediscovery(client: TestClient, store: Store) -> None:
    csrf = sign_in(client, store, CURATOR)
    a, b, c, d = by_size(store)[:4]
    quote = str(themes.theme_report(store).set_index("theme_id").loc[a, "quotes"][0])
    done(client, post(client, csrf, "rename", theme_id=a, label="Refunds received"))
    done(client, post(client, csrf, "merge", theme_id=b, other=[c], label="Parcels and orders"))
    done(client, post(client, csrf, "delete", theme_id=d))
    done(client, post(client, csrf, "rules", keywords="zyzzyva", theme_id="", label="Rule only"))

    # every text now, not only those before September: a new model, new topics
    after = themes.discover(store, kinds=("review", "ticket"), by="discovery", clock=lambda: T0)

    assert after.action == "discover" and after.details["previous_model"] != after.model_id
    assert after.details["new_topics"]  # the later texts brought a topic of their own
    assert after.theme(a).label == "Refunds received"
    assert themes.tag(store, [quote])["theme_id"].iloc[0] == a
    assert after.theme(b).label == "Parcels and orders" and len(after.theme(b).topics) >= 2
    assert d not in {t.theme_id for t in after.active} and c not in {t.theme_id for t in after.active}
    assert any(t.label == "Rule only" and t.keywords == ("zyzzyva",) for t in after.active)
    page = client.get("/voice/themes")
    assert page.status_code == 200
    assert "Refunds received" in page.text and "Parcels and orders" in page.text and "Rule only" in page.text
    assert f"version {after.version}" in page.text
