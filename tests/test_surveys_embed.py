"""Embedding a survey in another website: the origins a definition allows (checked like any other
field), the answer pages' frame-ancestors, the public link's cookie inside a frame, the answer
finished without any cookie, and the snippet (function, CLI, page)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import rows, write
from cxloop import Store
from cxloop.cli.app import app as cli
from cxloop.errors import InputError
from cxloop.surveys import links, versions
from cxloop.surveys.definitions import check_origin, load_definition, parse_definition
from cxloop.surveys.triggers import embed_note, embed_snippet
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings
from test_web_app import sign_in

T0 = dt.datetime(2026, 3, 2, 10, 0)
FIXTURE = Path(__file__).parent / "fixtures" / "surveys" / "after_order.toml"
SHOP = "https://shop.example.com"
BASE = {"id": "x", "name": "x", "main": {"kind": "nps"}}


# -- the definition ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("HTTPS://Shop.Example.COM/", "https://shop.example.com"),  # lower case, no trailing /
        ("https://shop.example.com:8443", "https://shop.example.com:8443"),
        ("https://*.example.com", "https://*.example.com"),  # every subdomain, as CSP allows
        ("http://localhost:8080", "http://localhost:8080"),  # local development and tests
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://10.1.2.3", "https://10.1.2.3"),
    ],
)
def test_an_origin_is_kept_as_frame_ancestors_takes_it(given: str, kept: str) -> None:
    assert check_origin(given) == kept


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("http://shop.example.com", "use https://"),
        ("ftp://shop.example.com", "must be https://"),
        ("shop.example.com", "not an origin like https://"),
        ("*", "not an origin"),
        ("https://*", "a wildcard covers the subdomains of a domain"),
        ("https://*.com", "a wildcard covers the subdomains of a domain"),
        ("https://shop.*.com", "is not a host name"),
        ("http://*.localhost", "a wildcard covers"),
        ("https://shop.example.com/survey", "no path, query or fragment"),
        ("https://shop.example.com?x=1", "no path, query or fragment"),
        ("https://user:pw@shop.example.com", "no user name or password"),
        ("https://shop.example.com:99999", "the port must be a number from 1 to 65535"),
        ("https://shop.example.com:*", "the port must be a number"),
        ("https://[::1]:8080", "no IPv6 address"),
        ("https://", "the host is missing"),
        ("https://shop.example.com 'unsafe-inline'", "is not a host name"),  # no CSP injection
        ("https://shop.example.com;script-src *", "is not a host name"),
        ("https://shop.example.com\n:443", "is not a host name"),  # no header injection
        ("'self'", "not an origin"),
    ],
)
def test_a_bad_origin_is_refused_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        check_origin(given)


def test_a_bad_origin_in_a_file_is_named_by_file_field_and_reason(tmp_path: Path) -> None:
    text = FIXTURE.read_text().replace(
        'touchpoint = "order"', f'touchpoint = "order"\nembed_origins = ["{SHOP}", "http://shop.example.com"]'
    )
    bad = write(tmp_path / "s.toml", text)

    with pytest.raises(InputError) as refused:
        load_definition(bad)

    assert str(refused.value) == (
        f"{bad}: field 'embed_origins[1]': 'http://shop.example.com': "
        "use https:// (http:// only for localhost and 127.0.0.1)"
    )
    with pytest.raises(
        InputError, match=re.escape("s.json: field 'embed_origins': Input should be a valid list")
    ):
        parse_definition({**BASE, "embed_origins": SHOP}, file="s.json")
    with pytest.raises(InputError, match="field 'embed_origins': at most 20 sites, not 21"):
        parse_definition({**BASE, "embed_origins": [f"https://s{i}.example.com" for i in range(21)]})


def test_origins_are_kept_once_and_stored_with_the_version_without_a_migration(duck_store: Store) -> None:
    given = parse_definition({**BASE, "embed_origins": [SHOP, SHOP + "/", "http://localhost:8080"]})
    assert given.embed_origins == [SHOP, "http://localhost:8080"]
    assert parse_definition(BASE).frame_ancestors == ()

    versions.create_survey(duck_store, given, now=T0)  # the definition is JSON in survey_versions
    assert versions.get_survey(duck_store, "x").definition.frame_ancestors == (SHOP, "http://localhost:8080")
    versions.edit_survey(duck_store, "x", parse_definition(BASE), now=T0)
    assert versions.get_survey(duck_store, "x").definition.frame_ancestors == ()


# -- the answer pages ----------------------------------------------------------------------------


def _embeddable(text: str, origins: list[str]) -> str:
    listed = ", ".join(f'"{o}"' for o in origins)
    return text.replace('touchpoint = "order"', f'touchpoint = "order"\nembed_origins = [{listed}]')


@pytest.fixture
def store_with_surveys(duck_store: Store, tmp_path: Path) -> Store:
    """after-order, allowing no other site; framed, the same survey allowing the shop."""
    versions.create_survey(duck_store, load_definition(FIXTURE), now=T0)
    versions.set_state(duck_store, "after-order", "live", now=T0)
    framed = _embeddable(FIXTURE.read_text(), [SHOP, "http://localhost:8080"]).replace(
        'id = "after-order"', 'id = "framed"'
    )
    versions.create_survey(duck_store, load_definition(write(tmp_path / "framed.toml", framed)), now=T0)
    versions.set_state(duck_store, "framed", "live", now=T0)
    return duck_store


def _client(store: Store, base_url: str = "http://testserver") -> TestClient:
    app = create_app(store, WebSettings(database_url=store.url), clock=lambda: T0)
    return TestClient(app, base_url=base_url, raise_server_exceptions=False)


@pytest.fixture
def client(store_with_surveys: Store) -> Iterator[TestClient]:
    with _client(store_with_surveys) as c:
        yield c


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, html
    return found[1]


def frame_ancestors(response: Any) -> str:
    found = re.search(r"frame-ancestors ([^;]*)", response.headers["content-security-policy"])
    assert found
    return found[1].strip()


def test_the_pages_of_a_survey_name_the_sites_that_may_frame_them(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    framed = links.create_public_link(store, "framed", now=T0).token
    plain = links.create_public_link(store, "after-order", now=T0).token

    score = client.get(f"/s/{framed}")
    assert frame_ancestors(score) == f"'self' {SHOP} http://localhost:8080"
    assert "x-frame-options" not in score.headers  # it cannot name sites; frame-ancestors rules
    assert "script-src" not in score.headers["content-security-policy"]  # still no script at all
    scored = client.post(f"/s/{framed}", data={"form_token": field(score.text, "form_token"), "score": "9"})
    assert frame_ancestors(scored) == f"'self' {SHOP} http://localhost:8080"  # the second step
    done = client.post(f"/s/{framed}/more", data={"form_token": field(score.text, "form_token")})
    assert "Thank you!" in done.text and SHOP in frame_ancestors(done)

    other = client.get(f"/s/{plain}")  # a survey allowing no other site: this server only
    assert frame_ancestors(other) == "'self'" and other.headers["x-frame-options"] == "SAMEORIGIN"
    forged = client.get("/s/" + "A" * 32)
    assert forged.status_code == 404 and frame_ancestors(forged) == "'self'"
    home = client.get("/login")  # every other page: no framing at all
    assert frame_ancestors(home) == "'none'" and home.headers["x-frame-options"] == "DENY"

    versions.set_state(store, "framed", "closed", now=T0)
    closed = client.get(f"/s/{framed}")  # an embedded survey that closed says so in the frame
    assert closed.status_code == 409 and "closed" in closed.text and SHOP in frame_ancestors(closed)


def test_the_builders_preview_is_not_framed_by_the_survey_sites(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    accounts.create_user(store, "m@example.com", Role.MANAGER, "p" * 12, now=T0)
    sign_in(client, "m@example.com", "p" * 12)

    preview = client.get("/surveys/framed/preview")

    assert "Preview" in preview.text and frame_ancestors(preview) == "'self'"


def _scored(c: TestClient, token: str, **headers: str) -> Any:
    page = c.get(f"/s/{token}")
    return c.post(
        f"/s/{token}",
        data={"form_token": field(page.text, "form_token"), "score": "8"},
        headers=headers,
        follow_redirects=False,
    )


@pytest.mark.parametrize("base_url", ["http://testserver", "https://cx.example.com"])
def test_the_public_cookie_is_lax_so_no_other_site_can_post_with_it(
    store_with_surveys: Store, base_url: str
) -> None:
    """A public link's form token is no secret (anyone may open the link), so a cookie sent with a
    post from another site's page would let that page change the respondent's answer."""
    with _client(store_with_surveys, base_url) as c:
        token = links.create_public_link(store_with_surveys, "framed", now=T0).token
        scored = _scored(c, token)
    cookie = scored.headers["set-cookie"]
    assert cookie.startswith("cxs_") and f"Path=/s/{token}" in cookie
    assert "samesite=lax" in cookie.lower() and "httponly" in cookie.lower()
    assert ("secure" in cookie.lower()) == base_url.startswith("https")
    assert "partitioned" not in cookie.lower()
    assert ("strict-transport-security" in scored.headers) == base_url.startswith("https")


def test_the_reply_goes_into_the_address_only_inside_a_frame(client: TestClient) -> None:
    """An address in the address bar gets copied and shared: it must not hand over the answer."""
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    top = _scored(client, links.create_public_link(store, "framed", now=T0).token)
    framed = _scored(
        client, links.create_public_link(store, "framed", now=T0).token, **{"Sec-Fetch-Dest": "iframe"}
    )

    assert "?r=" not in top.headers["location"]
    assert "?r=" in framed.headers["location"]


def test_the_browsers_own_cookie_wins_over_a_reply_carried_along(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    token = links.create_public_link(store, "framed", now=T0).token
    mine = _scored(client, token)
    [(my_reply,)] = rows(store, "SELECT reply_id FROM survey_replies")
    client.cookies.clear()
    theirs = _scored(client, token)  # someone else's answer through the same public link
    their_reply = next(r for (r,) in rows(store, "SELECT reply_id FROM survey_replies") if r != my_reply)
    assert mine.status_code == theirs.status_code == 303

    # Their browser opens an address carrying my reply: it still shows and edits theirs.
    more = client.get(f"/s/{token}/more?r={my_reply}")
    assert field(more.text, "reply") == their_reply


def test_a_frame_that_gets_no_cookie_still_finishes_its_answer(client: TestClient) -> None:
    """A cross-site frame over http (or a browser refusing third-party cookies) never sends the
    cookie back: the reply's id travels with the visit, so the comment joins the score."""
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    token = links.create_public_link(store, "framed", now=T0).token
    page = client.get(f"/s/{token}")
    form = field(page.text, "form_token")
    assert 'name="reply"' not in page.text  # nothing to carry yet

    scored = client.post(
        f"/s/{token}",
        data={"form_token": form, "score": "3"},
        headers={"Sec-Fetch-Dest": "iframe"},  # what a browser says of a navigation inside a frame
        follow_redirects=False,
    )
    [(reply,)] = rows(store, "SELECT reply_id FROM survey_replies")
    assert scored.headers["location"] == f"/s/{token}/more?r={reply}"
    client.cookies.clear()  # the cookie never comes back
    more = client.get(scored.headers["location"])
    assert "What went wrong?" in more.text and field(more.text, "reply") == reply
    refused = client.post(  # a wrong answer: the form again, still carrying the reply
        f"/s/{token}/more", data={"form_token": form, "reply": reply, "q_delivery": "teleport"}
    )
    assert refused.status_code == 422 and field(refused.text, "reply") == reply
    done = client.post(
        f"/s/{token}/more",
        data={"form_token": form, "reply": reply, "comment": "Late again", "q_delivery": "slow"},
    )
    assert done.status_code == 200 and "Thank you!" in done.text

    assert rows(store, "SELECT count(*), count(completed_at) FROM survey_replies") == [(1, 1)]
    assert rows(store, "SELECT score, comment FROM survey_responses WHERE question_id = 'main'") == [
        (3, "Late again")
    ]
    assert rows(store, "SELECT count(*) FROM survey_responses WHERE question_id = 'delivery'") == [(1,)]
    # the CSRF defence is unchanged: the reply's id is no substitute for the form token
    forged = client.post(f"/s/{token}/more", data={"form_token": "forged", "reply": reply, "comment": "x"})
    assert forged.status_code == 403
    # another link's reply, or a made-up one, finds nothing: give the score first
    other = links.create_public_link(store, "framed", now=T0).token
    assert (
        client.get(f"/s/{other}/more?r={reply}", follow_redirects=False).headers["location"] == f"/s/{other}"
    )


