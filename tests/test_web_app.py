"""The web application in-process (TestClient) over a real store on every backend: sign-in,
cookies, CSRF, rate limiting, headers, escaping, problem details."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from conftest import rows
from cxloop import Store
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.auth import AUTHENTICATED, require
from cxloop.web.roles import Capability, Role
from cxloop.web.sessions import Principal
from cxloop.web.settings import WebSettings

T0 = dt.datetime(2026, 1, 5, 9, 0)
PASSWORD = "correct horse battery staple"


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", lambda: cheap)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make_client(store: Store, clock: FakeClock, **settings: Any) -> TestClient:
    app = create_app(store, WebSettings(database_url=store.url, **settings), clock=clock)
    _add_test_routes(app)
    return TestClient(app, raise_server_exceptions=False)


def _add_test_routes(app: FastAPI) -> None:
    """Routes that exist only in these tests: an unsafe API call, a typed parameter, a crash."""

    @app.post("/api/v1/test/echo")
    def echo(who: Annotated[Principal, Depends(require(Capability.DATA_READ))]) -> dict[str, str]:
        return {"email": who.user.email}

    @app.get("/api/v1/test/items/{number}")
    def item(number: int, who: Annotated[Principal, Depends(AUTHENTICATED)]) -> dict[str, int]:
        return {"number": number}

    @app.get("/api/v1/test/crash", dependencies=[Depends(AUTHENTICATED)])
    def crash() -> None:
        raise RuntimeError("secret internals")


@pytest.fixture
def client(store: Store, clock: FakeClock) -> Iterator[TestClient]:
    accounts.create_user(store, "ana@example.com", Role.ANALYST, PASSWORD, now=T0)
    with make_client(store, clock) as c:
        yield c


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found[1]


def sign_in(
    client: TestClient, email: str = "ana@example.com", password: str = PASSWORD, **extra: str
) -> Any:
    data = {"email": email, "password": password, "csrf_token": login_token(client), **extra}
    return client.post("/login", data=data, follow_redirects=False)


def page_csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert found
    return found[1]


def cookie_header(response: Any, name: str) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    return str(header)


def test_signing_in_sets_a_hardened_session_cookie_and_returns_to_the_page(client: TestClient) -> None:
    asked = client.get("/admin/users?x=1", follow_redirects=False)
    assert asked.status_code == 303 and asked.headers["location"] == "/login?next=%2Fadmin%2Fusers%3Fx%3D1"

    response = sign_in(client, next="/api/v1/me")

    assert response.status_code == 303 and response.headers["location"] == "/api/v1/me"
    cookie = cookie_header(response, "cxloop_session").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie
    assert client.get("/api/v1/me").json()["email"] == "ana@example.com"
    home = client.get("/")
    assert "ana@example.com" in home.text and "analyst" in home.text


@pytest.mark.parametrize(
    ("settings", "headers", "secure"),
    [
        ({"secure_cookies": True}, {}, True),
        ({"trusted_proxies": "*"}, {"X-Forwarded-Proto": "https"}, True),
        ({}, {"X-Forwarded-Proto": "https"}, False),  # an untrusted proxy header is ignored
    ],
)
def test_cookies_are_secure_behind_https_only_when_told(
    store: Store, clock: FakeClock, settings: dict[str, Any], headers: dict[str, str], secure: bool
) -> None:
    accounts.create_user(store, "ana@example.com", Role.ANALYST, PASSWORD, now=T0)
    with make_client(store, clock, **settings) as client:
        client.headers.update(headers)
        token = login_token(client)
        # Over plain http the client keeps a Secure cookie to itself: send it as the proxy would.
        form = {"email": "ana@example.com", "password": PASSWORD, "csrf_token": token}
        response = client.post(
            "/login", data=form, headers={"Cookie": f"cxloop_login_csrf={token}"}, follow_redirects=False
        )

    assert response.status_code == 303
    assert ("secure" in cookie_header(response, "cxloop_session").lower()) is secure
    assert ("strict-transport-security" in response.headers) is (bool(headers) and secure)


def test_anonymous_api_calls_get_401_problem_details(client: TestClient) -> None:
    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and body["instance"] == "/api/v1/me"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_a_wrong_password_shows_the_form_again_and_the_sixth_failure_gets_429(
    client: TestClient, store: Store
) -> None:
    for _ in range(5):
        failed = sign_in(client, password="wrong password!")
        assert failed.status_code == 400 and "Wrong email or password." in failed.text
        assert "cxloop_session" not in failed.headers.get("set-cookie", "")

    refused = sign_in(client)

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(15 * 60)
    assert "too many failed sign-ins: try again in 15 minutes" in refused.text
    assert rows(store, "SELECT count(*) FROM sessions") == [(0,)]


def test_forms_need_their_csrf_token(client: TestClient, store: Store) -> None:
    # Sign-in: the hidden field must match the cookie set with the form.
    data = {"email": "ana@example.com", "password": PASSWORD, "csrf_token": "forged"}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 403
    assert sign_in(client).status_code == 303

    missing = client.post("/logout", follow_redirects=False)
    wrong = client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert missing.status_code == 403 and wrong.status_code == 403
    assert "CSRF" in wrong.text
    assert client.post("/api/v1/test/echo", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/v1/test/echo", headers={"X-CSRF-Token": page_csrf(client)}).status_code == 200

    out = client.post("/logout", data={"csrf_token": page_csrf(client)}, follow_redirects=False)

    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert rows(store, "SELECT count(*) FROM sessions") == [(0,)]
    assert client.get("/", follow_redirects=False).status_code == 303


def test_bearer_tokens_are_exempt_from_csrf_and_ignore_cookies(client: TestClient, store: Store) -> None:
    token = accounts.create_token(store, "ana@example.com", Role.ANALYST, now=T0).token
    bearer = {"Authorization": f"Bearer {token}"}

    assert client.post("/api/v1/test/echo", headers=bearer).json() == {"email": "ana@example.com"}
    assert client.get("/api/v1/me", headers=bearer).json()["via"] == "token"
    viewer = accounts.create_token(store, "ana@example.com", Role.VIEWER, now=T0).token
    refused = client.post("/api/v1/test/echo", headers={"Authorization": f"Bearer {viewer}"})
    assert refused.status_code == 403 and "does not allow data.read" in refused.json()["detail"]


def test_a_token_revoked_elsewhere_is_refused_within_the_sign_in_check(
    client: TestClient, store: Store
) -> None:
    made = accounts.create_token(store, "ana@example.com", Role.ANALYST, now=T0)
    headers = {"Authorization": f"Bearer {made.token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200

    accounts.revoke_token(store, made.id, now=T0)  # as the CLI would, from another process
    time.sleep(client.app.state.settings.sign_in_check_seconds + 0.05)  # type: ignore[attr-defined]

    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_signing_out_ends_the_session_at_once(client: TestClient) -> None:
    sign_in(client)
    assert client.get("/api/v1/me").status_code == 200  # the session is now remembered
    cookie = client.cookies["cxloop_session"]
    out = client.post("/logout", data={"csrf_token": page_csrf(client)}, follow_redirects=False)
    assert out.status_code == 303

    client.cookies.set("cxloop_session", cookie)  # a copy of the cookie kept by someone
    assert client.get("/api/v1/me").status_code == 401


def test_sessions_expire_when_idle(client: TestClient, clock: FakeClock) -> None:
    sign_in(client)
    clock.advance(hours=1)
    assert client.get("/api/v1/me").status_code == 200

    clock.advance(hours=2, minutes=1)

    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"


def test_sign_in_redirects_only_to_this_site(client: TestClient) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        assert sign_in(client, next=target).headers["location"] == "/"
    assert client.get("/login?next=//evil.example", follow_redirects=False).headers["location"] == "/"


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    sign_in(client)
    for path in ("/login", "/", "/api/v1/me", "/api/v1/nowhere", "/nowhere", "/api/v1/test/crash"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"
    css = client.get("/static/cxloop.css")
    assert css.status_code == 200 and "cache-control" not in css.headers
    assert "x-content-type-options" in css.headers


def test_untrusted_text_is_escaped_in_pages(store: Store, clock: FakeClock) -> None:
    accounts.create_user(store, "root@example.com", Role.ADMIN, PASSWORD, now=T0)
    accounts.create_user(store, "<script>alert(1)</script>@example.com", Role.VIEWER, PASSWORD, now=T0)
    with make_client(store, clock) as client:
        sign_in(client, "root@example.com")
        page = client.get("/admin/users")

    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@example.com" in page.text
    assert "<script>" not in page.text


def test_errors_are_problem_details_without_internals(client: TestClient) -> None:
    sign_in(client)

    missing = client.get("/api/v1/nowhere")
    invalid = client.get("/api/v1/test/items/seven")
    crash = client.get("/api/v1/test/crash")
    page = client.get("/nowhere")

    assert missing.status_code == 404 and missing.json()["detail"] == "nothing at /api/v1/nowhere"
    assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json"
    body = invalid.json()
    assert body["title"] == "Unprocessable Content" and body["errors"][0]["loc"] == ["path", "number"]
    assert crash.status_code == 500 and crash.headers["content-type"] == "application/problem+json"
    assert "secret internals" not in crash.text and "Traceback" not in crash.text
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert '<h1 id="error-title">Not Found</h1>' in page.text


def test_health_and_openapi_are_public(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/me" in schema["paths"] and "/login" not in schema["paths"]
    assert client.get("/docs").status_code == 404
