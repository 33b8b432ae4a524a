"""Who may call what: every route declares a requirement, and every role gets exactly what it
declares — generated from the app's own registry, so a new route is covered the day it is added."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cxloop import Store
from cxloop.config import Settings
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.auth import PUBLIC, RouteAccess, route_access
from cxloop.web.roles import ROLE_CAPABILITIES, Capability, Role
from cxloop.web.sessions import SessionPolicy, start_session
from cxloop.web.settings import WebSettings

T0 = dt.datetime(2026, 1, 5, 9, 0)
# Routes anyone may call, on purpose. Everything else must require a signed-in user.
EXPECTED_PUBLIC = {"/login", "/healthz", "/api/v1/openapi.json", "/static", "/vendor"}
# The opt-out link of survey mails (issue 7): the customer holds the token.
EXPECTED_PUBLIC |= {"/s/opt-out/{token}"}
# The survey answer pages (issue 7): anyone holding a link answers without signing in.
EXPECTED_PUBLIC |= {"/s/{token}", "/s/{token}/more", "/s/{token}/thanks"}
LOGIN_CSRF = "matrix-login-csrf"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", lambda: cheap)


def bare_app(tmp_path: Path) -> FastAPI:
    # Route declarations need no database: the store is never touched here.
    store = Store.open(str(tmp_path / "routes.duckdb"))
    return create_app(store, WebSettings(database_url=store.url))


def test_every_route_declares_who_may_call_it(tmp_path: Path) -> None:
    routes = route_access(bare_app(tmp_path))

    undeclared = [f"{r.methods} {r.path}" for r in routes if not r.requirements]
    assert undeclared == [], f"routes without a role requirement (use Depends(require(...))): {undeclared}"
    public = {r.path for r in routes if PUBLIC in r.requirements}
    assert public == EXPECTED_PUBLIC


def test_a_route_without_a_requirement_is_reported(tmp_path: Path) -> None:
    app = bare_app(tmp_path)

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    app.add_route("/raw", lambda request: None)

    undeclared = {r.path for r in route_access(app) if not r.requirements}
    assert undeclared == {"/api/v1/forgotten", "/raw"}


# The REST API of customers, exports and imports (issue 4): who may call each route, pinned.
DATA_ROUTES = {
    ("GET", "/api/v1/customers"): Capability.DATA_READ,
    ("GET", "/api/v1/customers/{customer_id}"): Capability.DATA_READ,
    ("GET", "/api/v1/exports/{table}"): Capability.DATA_READ,
    ("POST", "/api/v1/imports"): Capability.IMPORTS_RUN,
    ("POST", "/api/v1/imports/preview"): Capability.IMPORTS_RUN,
    ("GET", "/api/v1/imports"): Capability.IMPORTS_RUN,
    ("GET", "/api/v1/imports/{job_id}"): Capability.IMPORTS_RUN,
    ("GET", "/api/v1/imports/{job_id}/rejects"): Capability.IMPORTS_RUN,
}


def test_customer_export_and_import_routes_require_their_capability(tmp_path: Path) -> None:
    declared = {
        (method, r.path): {str(q) for q in r.requirements}
        for r in route_access(bare_app(tmp_path))
        for method in r.methods
        if (method, r.path) in DATA_ROUTES
    }

    assert declared == {route: {capability.value} for route, capability in DATA_ROUTES.items()}


def concrete(path: str) -> str:
    """A path with its parameters filled in: access is decided before the parameters are used."""
    return re.sub(r"\{[^}]+\}", "1", path)


def expected_refusal(route: RouteAccess, role: Role | None) -> int | None:
    """None when ``role`` may call ``route``; otherwise the status it must get."""
    if route.allows(None if role is None else ROLE_CAPABILITIES[role]):
        return None
    if role is None:
        return 401 if route.is_api else 303
    return 403


@pytest.fixture
def matrix(store: Store) -> Iterator[tuple[TestClient, Store, dict[Role, str]]]:
    users = {}
    for role in Role:
        users[role] = accounts.create_user(store, f"{role.value}@example.com", role, "p" * 12, now=T0).id
    app = create_app(store, WebSettings(database_url=store.url), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, store, users


def call(client: TestClient, route: RouteAccess, method: str, headers: dict[str, str]) -> Any:
    # Unsafe requests carry valid CSRF tokens (the session's as a header, the sign-in form's as a
    # field and cookie), so that what is measured is the role check alone.
    cookies = "; ".join(filter(None, [headers.pop("Cookie", ""), f"cxloop_login_csrf={LOGIN_CSRF}"]))
    return client.request(
        method,
        concrete(route.path) + ("/cxloop.css" if route.path == "/static" else ""),
        headers={**headers, "Cookie": cookies},
        data={"csrf_token": LOGIN_CSRF} if method != "GET" else None,
        follow_redirects=False,
    )


def check(route: RouteAccess, method: str, who: str, refusal: int | None, response: Any) -> int | None:
    status = response.status_code
    to_login = status == 303 and response.headers["location"].startswith("/login?next=")
    label = f"{method} {route.path} as {who}: got {status}"
    if refusal is None:
        assert status not in (401, 403) and not to_login, label + ", expected it allowed"
    elif refusal == 303:
        assert to_login, label + ", expected a redirect to /login?next=..."
    else:
        assert status == refusal, label + f", expected {refusal}"
    return refusal


def test_every_role_gets_what_each_route_declares_with_a_session(
    matrix: tuple[TestClient, Store, dict[Role, str]],
) -> None:
    client, store, users = matrix
    seen = set()
    for route in route_access(client.app):  # type: ignore[arg-type]
        for method in route.methods:
            response = call(client, route, method, {})
            seen.add(check(route, method, "anonymous", expected_refusal(route, None), response))
            for role in Role:
                # A fresh session per call: the route may be the sign-out.
                session = start_session(store, users[role], now=T0, policy=SessionPolicy())
                headers = {"Cookie": f"cxloop_session={session.token}", "X-CSRF-Token": session.csrf_token}
                response = call(client, route, method, headers)
                seen.add(check(route, method, role.value, expected_refusal(route, role), response))
    assert seen == {None, 303, 401, 403}  # the matrix saw every outcome


def test_every_role_gets_what_each_api_route_declares_with_a_token(
    matrix: tuple[TestClient, Store, dict[Role, str]],
) -> None:
    client, store, _ = matrix
    tokens = {
        role: accounts.create_token(store, f"{role.value}@example.com", role, now=T0).token for role in Role
    }
    api = [route for route in route_access(client.app) if route.is_api]  # type: ignore[arg-type]
    assert api
    for route in api:
        for method in route.methods:
            for role in Role:
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                check(
                    route,
                    method,
                    f"{role.value} token",
                    expected_refusal(route, role),
                    call(client, route, method, headers),
                )


def test_the_guide_shows_the_capability_table_and_every_setting() -> None:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "web.md").read_text()
    header = next(line for line in guide.splitlines() if line.startswith("| capability |"))
    roles = [cell.strip() for cell in header.strip("|").split("|")[2:]]
    table = {}
    for line in guide.splitlines():
        found = re.match(r"\| `([a-z.]+)` \|[^|]*\|(.*)\|$", line)
        if found:
            marks = [cell.strip() for cell in found[2].split("|")]
            table[found[1]] = {role for role, mark in zip(roles, marks, strict=True) if mark == "✓"}

    expected = {c.value: {r.value for r in Role if c in ROLE_CAPABILITIES[r]} for c in Capability}
    assert table == expected, "docs/web.md's capability table differs from cxloop.web.roles"
    for name in set(WebSettings.model_fields) - set(Settings.model_fields):
        assert f"`CXLOOP_{name.upper()}`" in guide, name