def test_a_personal_link_ignores_a_reply_hint(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    token = links.create_links(store, "framed", [("C1", None)], now=T0)[0].token
    page = client.get(f"/s/{token}")
    assert 'name="reply"' not in page.text
    client.cookies.set(f"cxs_{links.token_hash(token)[:16]}", "made-up")

    for score in ("4", "5"):  # was a 500: a second reply under the link's id
        scored = client.post(
            f"/s/{token}",
            data={"form_token": field(page.text, "form_token"), "score": score, "reply": "made-up"},
            follow_redirects=False,
        )
        assert scored.status_code == 303 and scored.headers["location"] == f"/s/{token}/more"

    assert rows(store, "SELECT score FROM survey_responses") == [(5,)]


# -- the snippet ---------------------------------------------------------------------------------


def test_the_iframe_snippet_says_where_it_shows() -> None:
    url = "https://cx.example.com/s/abc"

    allowed = embed_snippet(url, kind="iframe", origins=(SHOP,))
    none = embed_snippet(url, kind="iframe", origins=())

    assert allowed.startswith(
        f"<!-- The frame shows only on {SHOP} (the survey's embed_origins). -->\n<iframe "
    )
    assert none.startswith("<!-- This survey allows no other site to show it in a frame")
    assert 'sandbox="allow-forms allow-same-origin"' in allowed and "<script" not in allowed + none
    assert embed_snippet(url, kind="iframe").startswith("<iframe ")  # origins unknown: no note
    assert (
        embed_snippet(url, origins=())
        == f'<a href="{url}" target="_blank" rel="noopener">Tell us what you think</a>\n'
    )
    assert "embed_origins" in embed_note(())


def test_the_embed_command_looks_the_link_up_and_warns_when_no_site_may_frame_it(
    store_with_surveys: Store,
) -> None:
    store = store_with_surveys
    framed = links.link_url("https://cx.example.com", links.create_public_link(store, "framed", now=T0).token)
    plain = links.link_url(
        "https://cx.example.com", links.create_public_link(store, "after-order", now=T0).token
    )
    db = store.url
    runner = CliRunner(env={"CXLOOP_DATABASE_URL": None})

    ok = runner.invoke(cli, ["--db", db, "surveys", "embed", framed, "--iframe"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith(f"<!-- The frame shows only on {SHOP}, http://localhost:8080")
    assert f'<iframe src="{framed}"' in ok.stdout and "warning" not in ok.stderr

    warned = runner.invoke(cli, ["--db", db, "surveys", "embed", plain, "--iframe"])
    assert warned.exit_code == 0 and f'<iframe src="{plain}"' in warned.stdout
    assert "warning" in warned.stderr and "allows no other site" in warned.stderr

    unknown = runner.invoke(
        cli, ["--db", db, "surveys", "embed", "https://cx.example.com/s/nope", "--iframe"]
    )
    assert unknown.exit_code == 1 and "not a survey link of this store" in unknown.stderr
    link = runner.invoke(cli, ["--db", db, "surveys", "embed", "https://cx.example.com/s/nope"])
    assert link.exit_code == 0 and link.stdout.startswith("<a href=")  # a link needs no look-up


def test_the_public_link_page_shows_both_snippets_and_the_allowed_sites(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    accounts.create_user(store, "m@example.com", Role.MANAGER, "p" * 12, now=T0)
    sign_in(client, "m@example.com", "p" * 12)
    csrf = field(client.get("/surveys/new").text, "csrf_token")

    framed = client.post("/surveys/framed/links", data={"csrf_token": csrf, "public": "true"})
    plain = client.post("/surveys/after-order/links", data={"csrf_token": csrf, "public": "true"})

    assert "Copy it now" in framed.text and "&lt;iframe src=" in framed.text and "&lt;a href=" in framed.text
    assert f"The frame shows only on {SHOP}" in framed.text
    assert (
        "&lt;iframe src=" in plain.text
        and 'role="alert" id="iframe-note">This survey allows no other site' in plain.text
    )


def test_a_site_removed_in_a_new_version_no_longer_frames_an_answer_in_progress(
    client: TestClient, tmp_path: Path
) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    token = links.create_public_link(store, "framed", now=T0).token
    page = client.get(f"/s/{token}")
    scored = client.post(
        f"/s/{token}",
        data={"form_token": field(page.text, "form_token"), "score": "2"},
        follow_redirects=False,
    )
    assert SHOP in frame_ancestors(client.get(scored.headers["location"]))

    shop_gone = _embeddable(FIXTURE.read_text(), ["http://localhost:8080"]).replace(
        'id = "after-order"', 'id = "framed"'
    )
    versions.edit_survey(store, "framed", load_definition(write(tmp_path / "v2.toml", shop_gone)), now=T0)
    more = client.get(scored.headers["location"])  # the answer keeps version 1, not its sites

    assert "What went wrong?" in more.text and frame_ancestors(more) == "'self' http://localhost:8080"
    assert rows(store, "SELECT version FROM survey_replies") == [(1,)]
